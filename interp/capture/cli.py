"""``interp capture``: record hook activations of a model over a dataset into a store.

The main CLI (:mod:`interp.cli`) calls :func:`register`; ``python -m
interp.capture.cli`` runs the same command on its own, which is how
``--workers N`` starts its worker processes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interp.errors import InterpError

__all__ = ["register", "run", "main", "add_arguments", "argv_for"]

DESCRIPTION = """\
Run a model over a dataset and record the given hook points into an activation
store (safetensors shards plus manifest.json). The forward pass stops after the
last block the hooks need. Rerunning the same command resumes an interrupted
capture; the finished store is identical to an uninterrupted one.

examples:
  interp capture --model smollm2-135m --hooks blocks.6.hook_resid_post \\
      --dataset bible --max-tokens 200000 --out runs/bible-l6/store
  interp capture --model dinov2-s14 --hooks 'blocks.*.hook_resid_post' \\
      --dataset skimage --out runs/vit/store --dtype float16
  interp capture ... --workers 2        # two processes, disjoint shards, same store
"""

# option name (as capture_parallel takes it) -> command-line flag, for rebuilding a command line
_FLAGS = {
    "split": "--split", "limit": "--limit", "context_size": "--context-size", "dtype": "--dtype",
    "batch_size": "--batch-size", "max_tokens": "--max-tokens", "positions": "--positions",
    "memory_budget": "--memory-budget", "n_layers": "--n-layers", "model_dtype": "--model-dtype",
    "device": "--device",
}  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the capture options to ``p``."""
    p.add_argument(
        "--model",
        required=True,
        help="registry name (see `interp models`), local Hugging Face "
        "directory, hub name, or a factory package.module:function / file.py:function",
    )
    p.add_argument(
        "--hooks", required=True, help="comma-separated hook names; * patterns allowed (blocks.*.hook_resid_post)"
    )
    p.add_argument(
        "--dataset",
        required=True,
        help="text corpus (bible, fortunes, pydoc, a .txt/.jsonl file), "
        "image set (skimage, lfw, mnist, digits, a folder) or a data factory called with the model",
    )
    p.add_argument("--out", required=True, help="store directory, e.g. runs/<name>/store")
    p.add_argument(
        "--split", default="train", choices=["train", "heldout", "all"], help="dataset split (default train)"
    )
    p.add_argument("--limit", type=int, help="use at most this many documents / images")
    p.add_argument("--context-size", type=int, help="tokens per context for text (default min(128, n_ctx))")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float16", "bfloat16"],
        help="storage dtype of activations (default float32)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="contexts or images per forward pass (default 32)")
    p.add_argument("--max-tokens", type=int, help="token budget: stop after storing this many tokens")
    p.add_argument(
        "--positions",
        default="content",
        help="'content' (default: drop BOS/CLS, special and padding tokens), 'all', or context positions like 0,5,-1",
    )
    p.add_argument(
        "--memory-budget",
        default="1GiB",
        help="memory the capture may use beyond the model "
        "(default 1GiB); a shard's buffer takes at most an eighth of it",
    )
    p.add_argument(
        "--n-layers", default="auto", help="blocks to load: 'auto' (just enough for the hooks), 'all', or a number"
    )
    p.add_argument("--model-dtype", help="parameter dtype of the model (default float32)")
    p.add_argument("--device", help="cpu (default), cuda, ...")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")
    mode.add_argument(
        "--append", action="store_true", help="add this data to an existing store of the same model and hooks"
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes writing disjoint shards (default 1)")
    p.add_argument("--threads", type=int, help="torch threads per process")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--rank", type=int, help=argparse.SUPPRESS)
    p.add_argument("--world-size", type=int, default=1, help=argparse.SUPPRESS)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``capture`` to the main CLI's subparsers."""
    p = subparsers.add_parser(
        "capture",
        help="record hook activations over a dataset into a store",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def argv_for(*, model: str, dataset: str, hooks: str | Sequence[str], out: Path | str,
             progress: bool = True, mode: str = "resume", **options: Any) -> list[str]:  # fmt: skip
    """The command line (after ``interp capture``) for these options."""
    hooks = hooks if isinstance(hooks, str) else ",".join(hooks)
    argv = ["--model", str(model), "--hooks", hooks, "--dataset", str(dataset), "--out", str(out)]
    for key, value in options.items():
        if key not in _FLAGS:
            raise InterpError(f"unknown capture option {key!r}; known: {', '.join(sorted(_FLAGS))}.")
        if value is not None:
            argv += [_FLAGS[key], ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    argv += {"overwrite": ["--overwrite"], "append": ["--append"]}.get(mode, [])
    return argv + ([] if progress else ["--no-progress"])


def _n_layers(args: argparse.Namespace) -> int | None:
    """Blocks to load: with ``auto``, one past the deepest block hook (``None`` if any hook needs more)."""
    from interp.models.contract import layer_of_hook

    if args.n_layers == "all":
        return None
    if args.n_layers != "auto":
        return int(args.n_layers)
    layers = [layer_of_hook(h.strip()) for h in args.hooks.split(",")]
    return None if any(layer is None for layer in layers) else 1 + max(layers)


def load_model_arg(args: argparse.Namespace) -> Any:
    """Load ``--model``: a factory, or ``interp.load_model`` with just enough layers."""
    from interp.capture.workers import is_factory, load_factory

    if is_factory(args.model):
        return load_factory(args.model)()
    from interp.models.registry import load_model

    n_layers = _n_layers(args)
    kwargs = {"dtype": args.model_dtype, "device": args.device}
    if n_layers is not None:
        try:
            return load_model(args.model, n_layers=n_layers, **kwargs)
        except (InterpError, IndexError, KeyError, ValueError):
            # more layers than the model has (loaders differ in what they raise): load it
            # whole, so that the hook check names the hooks the model really has
            pass
    return load_model(args.model, **kwargs)


def _run_one(args: argparse.Namespace) -> Any:
    """Capture in this process (alone, or as worker ``--rank`` of ``--world-size``)."""
    import torch

    from interp.capture.to_store import capture_to_store
    from interp.capture.workers import is_factory, load_factory

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model_arg(args)
    data = load_factory(args.dataset)(model) if is_factory(args.dataset) else args.dataset
    mode = "overwrite" if args.overwrite else "append" if args.append else "resume"
    return capture_to_store(
        model, data, args.hooks, args.out, dtype=args.dtype, batch_size=args.batch_size, max_tokens=args.max_tokens,
        positions=args.positions, memory_budget=args.memory_budget, context_size=args.context_size,
        split=args.split, limit=args.limit, mode=mode, worker=(args.rank or 0, args.world_size),
        progress=not args.no_progress,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Run ``interp capture``; print the store summary. Returns the exit code.

    Raises:
        InterpError: with a message that names the fix (the CLI prints it).
    """
    if args.workers > 1 and args.rank is None:
        from interp.capture.workers import capture_parallel

        options = {k: getattr(args, k) for k in _FLAGS}
        mode = "overwrite" if args.overwrite else "append" if args.append else "resume"
        store = capture_parallel(args.model, args.dataset, args.hooks, args.out, workers=args.workers,
                                 threads=args.threads, mode=mode, progress=not args.no_progress, **options)  # fmt: skip
    else:
        store = _run_one(args)
        if args.rank is not None:  # a worker: the coordinator reports
            return 0
    print(store.summary())
    return 0 if store.complete else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m interp.capture.cli`` (also how ``--workers`` starts each worker)."""
    p = argparse.ArgumentParser(prog="interp capture", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_arguments(p)
    try:
        return run(p.parse_args(argv))
    except InterpError as e:
        print(f"interp capture: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
