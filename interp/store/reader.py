"""Reading a store: shuffled streaming batches, random access, exemplar metadata.

:class:`Store` opens a store directory through its manifest. Shards are
memory-mapped on demand and at most ``max_open`` of them are mapped at once, so
reading a store many times larger than memory keeps the resident set near
``max_open`` shards plus one batch, mapped pages included:

* :meth:`Store.batches` streams batches of rows. With ``shuffle`` the shard
  order is a seeded permutation and rows are shuffled within a window of
  ``max_open`` shards; every stored token appears exactly once per epoch, and
  the same seed gives the same batches.
* ``store[i]`` / :meth:`Store.get` fetch rows by global token index (tokens are
  numbered in shard order), :meth:`Store.meta` the document, position, token id
  and context of each, and :meth:`Store.context_tokens` a whole context, which
  is what an exemplar view needs.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Int
from torch import Tensor

from interp.errors import InputError, UnknownNameError
from interp.store.format import open_shard, sha256_file
from interp.store.manifest import META_COLUMNS, CorruptStoreError, Manifest, ShardEntry
from interp.store.memory import return_freed_memory

__all__ = ["Store", "open_store", "parse_bytes", "format_bytes"]

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_bytes(size: int | str | None) -> int | None:
    """``"512MiB"`` / ``"2GB"`` / ``1000`` -> bytes; ``None`` stays ``None``."""
    if size is None or isinstance(size, int):
        return size
    s = str(size).strip().lower().replace(" ", "")
    num = s.rstrip("kmgib")
    unit = s[len(num) :]
    try:
        if unit not in _UNITS:
            raise ValueError
        return int(float(num) * _UNITS[unit])
    except ValueError:
        raise InputError(f"cannot read {size!r} as a size. Write e.g. 512MiB, 2GB or a number of bytes.") from None


def format_bytes(n: int | float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Store:
    """A read-only view of an activation store (see the module docstring).

    Args:
        path: the store directory.
        memory_budget: bytes (or ``"256MiB"``) the reader may use; shards are mapped
            in at most a quarter of it (``max_open`` shards, at least one), leaving the
            rest for the batches a caller holds. Until :meth:`close`, freed blocks go
            back to the OS (:func:`interp.store.memory.return_freed_memory`).
        max_open: most shards mapped at once (overrides ``memory_budget``).
    """

    def __init__(self, path: Path | str, *, memory_budget: int | str | None = None, max_open: int | None = None):
        self.path = Path(path)
        self.manifest = Manifest.load(self.path)
        self._shards: list[ShardEntry] = self.manifest.shards_in_order()
        counts = np.array([s.n_tokens for s in self._shards], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(counts)])  # [n_shards + 1] token offsets
        for s in self._shards:
            p = self.path / s.file
            if not p.is_file() or p.stat().st_size != s.bytes:
                raise CorruptStoreError(
                    f"shard {p} is missing or has the wrong size (manifest says {s.bytes} bytes). "
                    "Rerun the capture command that wrote the store: it recaptures broken shards."
                )
        budget = parse_bytes(memory_budget)
        self._memory = contextlib.ExitStack()  # a budget returns freed memory until close()
        if budget:
            self._memory.enter_context(return_freed_memory())
        largest = max((s.bytes for s in self._shards), default=1)
        self.max_open = max_open or (max(1, (budget // 4) // largest) if budget else 4)
        self._open: OrderedDict[int, dict[str, Tensor]] = OrderedDict()

    # ------------------------------------------------------------------ description
    @property
    def hooks(self) -> list[str]:
        """Hook names in the store."""
        return list(self.manifest.hooks)

    @property
    def n_tokens(self) -> int:
        """Stored tokens (rows)."""
        return int(self._starts[-1])

    def __len__(self) -> int:
        return self.n_tokens

    @property
    def dtype(self) -> torch.dtype:
        """Storage dtype of the activations."""
        return getattr(torch, self.manifest.dtype)

    def shape(self, hook: str) -> tuple[int, ...]:
        """Per-token shape of ``hook``'s activations (``(d_model,)`` for the residual stream)."""
        return tuple(self.manifest.shapes[self._hook(hook)])

    @property
    def complete(self) -> bool:
        """Whether the capture that writes this store has finished."""
        return self.manifest.complete

    def summary(self) -> str:
        """A few lines: model, hooks and shapes, tokens, shards, size, datasets, completeness."""
        m = self.manifest
        size = sum(s.bytes for s in self._shards)
        lines = [
            f"activation store {self.path}",
            f"  model    {m.model.get('name')} ({m.model.get('kind')}, {m.model.get('n_layers')} layers)",
            f"  tokens   {self.n_tokens:,} in {len(self._shards)} shards, {format_bytes(size)}, dtype {m.dtype}",
        ]
        lines += [f"  hook     {h}  {list(m.shapes.get(h, []))}" for h in m.hooks]
        for i, seg in enumerate(m.segments):
            d = seg.dataset
            state = "complete" if seg.complete else "INCOMPLETE (rerun the capture to resume)"
            lines.append(f"  data[{i}]  {d.get('name')} split={d.get('split')} ({d.get('kind')}): {state}")
        lines.append(f"  written by interp {m.code_version}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, tokens={self.n_tokens}, hooks={self.hooks})"

    def verify(self) -> None:
        """Check every shard against its recorded SHA-256.

        Raises:
            CorruptStoreError: naming the first shard that does not match.
        """
        for s in self._shards:
            p = self.path / s.file
            if not p.is_file() or sha256_file(p) != s.sha256:
                raise CorruptStoreError(
                    f"shard {p} does not match its checksum in the manifest: the file was changed or damaged. "
                    "Rerun the capture command that wrote the store; it recaptures that shard."
                )

    # ------------------------------------------------------------------ shards
    def _hook(self, hook: str) -> str:
        if hook not in self.manifest.hooks:
            raise UnknownNameError("hook name", hook, self.manifest.hooks, fix=f"This store holds {self.hooks}.")
        return hook

    def _shard(self, i: int) -> dict[str, Tensor]:
        """The tensors of shard ``i`` (mapped; least recently used shards are unmapped)."""
        if i in self._open:
            self._open.move_to_end(i)
            return self._open[i]
        while len(self._open) >= self.max_open:
            self._open.popitem(last=False)  # dropping the views unmaps the file
        try:
            tensors, _ = open_shard(self.path / self._shards[i].file)
        except (OSError, ValueError) as e:
            raise CorruptStoreError(
                f"cannot read shard {self.path / self._shards[i].file}: {e}. Rerun the capture command to rebuild it."
            ) from e
        self._open[i] = tensors
        return tensors

    def close(self) -> None:
        """Unmap every shard (and end a memory budget's allocator setting)."""
        self._open.clear()
        self._memory.close()

    # ------------------------------------------------------------------ streaming
    def batches(
        self,
        hooks: str | Sequence[str] | None = None,
        batch_size: int = 4096,
        *,
        shuffle: bool = True,
        seed: int = 0,
        epochs: int = 1,
        meta: bool = False,
        drop_last: bool = False,
    ) -> Iterator[Tensor | dict[str, Tensor]]:
        """Yield batches of rows, each token once per epoch.

        Args:
            hooks: one hook name (batches are tensors ``[batch, *shape]``) or several
                (batches are dicts ``{hook: tensor}``); default all hooks.
            batch_size: rows per batch (the last one of an epoch may be smaller).
            shuffle: permute shards and rows (within windows of ``max_open`` shards).
            seed: makes the order reproducible (for the same ``max_open``); epoch ``e`` uses ``seed + e``.
            epochs: passes over the store.
            meta: also return the metadata columns (forces dict batches).
            drop_last: skip each epoch's final short batch.
        """
        if batch_size < 1:
            raise InputError(f"batch_size must be a positive number of rows, got {batch_size}.")
        names = self.hooks if hooks is None else [hooks] if isinstance(hooks, str) else list(hooks)
        names = [self._hook(h) for h in names]
        as_dict = meta or not isinstance(hooks, str)
        for epoch in range(epochs):
            for batch in self._epoch(names, batch_size, shuffle, seed + epoch, meta, drop_last):
                yield batch if as_dict else batch[names[0]]

    def _epoch(self, hooks, batch_size, shuffle, seed, meta, drop_last) -> Iterator[dict[str, Tensor]]:
        """One pass: windows of ``max_open`` shards, rows shuffled within each window.

        A batch is allocated once and filled in place, also across a window
        boundary, so at most one batch is being built while the caller holds the last.
        """
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self._shards)) if shuffle else np.arange(len(self._shards))
        out, filled = None, 0
        for w in range(0, len(order), self.max_open):
            window = [int(i) for i in order[w : w + self.max_open]]
            counts = [self._shards[i].n_tokens for i in window]
            rows = np.concatenate([np.arange(c) for c in counts])
            pairs = np.stack([np.repeat(window, counts), rows], 1)  # [rows, 2]: (shard, row)
            if shuffle:
                pairs = pairs[rng.permutation(len(pairs))]
            pos = 0
            while pos < len(pairs):
                if out is None:
                    out, filled = self._alloc(batch_size, hooks, meta), 0
                take = min(batch_size - filled, len(pairs) - pos)
                self._fill(out, filled, pairs[pos : pos + take])
                filled, pos = filled + take, pos + take
                if filled == batch_size:
                    yield out
                    out = None
        if out is not None and not drop_last:
            yield {k: v[:filled] for k, v in out.items()}

    def _columns(self, hooks: Sequence[str], meta: bool) -> dict[str, str]:
        """Output key -> tensor name in a shard."""
        return {h: f"act.{h}" for h in hooks} | ({c: f"meta.{c}" for c in META_COLUMNS} if meta else {})

    def _alloc(self, n: int, hooks: Sequence[str], meta: bool) -> dict[str, Tensor]:
        """Empty outputs for ``n`` rows: ``{hook: [n, *shape]}`` plus int64 metadata columns."""
        return {k: torch.empty((n, *self.shape(k)), dtype=self.dtype) if k in hooks
                else torch.empty(n, dtype=torch.int64) for k in self._columns(hooks, meta)}  # fmt: skip

    def _fill(self, out: dict[str, Tensor], offset: int, pairs: np.ndarray) -> None:
        """Copy the rows of ``[n, 2]`` (shard, row) pairs into ``out[offset:offset + n]``, grouped by shard.

        Each shard's rows land in one contiguous run of the output, gathered
        straight from the mapped file with no intermediate copy.
        """
        cols = {k: v for k, v in self._columns([], True).items() if k in out}
        cols |= {k: f"act.{k}" for k in out if k not in cols}
        pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
        shards, starts, counts = np.unique(pairs[:, 0], return_index=True, return_counts=True)
        for i, lo, n in zip(shards, starts, counts, strict=True):
            t = self._shard(int(i))
            rows = torch.from_numpy(pairs[lo : lo + n, 1])
            for k, name in cols.items():
                torch.index_select(t[name], 0, rows, out=out[k][offset + lo : offset + lo + n])

    def _gather(self, pairs: np.ndarray, hooks: Sequence[str], meta: bool) -> dict[str, Tensor]:
        """The rows given as ``[n, 2]`` (shard, row) pairs, in that order."""
        out = self._alloc(len(pairs), hooks, meta)
        for i in np.unique(pairs[:, 0]):
            t = self._shard(int(i))
            sel = np.flatnonzero(pairs[:, 0] == i)
            rows = torch.from_numpy(pairs[sel, 1])
            for k, name in self._columns(hooks, meta).items():
                out[k].index_copy_(0, torch.from_numpy(sel), t[name].index_select(0, rows))
        return out

    # ------------------------------------------------------------------ random access
    def _locate(self, index: Any) -> np.ndarray:
        """Global token indices (int, slice, sequence or tensor) -> ``[n, 2]`` (shard, row) pairs."""
        if isinstance(index, slice):
            idx = np.arange(self.n_tokens)[index]
        else:
            idx = np.asarray(index.cpu() if isinstance(index, Tensor) else index, dtype=np.int64).reshape(-1)
        idx = np.where(idx < 0, idx + self.n_tokens, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_tokens):
            raise InputError(f"token index out of range for a store of {self.n_tokens} tokens (got {index!r}).")
        shard = np.searchsorted(self._starts, idx, side="right") - 1
        return np.stack([shard, idx - self._starts[shard]], 1)

    def get(self, index: Any, hooks: str | Sequence[str] | None = None) -> Tensor | dict[str, Tensor]:
        """Rows by global token index: a tensor ``[n, *shape]`` for one hook, else a dict."""
        names = self.hooks if hooks is None else [hooks] if isinstance(hooks, str) else list(hooks)
        out = self._gather(self._locate(index), [self._hook(h) for h in names], meta=False)
        single = isinstance(hooks, str) or (hooks is None and len(names) == 1)
        return out[names[0]] if single else out

    def __getitem__(self, index: Any) -> Tensor | dict[str, Tensor]:
        """``store[i]`` / ``store[i:j]`` / ``store[[i, j]]``: rows of every hook (a tensor if there is one hook)."""
        out = self.get(index)
        if isinstance(index, (int, np.integer)):
            return out[0] if isinstance(out, Tensor) else {k: v[0] for k, v in out.items()}
        return out

    def meta(self, index: Any) -> dict[str, Int[Tensor, " n"]]:
        """Metadata columns of rows: ``doc``, ``pos``, ``token``, ``context``, ``ctx_pos``.

        ``doc`` / ``pos`` say which document (or image) and which position (or
        patch) a row comes from; ``context`` / ``ctx_pos`` locate it in the model
        input, whose token ids :meth:`context_tokens` returns.
        """
        out = self._gather(self._locate(index), [], meta=True)
        return {c: out[c] for c in META_COLUMNS}

    def context_tokens(self, context: int, segment: int = 0) -> Int[Tensor, " ctx"]:
        """Token ids of the whole model input row ``context`` (text stores only)."""
        cands = [i for i, s in enumerate(self._shards)
                 if s.segment == segment and s.n_contexts and s.context_start <= context]  # fmt: skip
        if cands:  # shards hold consecutive context ranges: the last one starting before `context`
            t = self._shard(cands[-1])
            hit = (t["ctx.index"] == context).nonzero()
            if len(hit) and "ctx.tokens" in t:
                return t["ctx.tokens"][int(hit[0, 0])].clone().long()
        raise InputError(
            f"context {context} of segment {segment} is not in {self.path}: it held no stored token, "
            "or the store holds images (use meta()['doc'] for the image index)."
        )


def open_store(path: Path | str, **kwargs: Any) -> Store:
    """Open the store at ``path`` (see :class:`Store` for the options)."""
    return Store(path, **kwargs)
