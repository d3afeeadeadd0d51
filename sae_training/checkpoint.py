"""Atomic training checkpoints: ``<out>/checkpoints/step-NNNNNNNN.pt``.

A checkpoint holds everything the loop needs to continue bit for bit: every
SAE's parameters and buffers, its Adam state, the dead-latent counters, the
input scale, the step and the token count (the data position follows from the
step: the store's order is seeded). It is written to a temporary file in the
same folder, flushed to disk and renamed, so a crash or a full disk leaves the
previous checkpoint as the latest one; older ones beyond ``keep`` are removed
only after the new one is in place.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import torch

from interp.cache import atomic_write
from interp.errors import InterpError

__all__ = ["CheckpointError", "save_checkpoint", "latest_checkpoint", "load_checkpoint", "list_checkpoints"]


class CheckpointError(InterpError):
    """A checkpoint could not be written (the previous one is intact) or read."""


def list_checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints of run ``out``, oldest first."""
    return sorted((Path(out) / "checkpoints").glob("step-*.pt"))


def latest_checkpoint(out: Path) -> Path | None:
    """The newest complete checkpoint of run ``out``, or ``None``."""
    found = list_checkpoints(out)
    return found[-1] if found else None


def save_checkpoint(out: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` as the checkpoint of ``step`` atomically; keep the newest ``keep``.

    Raises:
        CheckpointError: the write failed (e.g. the disk is full); nothing was
            replaced and the previous checkpoint is still the latest.
    """
    folder = Path(out) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"step-{step:08d}.pt"
    try:
        atomic_write(target, lambda f: torch.save(state, f))
    except (OSError, RuntimeError) as e:
        full = isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) or "space" in str(e).lower()
        prev = latest_checkpoint(out)
        why = "the disk is full" if full else f"writing failed ({e})"
        raise CheckpointError(f"checkpoint of step {step} in {folder} was not written: {why}. The previous checkpoint "
                              f"({prev.name if prev else 'none'}) is intact. Free disk space and run "
                              f"python -m sae_training resume --out {out}.") from e  # fmt: skip
    for old in list_checkpoints(out)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return target


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    except Exception as e:  # noqa: BLE001 - any read failure means a damaged file
        raise CheckpointError(f"cannot read checkpoint {path}: {e}. Delete it to resume from the one before.") from e
