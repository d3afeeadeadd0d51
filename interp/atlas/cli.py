"""``interp atlas``: score every MLP neuron of a model into a run directory, from the command line.

The main CLI (:mod:`interp.cli`) calls :func:`register`. Heavy imports happen
inside :func:`run_atlas`, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
from typing import Any

from interp.errors import InputError

__all__ = ["register", "run_atlas", "parse_layers"]

DESCRIPTION = """\
Build the neuron atlas of a model into runs/<name>/:
  weights/layer_LL.parquet   data-free scores of every MLP neuron: input-output cosines and IO class,
                             vocabulary kurtosis/skew and top/bottom tokens, output norm, fraction in
                             W_U's effective null space, alignment with log unigram frequency
  figures.html               norm vs null fraction, IO cosines by layer, kurtosis vs skew (offline)
  activations/layer_LL.parquet  (--store) activation frequency, mean, variance per neuron
  correlation/               (--compare) each neuron's max activation correlation with another model
                             on the same tokens, against random directions (baseline)
Rerunning resumes: finished stages are skipped.

examples:
  interp atlas --model smollm2-135m --name atlas-smollm2
  interp atlas --model smollm2-135m --layers 28,29 --store runs/demo/store --name atlas-late
  interp atlas --model bible-lm-s0 --compare bible-lm-s1 --name atlas-bible
"""


def parse_layers(spec: str | None) -> list[int] | None:
    """``"all"`` / ``None`` -> ``None``; ``"0:4"`` / ``"28,29"`` -> layer indices."""
    if spec is None or spec.strip().lower() == "all":
        return None
    try:
        if ":" in spec:
            lo, hi = spec.split(":", 1)
            return list(range(int(lo or 0), int(hi)))
        return [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"cannot read --layers {spec!r}. Write all, a range 0:4 or a list 28,29.") from None


def register(subparsers: Any) -> None:
    """Add the ``atlas`` subcommand."""
    p = subparsers.add_parser(
        "atlas",
        help="score every MLP neuron (weights, activations, cross-model correlation)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        default="smollm2-135m",
        help="registry name, local directory, or a shipped Bible LM (bible-lm-s0, bible-lm-s1)",
    )
    p.add_argument("--layers", help="layers to score: all (default), a range 0:4 or a list 28,29")
    p.add_argument("--name", default="atlas", help="run name: results go to <root>/<name> (default atlas)")
    p.add_argument("--root", default="runs", help="parent folder of run directories (default runs)")
    p.add_argument("--null-k", type=int, default=10, help="dimensions of W_U's effective null space (default 10)")
    p.add_argument("--k-tokens", type=int, default=10, help="top and bottom tokens per neuron (default 10)")
    p.add_argument("--store", help="activation store with blocks.L.mlp.hook_post: add activation statistics")
    p.add_argument("--compare", help="second model (same tokenizer): per-neuron max activation correlation")
    p.add_argument("--data", default="bible", help="corpus for --compare (default bible, held-out split)")
    p.add_argument("--tokens", type=int, default=32768, help="tokens for --compare (default 32768)")
    p.add_argument("--no-figures", action="store_true", help="skip figures.html")
    p.add_argument("--overwrite", action="store_true", help="rerun every stage of an existing run")
    p.set_defaults(func=run_atlas)


def run_atlas(args: argparse.Namespace) -> int:
    """Run the stages the arguments ask for and print where the results are."""
    from interp.atlas.run import AtlasConfig, build_atlas

    cfg = AtlasConfig(model=args.model, layers=parse_layers(args.layers), null_k=args.null_k,
                      k_tokens=args.k_tokens, store=args.store, compare=args.compare, data=args.data,
                      tokens=args.tokens, figures=not args.no_figures)  # fmt: skip
    files = build_atlas(cfg, name=args.name, root=args.root, overwrite=args.overwrite, progress=True)
    for what, path in files.items():
        print(f"{what:<14} {path}")
    return 0
