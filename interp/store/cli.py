"""``interp store``: describe and check an activation store.

The main CLI (:mod:`interp.cli`) calls :func:`register`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register", "run"]

DESCRIPTION = """\
Print what an activation store holds (model, hooks and per-token shapes,
tokens, shards, datasets, completeness); with --verify, check every shard
against the SHA-256 in the manifest.

examples:
  interp store runs/bible-l6/store
  interp store runs/bible-l6/store --verify
  interp store runs/bible-l6/store --json > manifest.json
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``store`` to the main CLI's subparsers."""
    p = subparsers.add_parser(
        "store",
        help="describe an activation store and verify its checksums",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", help="store directory (the --out of `interp capture`)")
    p.add_argument("--verify", action="store_true", help="recompute every shard's SHA-256 and compare")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON instead of the summary")
    p.add_argument(
        "--show",
        type=int,
        nargs="*",
        metavar="INDEX",
        help="also print the metadata (document, position, token, context) of these token indices",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``interp store``. Returns 0, or 1 for an incomplete store.

    Raises:
        StoreError / CorruptStoreError: not a store, a missing or corrupt shard.
    """
    from interp.store.reader import Store

    store = Store(args.path)
    if args.verify:
        store.verify()
    print(store.manifest.to_json() if args.json else store.summary())
    if args.verify and not args.json:
        print(f"  verified {len(store.manifest.shards)} shards against their SHA-256")
    for i in args.show or []:
        meta = {k: int(v[0]) for k, v in store.meta([i]).items()}
        print(f"  token {i}: {json.dumps(meta)}")
    return 0 if store.complete else 1
