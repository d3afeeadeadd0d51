"""Writing a store: open or resume it, buffer a shard, commit shards atomically.

The capture loop (:mod:`interp.capture.to_store`) calls three things here:

* :func:`open_for_capture` creates the store or checks that the one at the path
  holds the same model, hooks and dtype, picks the segment to write (a new one,
  or the unfinished one a rerun resumes), cleans up what a killed run left
  (temporary files, shards missing from the manifest, shards whose checksum no
  longer matches) and says which shards are already done.
* :class:`ShardBuffer` holds one shard's rows in buffers allocated once.
* :func:`commit_shard` writes the buffer to ``.<name>.<pid>.tmp``, fsyncs it,
  renames it into place and records it in the manifest, so a shard on disk is
  always whole; :func:`finish_segment` marks the segment complete.

Every manifest update happens under an exclusive ``flock`` on ``.lock``, which
is what lets N worker processes fill disjoint shards of one store.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from interp.store.format import sha256_file, write_shard_file
from interp.store.manifest import (
    FORMAT,
    MANIFEST,
    META_COLUMNS,
    CorruptStoreError,
    Manifest,
    Segment,
    ShardEntry,
    StoreError,
    StoreMismatchError,
    shard_file_name,
)

__all__ = [
    "CaptureState",
    "ShardBuffer",
    "open_for_capture",
    "commit_shard",
    "finish_segment",
    "store_lock",
    "storage_dtype",
]

log = logging.getLogger("interp.store")
LOCK = ".lock"
_SHARD_RE = re.compile(r"^shard-\d{3}-\d{6}\.safetensors$")
_TMP_RE = re.compile(r"^\.(shard-\d{3}-\d{6}\.safetensors)\.(\d+)\.tmp$")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@contextmanager
def store_lock(store_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``store_dir`` (between processes) while the block runs."""
    store_dir.mkdir(parents=True, exist_ok=True)
    with open(store_dir / LOCK, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class CaptureState:
    """Where a capture writes: the segment, its shard size and the shards already done."""

    store_dir: Path
    segment: int
    batches_per_shard: int
    done: frozenset[int]
    done_tokens: int
    complete: bool


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_leftovers(store_dir: Path, manifest: Manifest | None) -> None:
    """Remove temporary files of dead writers and shard files the manifest does not list."""
    listed = {s.file for s in manifest.shards} if manifest else set()
    for p in store_dir.iterdir():
        m = _TMP_RE.match(p.name)
        if (m and not _pid_alive(int(m.group(2)))) or (p.name.startswith(f".{MANIFEST}.") and p.suffix == ".tmp"):
            p.unlink(missing_ok=True)  # a killed writer's half file
        elif _SHARD_RE.match(p.name) and p.name not in listed:
            p.unlink(missing_ok=True)  # renamed, but killed before the manifest listed it: redo


def _verify_segment(store_dir: Path, manifest: Manifest, segment: int) -> None:
    """Drop (and delete) shards of ``segment`` whose file is missing or fails its checksum."""
    keep = []
    for s in manifest.shards:
        path = store_dir / s.file
        if s.segment == segment:
            ok = path.is_file() and path.stat().st_size == s.bytes and sha256_file(path) == s.sha256
            if not ok:
                log.warning("shard %s is missing or corrupt; it will be captured again", path)
                path.unlink(missing_ok=True)
                continue
        keep.append(s)
    manifest.shards = keep
    manifest.update_complete(segment)


def _segment_index(manifest: Manifest, dataset: dict[str, Any], capture: dict[str, Any]) -> int | None:
    """The segment that holds exactly this capture (the last one, if several), or ``None``."""
    match = [i for i, s in enumerate(manifest.segments) if s.dataset == dataset and s.capture == capture]
    return match[-1] if match else None


def _refusal(manifest: Manifest, header: dict[str, Any], dataset: dict[str, Any], capture: dict[str, Any],
             append: bool, store_dir: Path) -> str | None:  # fmt: skip
    """Why the store at ``store_dir`` cannot take this capture, with the fix; ``None`` if it can."""
    replace = "Choose another output path, or pass overwrite (--overwrite) to replace it."
    for key, what in (("model", "model"), ("hooks", "hook set"), ("dtype", "storage dtype")):
        have, want = getattr(manifest, key), header[key]
        if have != want:
            if key == "model" and have.get("name") != want.get("name"):
                have, want = have.get("name"), want.get("name")
            return f"{store_dir} already holds a store with {what} {have!r}, not {want!r}. {replace}"
    if manifest.segments and not append and _segment_index(manifest, dataset, capture) is None:
        old = manifest.segments[-1]
        return (f"{store_dir} already holds a capture of dataset {old.dataset} with options {old.capture}, "
                f"not dataset {dataset} with options {capture}. Pass append (--append) to add this data "
                f"to the store, or c{replace[1:]}")  # fmt: skip
    return None


def _is_store_dir(path: Path) -> bool:
    """Whether ``path`` holds only files a store writes (so it may be replaced)."""
    names = [p.name for p in path.iterdir()]
    own = (MANIFEST, LOCK)
    return all(n in own or _SHARD_RE.match(n) or _TMP_RE.match(n) or n.startswith(f".{MANIFEST}.") for n in names)


def _prepare_dir(store_dir: Path) -> None:
    """Create ``store_dir``, refusing a file or a directory holding anything but a store."""
    if store_dir.exists() and not store_dir.is_dir():
        raise StoreError(f"output path {store_dir} is a file, not a directory. Choose a directory path.")
    if store_dir.is_dir() and not _is_store_dir(store_dir):
        raise StoreError(
            f"{store_dir} exists and holds files that are not part of an activation store. "
            "Choose an empty or new directory for the store."
        )
    store_dir.mkdir(parents=True, exist_ok=True)


def _empty_store(store_dir: Path) -> None:
    """Delete every file of the store but the lock (held by the caller)."""
    for p in store_dir.iterdir():
        if p.name != LOCK:
            p.unlink()


def _load_or_replace(store_dir: Path, mode: str) -> Manifest | None:
    """The store's manifest (``None`` for a new store); an unreadable one is replaced only with overwrite."""
    if not (store_dir / MANIFEST).is_file():
        return None
    try:
        return Manifest.load(store_dir)
    except CorruptStoreError:
        if mode != "overwrite":
            raise
        _empty_store(store_dir)
        return None


def open_for_capture(
    store_dir: Path | str,
    header: dict[str, Any],
    dataset: dict[str, Any],
    capture: dict[str, Any],
    batches_per_shard: int,
    mode: str = "resume",
) -> CaptureState:
    """Create, resume or extend the store at ``store_dir`` for one capture run.

    Rerunning the same capture always resumes it, whatever the mode.

    Args:
        store_dir: the store directory.
        header: ``model`` (ModelInfo dict), ``hooks`` (list), ``dtype``, ``code_version``.
        dataset: the data source's description.
        capture: the options that fix which tokens are stored.
        batches_per_shard: shard size for a new segment (a resumed one keeps its own).
        mode: ``resume`` (default: continue the same capture, refuse anything else),
            ``append`` (add a segment for new data of the same model and hooks) or
            ``overwrite`` (replace a store that holds anything else).

    Raises:
        StoreMismatchError: the path holds a store of another model, hook set or dtype
            (unless ``overwrite``), or of other data (unless ``append`` or ``overwrite``).
    """
    if mode not in ("resume", "append", "overwrite"):
        raise ValueError(f"mode must be 'resume', 'append' or 'overwrite', got {mode!r}")
    store_dir = Path(store_dir)
    _prepare_dir(store_dir)
    with store_lock(store_dir):
        manifest = _load_or_replace(store_dir, mode)
        _clean_leftovers(store_dir, manifest)
        why = manifest and _refusal(manifest, header, dataset, capture, mode == "append", store_dir)
        if why and mode != "overwrite":
            raise StoreMismatchError(why)
        if why:  # overwrite: replace the other store
            _empty_store(store_dir)
        if manifest is None or why:
            manifest = Manifest(model=header["model"], hooks=list(header["hooks"]), dtype=header["dtype"],
                                code_version=header["code_version"])  # fmt: skip
        seg = _segment_index(manifest, dataset, capture)
        if seg is None:
            manifest.segments.append(Segment(dataset=dataset, capture=capture, batches_per_shard=batches_per_shard))
            seg = len(manifest.segments) - 1
        _verify_segment(store_dir, manifest, seg)
        manifest.save(store_dir)
        mine = [s for s in manifest.shards if s.segment == seg]
        segment = manifest.segments[seg]
        return CaptureState(store_dir, seg, segment.batches_per_shard, frozenset(s.index for s in mine),
                            sum(s.n_tokens for s in mine), segment.complete)  # fmt: skip


class ShardBuffer:
    """One shard's rows, in buffers allocated on first use and reused for every shard.

    Args:
        hooks: hook names, in manifest order.
        shapes: per-token shape of each hook's activation.
        dtype: storage dtype of activations.
        capacity: most rows a shard can hold (an upper bound, so buffers never grow).
    """

    def __init__(self, hooks: Sequence[str], shapes: dict[str, Sequence[int]], dtype: torch.dtype, capacity: int):
        self.hooks = list(hooks)
        self.acts = {h: torch.empty((capacity, *shapes[h]), dtype=dtype) for h in self.hooks}
        self.meta = {c: torch.empty(capacity, dtype=torch.int64) for c in META_COLUMNS}
        self.n_tokens = 0
        self.ctx_index: list[Tensor] = []
        self.ctx_tokens: list[Tensor] = []

    def add(
        self,
        acts: dict[str, Tensor],
        meta: dict[str, Int[Tensor, " n"]],
        ctx_index: Int[Tensor, " c"],
        ctx_tokens: Int[Tensor, "c ctx"] | None,
    ) -> None:
        """Append ``n`` rows (acts ``[n, *shape]`` in any float dtype, meta columns ``[n]``)."""
        n = len(meta["doc"])
        lo, hi = self.n_tokens, self.n_tokens + n
        if hi > len(self.meta["doc"]):  # only a source whose batches outgrow batch_size gets here
            self._grow(max(hi, 2 * len(self.meta["doc"])))
        for h in self.hooks:
            self.acts[h][lo:hi].copy_(acts[h])
        for c in META_COLUMNS:
            self.meta[c][lo:hi].copy_(meta[c])
        self.n_tokens = hi
        self.ctx_index.append(ctx_index.to(torch.int64))
        if ctx_tokens is not None:
            self.ctx_tokens.append(ctx_tokens.to(torch.int32))

    def _grow(self, capacity: int) -> None:
        """Reallocate every buffer with room for ``capacity`` rows, keeping the rows held."""
        for bufs in (self.acts, self.meta):
            for k, t in bufs.items():
                bigger = torch.empty((capacity, *t.shape[1:]), dtype=t.dtype)
                bigger[: self.n_tokens] = t[: self.n_tokens]
                bufs[k] = bigger

    def tensors(self) -> dict[str, Tensor]:
        """The shard's tensors as stored: ``act.<hook>``, ``meta.<column>``, ``ctx.index``, ``ctx.tokens``."""
        n = self.n_tokens
        out = {f"act.{h}": self.acts[h][:n] for h in self.hooks}
        out.update({f"meta.{c}": self.meta[c][:n] for c in META_COLUMNS})
        out["ctx.index"] = torch.cat(self.ctx_index) if self.ctx_index else torch.empty(0, dtype=torch.int64)
        if self.ctx_tokens:
            out["ctx.tokens"] = torch.cat(self.ctx_tokens)  # [contexts, ctx]
        return out

    def reset(self) -> None:
        """Empty the buffer (the allocations are kept)."""
        self.n_tokens = 0
        self.ctx_index, self.ctx_tokens = [], []


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disk_full(store_dir: Path, what: str, nbytes: int, e: OSError) -> StoreError:
    return StoreError(
        f"disk full while writing {what} ({nbytes / 1e6:.1f} MB) to {store_dir}: {e.strerror}. "
        "Nothing partial was kept. Free space (or choose another output path) and rerun the same "
        "command: the capture resumes after the last complete shard."
    )


def commit_shard(state: CaptureState, index: int, buffer: ShardBuffer, shapes: dict[str, list[int]]) -> ShardEntry:
    """Write ``buffer`` as shard ``index`` of the state's segment and record it in the manifest.

    Raises:
        StoreError: the disk is full (the temporary file is removed, the manifest untouched).
    """
    store_dir, name = state.store_dir, shard_file_name(state.segment, index)
    tmp = store_dir / f".{name}.{os.getpid()}.tmp"
    tensors = buffer.tensors()
    nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
    try:
        with open(tmp, "wb") as f:
            meta = {"format": FORMAT, "segment": str(state.segment), "index": str(index)}
            sha, size = write_shard_file(f, tensors, meta)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in _DISK_FULL:
            raise _disk_full(store_dir, f"shard {name}", nbytes, e) from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    ctx = tensors["ctx.index"]
    entry = ShardEntry(file=name, segment=state.segment, index=index, n_tokens=buffer.n_tokens,
                       n_contexts=len(ctx), context_start=int(ctx[0]) if len(ctx) else -1,
                       bytes=size, sha256=sha)  # fmt: skip
    with store_lock(store_dir):
        os.replace(tmp, store_dir / name)
        _fsync_dir(store_dir)
        manifest = Manifest.load(store_dir)
        _check_shapes(manifest, shapes, store_dir)
        manifest.add_shard(entry)
        manifest.update_complete(state.segment)
        try:
            manifest.save(store_dir)
        except OSError as e:
            (store_dir / name).unlink(missing_ok=True)
            if e.errno in _DISK_FULL:
                raise _disk_full(store_dir, MANIFEST, 0, e) from e
            raise
    return entry


def _check_shapes(manifest: Manifest, shapes: dict[str, list[int]], store_dir: Path) -> None:
    """Record per-token shapes on the first shard; later shards must agree."""
    shapes = {h: list(s) for h, s in shapes.items()}
    if not manifest.shapes:
        manifest.shapes = shapes
    elif manifest.shapes != shapes:
        raise CorruptStoreError(
            f"{store_dir} records per-token shapes {manifest.shapes} but this capture produces {shapes}. "
            "The model changed since the store was started; capture into a new path or pass overwrite."
        )


def finish_segment(state: CaptureState, n_shards: int) -> Manifest:
    """Record that the segment has ``n_shards`` shards in all; mark it complete if all are present."""
    with store_lock(state.store_dir):
        manifest = Manifest.load(state.store_dir)
        seg = manifest.segments[state.segment]
        if seg.n_shards is not None and seg.n_shards != n_shards:
            raise CorruptStoreError(
                f"{state.store_dir} segment {state.segment} was recorded with {seg.n_shards} shards, "
                f"this run found {n_shards}: the data changed between runs. Capture into a new path."
            )
        seg.n_shards = n_shards
        manifest.update_complete(state.segment)
        manifest.save(state.store_dir)
        return manifest


def storage_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """Parse a storage dtype: ``float32``, ``float16`` or ``bfloat16`` (or their aliases, or a torch dtype)."""
    from interp.errors import InputError
    from interp.models.decoder import resolve_dtype

    allowed = (torch.float32, torch.float16, torch.bfloat16)
    try:
        parsed = resolve_dtype(dtype)
    except InputError:
        parsed = None
    if parsed not in allowed:
        raise InputError(
            f"storage dtype must be one of float32, float16, bfloat16, got {dtype!r}. Pass e.g. dtype='float16'."
        )
    return parsed
