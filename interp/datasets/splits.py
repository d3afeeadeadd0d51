"""Deterministic train / held-out splits that never depend on data order.

An item goes to the held-out split when a hash of its stable key (document id,
file name, image index) falls below the held-out fraction. The assignment of an
item therefore never changes when a corpus grows, is reordered or is read in
shards, and the held-out part is never seen by training.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

from interp.errors import InputError

__all__ = ["Split", "is_held_out", "split_keys", "DEFAULT_HELD_OUT"]

Split = Literal["train", "heldout", "all"]

#: Fraction of every corpus reserved for evaluation.
DEFAULT_HELD_OUT = 0.1


def is_held_out(key: str, fraction: float = DEFAULT_HELD_OUT, salt: str = "interp-split-v1") -> bool:
    """Whether the item with stable key ``key`` belongs to the held-out split."""
    if not 0.0 <= fraction < 1.0:
        raise InputError(f"held-out fraction must be in [0, 1), got {fraction}.")
    digest = hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def split_keys(keys: Sequence[str], split: str, fraction: float = DEFAULT_HELD_OUT) -> list[int]:
    """Indices of ``keys`` that belong to ``split`` (``train``, ``heldout`` or ``all``)."""
    if split == "all":
        return list(range(len(keys)))
    if split not in ("train", "heldout"):
        raise InputError(f"unknown split {split!r}; expected 'train', 'heldout' or 'all'.")
    want = split == "heldout"
    return [i for i, k in enumerate(keys) if is_held_out(k, fraction) == want]
