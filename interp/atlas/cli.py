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
  entropy/                   (--entropy K) the causal check of entropy neurons: the K neurons of a layer
                             with the largest null-space output, and K random ones, mean-ablated: total
                             entropy change against the direct logit effect (effects.parquet, effects.html)
  retrieval/                 (--sae DIR --retrieval) precision@5 of finding a Bible book's held-out
                             chapters from 5 of its train chapters by SAE codes, raw activations and
                             MiniLM embeddings
  search/                    (--sae DIR --search FILE) the --pool documents most like the query documents,
                             under each of those three representations (results.parquet, results.csv)
  rosetta/                   (--rosetta) Rosetta neurons: DINOv2-S/14 against the concept ViT on the same
                             held-out concept images, against random directions
Rerunning resumes: finished stages are skipped.

examples:
  interp atlas --model smollm2-135m --name atlas-smollm2
  interp atlas --model smollm2-135m --layers 28,29 --entropy 5 --name atlas-late
  interp atlas --model smollm2-135m --layers 6 --store runs/demo/store/train --name atlas-store
  interp atlas --model bible-lm-s0 --compare bible-lm-s1 --name atlas-bible
  interp atlas --model smollm2-135m --no-weights --sae runs/demo/sae/blocks.6.hook_resid_post --retrieval \\
      --search my_examples.txt --pool fortunes --name search
  interp atlas --no-weights --rosetta --images 256 --name rosetta
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
    p.add_argument("--entropy", type=int, default=0, metavar="K",
                   help="causal entropy-neuron check of the K top null-space neurons (default 0: skip)")
    p.add_argument("--entropy-layer", type=int, help="layer of the --entropy candidates (default the last)")
    p.add_argument("--entropy-contexts", type=int, default=16,
                   help="held-out 64-token contexts of --data for --entropy (default 16)")
    p.add_argument("--sae", help="SAE folder (SAELens layout) on --model, for --retrieval and --search")
    p.add_argument("--retrieval", action="store_true",
                   help="with --sae: precision@5 of Bible-book retrieval by SAE codes, raw activations, MiniLM")
    p.add_argument("--search", metavar="FILE",
                   help="with --sae: query documents (.txt one per paragraph, .jsonl, .parquet) to search --pool for")
    p.add_argument("--pool", help="documents to search: a file or a corpus (bible, fortunes, pydoc; held-out "
                   "split); default --data")
    p.add_argument("--top", type=int, default=20, help="results per representation of --search (default 20)")
    p.add_argument("--doc-tokens", type=int, default=128,
                   help="tokens read per document by --retrieval and --search (default 128)")
    p.add_argument("--rosetta", action="store_true", help="Rosetta neurons: DINOv2 against the concept ViT")
    p.add_argument("--images", type=int, default=256, help="concept images for --rosetta (default 256)")
    p.add_argument("--no-weights", action="store_true",
                   help="skip the weight scores and figures (for runs of other stages only)")
    p.add_argument("--no-figures", action="store_true", help="skip figures.html")
    p.add_argument("--overwrite", action="store_true", help="rerun every stage of an existing run")
    p.set_defaults(func=run_atlas)


def run_atlas(args: argparse.Namespace) -> int:
    """Run the stages the arguments ask for and print where the results are."""
    from interp.atlas.run import AtlasConfig, build_atlas

    cfg = AtlasConfig(model=args.model, layers=parse_layers(args.layers), null_k=args.null_k,
                      k_tokens=args.k_tokens, store=args.store, compare=args.compare, data=args.data,
                      tokens=args.tokens, figures=not args.no_figures, weights=not args.no_weights,
                      entropy=args.entropy, entropy_layer=args.entropy_layer, entropy_contexts=args.entropy_contexts,
                      sae=args.sae, retrieval=args.retrieval, search=args.search, pool=args.pool, top=args.top,
                      doc_tokens=args.doc_tokens, rosetta=args.rosetta, images=args.images)  # fmt: skip
    files = build_atlas(cfg, name=args.name, root=args.root, overwrite=args.overwrite, progress=True)
    for what, path in files.items():
        print(f"{what:<14} {path}")
    return 0
