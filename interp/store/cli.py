"""``interp store``: describe and check an activation store.

The main CLI (:mod:`interp.cli`) calls :func:`register`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register", "run_info", "run_verify"]

DESCRIPTION = """\
Inspect an activation store written by `interp capture`.

  info    what the store holds: model, hooks and per-token shapes, tokens,
          shards, datasets, completeness; --show prints token metadata
  verify  recompute every shard's SHA-256 and compare with the manifest; names
          a corrupt, truncated or missing shard

examples:
  interp store info runs/bible-l6/store
  interp store info runs/bible-l6/store --json > manifest.json
  interp store info runs/bible-l6/store --show 0 15
  interp store verify runs/bible-l6/store
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``store`` (with ``info`` and ``verify``) to the main CLI's subparsers."""
    p = subparsers.add_parser(
        "store",
        help="summarise an activation store (info) or check its shards (verify)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="store_action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="summarise the store", description="Summarise an activation store.")
    info.add_argument("path", help="store directory (the --out of `interp capture`)")
    info.add_argument("--json", action="store_true", help="print the manifest as JSON instead of the summary")
    info.add_argument("--show", type=int, nargs="*", metavar="INDEX",
                      help="also print the metadata (document, position, token, context) of these token indices")
    info.set_defaults(func=run_info)
    verify = actions.add_parser("verify", help="check every shard against its SHA-256",
                                description="Recompute every shard's SHA-256 and compare with the manifest.")
    verify.add_argument("path", help="store directory (the --out of `interp capture`)")
    verify.set_defaults(func=run_verify)
    return p


def run_info(args: argparse.Namespace) -> int:
    """``interp store info``. Returns 0, or 1 for an incomplete store."""
    from interp.store.reader import Store

    store = Store(args.path)
    print(store.manifest.to_json() if args.json else store.summary())
    for i in args.show or []:
        meta = {k: int(v[0]) for k, v in store.meta([i]).items()}
        print(f"  token {i}: {json.dumps(meta)}")
    return 0 if store.complete else 1


def run_verify(args: argparse.Namespace) -> int:
    """``interp store verify``. Returns 0, or 1 for an incomplete store.

    Raises:
        StoreError / CorruptStoreError: not a store, or a missing or corrupt shard (named).
    """
    from interp.store.reader import Store

    store = Store(args.path)
    store.verify()
    print(f"{args.path}: {len(store.manifest.shards)} shards match their SHA-256"
          f"{'' if store.complete else ' (capture incomplete: rerun it to finish)'}")
    return 0 if store.complete else 1
