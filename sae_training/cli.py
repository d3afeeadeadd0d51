"""``python -m sae_training`` / ``sae-training``: train, evaluate and resume SAEs from the command line.

Every field of :class:`~sae_training.config.TrainConfig` is a flag whose help
is the field's docstring; ``--config FILE`` (JSON or YAML, flat or sectioned)
supplies values that flags then override. The resolved config is saved as
``<out>/config.json`` beside the SAEs. Nothing heavy is imported until a
command runs, so ``--help`` is instant.

Examples::

    python -m sae_training train --model smollm2-135m --hook blocks.6.hook_resid_post \\
        --arch topk --d-sae 2304 --k 32 --tokens 300000 --out runs/l6
    python -m sae_training train --from-store runs/demo/store --hook blocks.6.hook_resid_post --out runs/l6
    python -m sae_training resume --out runs/l6
    torchrun --nproc_per_node 2 -m sae_training train --from-store runs/demo/store --threads 1 --out runs/l6x2
    python -m sae_training eval --sae runs/l6/blocks.6.hook_resid_post --model smollm2-135m
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from sae_training.config import DataSpec, OptimSpec, RunSpec, SAESpec, field_docs, load_config_file

__all__ = ["main", "build_parser"]

_SECTIONS = (("SAE", SAESpec), ("data", DataSpec), ("optimizer and schedule", OptimSpec), ("run", RunSpec))


def _add_fields(parser: argparse.ArgumentParser) -> None:
    """One flag per config field; unset flags stay absent so the config file and defaults apply."""
    for title, cls in _SECTIONS:
        group = parser.add_argument_group(title, (cls.__doc__ or "").strip())
        docs = field_docs(cls)
        for f in fields(cls):
            flag = "--" + f.name.replace("_", "-")
            default = f.default if f.default is not MISSING else None
            kind = str(f.type)
            help_ = f"{docs.get(f.name, '')} (default: {default!r})".replace("%", "%%")
            kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_}
            if kind == "bool":
                kw["action"] = argparse.BooleanOptionalAction
            elif "tuple" in kind:
                kw |= {"nargs": "+", "action": "extend", "metavar": f.name.upper()}
            else:
                kw["type"] = int if kind.startswith("int") else float if kind.startswith("float") else str
                kw["metavar"] = f.name.upper()
            group.add_argument(flag, **kw)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the three subcommands."""
    p = argparse.ArgumentParser(prog="sae-training", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("Examples::")[1])  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train SAEs (from a store, or capturing from a model)",
                           description="Train one SAE per hook; rerunning the same command resumes an interrupted "
                                       "run and returns at once from a finished one. Under torchrun "
                                       "--nproc_per_node N the processes train data-parallel (--batch-size is "
                                       "the global batch).")  # fmt: skip
    train.add_argument("--config", help="JSON or YAML file of config fields (flat or sectioned); flags override it.")
    train.add_argument("--overwrite", action="store_true",
                       help="discard any run already in --out (finished or not, any config) and train anew.")
    _add_fields(train)
    resume = sub.add_parser("resume", help="continue a checkpointed run",
                            description="Continue the run in --out from its newest checkpoint. Changing any "
                                        "setting other than progress/threads/eval options is refused.")  # fmt: skip
    resume.add_argument("--config", help="JSON or YAML config file; must match the run's saved config.")
    _add_fields(resume)
    ev = sub.add_parser("eval", help="evaluate saved SAEs on held-out data",
                        description="Evaluate SAELens SAE folders (ours or SAELens's) on held-out data.")  # fmt: skip
    ev.add_argument("--sae", nargs="+", required=True, help="SAE folder(s) (cfg.json + sae_weights.safetensors).")
    ev.add_argument("--model", help="model to splice into for CE loss recovered and KL (registry or hub name).")
    ev.add_argument("--dataset", default="bible", help="text corpus whose heldout split is read (default: bible).")
    ev.add_argument("--from-store", help="evaluate on this store's activations instead (no splice metrics).")
    ev.add_argument("--hook", help="hook of a single SAE (default: the one in its cfg.json).")
    ev.add_argument("--tokens", type=int, default=4096, help="held-out tokens to evaluate (default: 4096).")
    ev.add_argument("--context-size", type=int, default=128, help="tokens per context (default: 128).")
    ev.add_argument("--batch-size", type=int, default=8, help="contexts per forward pass (default: 8).")
    ev.add_argument("--out", help="folder for eval.json and eval.html (default: the first SAE's folder).")
    return p


def _train_config(args: argparse.Namespace, base: dict[str, Any] | None = None) -> Any:
    from sae_training.config import TrainConfig

    values = dict(base or {})
    if getattr(args, "config", None):
        values |= load_config_file(args.config)
    flat = {k: v for k, v in vars(args).items() if k not in ("command", "config", "overwrite")}
    cfg = TrainConfig.from_dict(values) if values else None
    return cfg.replace(**flat) if cfg is not None else TrainConfig.from_dict(flat)


def _print_result(result: Any) -> None:
    if result.rank != 0:  # data-parallel run: rank 0 speaks for all
        return
    if result.reused:
        print(f"already trained: {result.out} finished with this configuration (see {result.out / 'train.json'}); "
              "nothing to do. Pass --overwrite to train again.")  # fmt: skip
    print(f"trained {len(result.saes)} SAE(s), {result.steps} steps, {result.tokens:,} tokens, "
          f"{result.tokens_per_s:,.0f} tokens/s this run -> {result.out}")  # fmt: skip
    for hook, path in result.saes.items():
        print(f"  {hook}: {path}")
        metrics = (result.eval or {}).get(hook) or result.final.get(hook, {})
        print("    " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))


def _cmd_eval(args: argparse.Namespace) -> None:
    from sae_training.evaluate import evaluate_sae

    model = None
    if args.model:
        import interp

        model = interp.load_model(args.model)
    saes: Any = args.sae[0] if len(args.sae) == 1 else {_hook_of(p): p for p in args.sae}
    out = args.out or args.sae[0]
    res = evaluate_sae(saes, args.hook if len(args.sae) == 1 else None, model=model, dataset=args.dataset,
                       store=args.from_store, n_tokens=args.tokens, context_size=args.context_size,
                       batch_size=args.batch_size, out=out)  # fmt: skip
    print(json.dumps(res, indent=2))
    print(f"wrote {Path(out) / 'eval.json'} and {Path(out) / 'eval.html'}")


def _hook_of(path: str) -> str:
    return json.loads((Path(path) / "cfg.json").read_text())["metadata"]["hook_name"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m sae_training`` and the ``sae-training`` console script."""
    args = build_parser().parse_args(argv)
    from interp.errors import InterpError

    try:
        if args.command == "eval":
            _cmd_eval(args)
            return 0
        from sae_training.trainer import train_sae

        if args.command == "resume":
            out = Path(getattr(args, "out", "") or "")
            if not (out / "config.json").is_file():
                print(f"error: {out or '(no --out)'} holds no run to resume; pass --out DIR of a run.", file=sys.stderr)
                return 2
            base = json.loads((out / "config.json").read_text())
            _print_result(train_sae(_train_config(args, base), resume=True))
        else:
            _print_result(train_sae(_train_config(args), overwrite=args.overwrite))
    except InterpError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
