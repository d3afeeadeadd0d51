"""The activation store: append-only safetensors shards plus a JSON manifest.

A store directory holds ``manifest.json`` (model, hooks, per-token shapes,
dtype, dataset and split, token count, a SHA-256 per shard, the code version)
and ``shard-SSS-KKKKKK.safetensors`` files, each with every hook's activations
and the per-token metadata (document, position, token id, context) that
exemplar views need. :mod:`interp.capture` writes stores; everything
downstream (SAE training, labeling, the atlas) reads them through
:class:`Store`:

>>> store = open_store("runs/demo/store")                       # doctest: +SKIP
>>> for x in store.batches("blocks.6.hook_resid_post", 4096):    # doctest: +SKIP
...     ...  # x: [4096, d_model], shuffled, each token once per epoch

Names resolve on first use (no torch import for ``interp --help``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interp._lazy import lazy_exports

_EXPORTS = {
    "Store": "interp.store.reader",
    "open_store": "interp.store.reader",
    "parse_bytes": "interp.store.reader",
    "Manifest": "interp.store.manifest",
    "Segment": "interp.store.manifest",
    "ShardEntry": "interp.store.manifest",
    "META_COLUMNS": "interp.store.manifest",
    "StoreError": "interp.store.manifest",
    "CorruptStoreError": "interp.store.manifest",
    "StoreMismatchError": "interp.store.manifest",
}

__all__ = [
    "META_COLUMNS",
    "CorruptStoreError",
    "Manifest",
    "Segment",
    "ShardEntry",
    "Store",
    "StoreError",
    "StoreMismatchError",
    "open_store",
    "parse_bytes",
]

if TYPE_CHECKING:  # pragma: no cover
    from interp.store.manifest import (
        META_COLUMNS,
        CorruptStoreError,
        Manifest,
        Segment,
        ShardEntry,
        StoreError,
        StoreMismatchError,
    )
    from interp.store.reader import Store, open_store, parse_bytes


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
