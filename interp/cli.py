"""The ``interp`` command line: one program, one subcommand per pipeline stage.

Heavy imports (torch, TransformerLens) happen inside each subcommand, so
``interp --help`` answers instantly. Each stage module registers its own
subcommand through ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "build_parser"]

#: Modules that add a subcommand: each defines ``register(subparsers)``.
STAGE_CLIS = ("interp.capture.cli", "interp.store.cli", "interp.labeling.cli", "interp.steering.cli", "interp.demo",
              "interp.atlas.cli", "circuits.cli")

EPILOG = """\
examples:
  interp models                       list the registry: sizes, offline availability
  interp demo                         run the main job on the shipped defaults (offline, CPU)
  interp demo --name trial --overwrite

Every job writes runs/<name>/ (resolved config, package versions, seeds, outputs)
and resumes when rerun with the same configuration.
"""


def _cmd_models(args: argparse.Namespace) -> int:
    from interp.models.registry import list_models

    rows = list_models()
    header = f"{'name':<14} {'kind':<8} {'family':<7} {'params':>9} {'size':>9}  {'offline':<7} description"
    print(header)
    print("-" * len(header))
    for r in rows:
        size = "-" if r["size_mb"] is None else f"{r['size_mb']:.1f} MB"
        print(f"{r['name']:<14} {r['kind']:<8} {r['family']:<7} {r['params'] / 1e6:>8.1f}M {size:>9}  "
              f"{'yes' if r['offline'] else 'NO':<7} {r['description']}")
        if not r["offline"]:
            print(f"{'':<14} install: {r['install']}")
    print("\nAlso accepted: a local Hugging Face directory (GPT-2, Llama, BERT, ViT, DINOv2 families) "
          "or a hub name such as 'gpt2' (needs network).")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``interp`` argument parser with every stage's subcommand."""
    parser = argparse.ArgumentParser(
        prog="interp",
        description="A workbench for mechanistic interpretability of language models and vision "
        "transformers: capture, SAEs, labels, circuits, steering.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    models = sub.add_parser("models", help="list the model registry with sizes and offline availability",
                            description="List registry models: kind, family, parameters, packaged size, "
                            "and whether each loads offline (with the install command when not).")
    models.set_defaults(func=_cmd_models)
    for module in STAGE_CLIS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``interp`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from interp.errors import InterpError

    try:
        return int(args.func(args) or 0)
    except InterpError as exc:  # user-facing errors: the message says the fix
        print(f"interp {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
