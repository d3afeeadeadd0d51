"""Capture to the store: run a model over a dataset, record hooks into shards.

:func:`capture_to_store` is the one loop behind ``interp capture``. It

* validates the hooks and stops every forward pass after the last block they
  need (``stop_at_layer``), so ``blocks.6.hook_resid_post`` of a 30-layer model
  costs 7 blocks;
* keeps only the chosen positions (by default it drops BOS, special and padding
  tokens), converts them to the storage dtype and checks them for NaN/Inf;
* cuts the batch stream into shards of a fixed number of batches, chosen from
  the memory budget when the store is started, so shard ``k`` always holds the
  same contexts: a rerun after ``kill -9`` skips the shards already in the
  manifest and ends with a byte-identical store, and worker ``r`` of ``N``
  captures the shards ``k % N == r`` of the same stream into the same store;
* shows a progress bar with tokens/s and the time left.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Bool
from torch import Tensor

import interp
from interp.capture.batches import CaptureBatch, as_source, keep_mask, parse_positions
from interp.capture.memory import Activations, capture, check_fired, resolve_hooks, stop_layer
from interp.errors import InputError
from interp.models.contract import model_info, prepare_inputs
from interp.store.memory import return_freed_memory
from interp.store.reader import Store, format_bytes, parse_bytes
from interp.store.writer import CaptureState, ShardBuffer, commit_shard, finish_segment, open_for_capture, storage_dtype

__all__ = ["capture_to_store", "DEFAULT_MEMORY_BUDGET"]

log = logging.getLogger("interp.capture")

#: Default memory budget (beyond the loaded model).
DEFAULT_MEMORY_BUDGET = 1 << 30
#: A shard's buffer takes at most this fraction (1/8) of the memory budget.
SHARD_FRACTION = 8
_META_BYTES = 5 * 8  # five int64 metadata columns per stored token
_QUERY_MAJOR = ("hook_pattern", "hook_attn_scores")  # [batch, head, q, k] -> per query token


@dataclass(frozen=True)
class _Plan:
    hooks: list[str]
    stop: int | None
    dtype: torch.dtype
    positions: str | list[int]
    batch_size: int
    max_tokens: int | None
    check_finite: bool


def _token_major(name: str, t: Tensor) -> Tensor:
    """Put the position dimension second: attention patterns are stored per query token."""
    return t.movedim(2, 1) if name.endswith(_QUERY_MAJOR) else t  # [batch, q, head, k]


def _forward(model: Any, inputs: Tensor, plan: _Plan, acts: Activations) -> dict[str, Tensor]:
    """One forward pass, stopped early, recorded by the hooks behind ``acts``; ``{hook: [n, pos, *shape]}``."""
    acts.clear()
    x = prepare_inputs(model, inputs)
    if plan.stop is None:
        model(x)
    else:
        model(x, stop_at_layer=plan.stop)
    check_fired(model, plan.hooks, acts, plan.stop)
    out = {h: _token_major(h, acts[h]) for h in plan.hooks}
    acts.clear()
    return out


def _batches_per_shard(shapes: dict[str, list[int]], n_pos: int, plan: _Plan, budget: int) -> int:
    """Batches per shard so that a shard's buffer takes at most an eighth of ``budget``.

    The rest of the budget is for the model's forward pass, the batch being
    stored, and the code pages a first pass touches; a reader of the store maps
    two such shards in a quarter of the same budget.
    """
    row = sum(int(torch.Size(s).numel()) for s in shapes.values()) * plan.dtype.itemsize + _META_BYTES
    batch_bytes = plan.batch_size * n_pos * row
    share = budget // SHARD_FRACTION
    if batch_bytes > share:
        fit = max(1, share // (n_pos * row))
        raise InputError(
            f"one batch of {plan.batch_size} contexts x {n_pos} positions stores {format_bytes(batch_bytes)}, more "
            f"than 1/{SHARD_FRACTION} of the memory budget ({format_bytes(budget)}). Lower the batch size to {fit} "
            f"or raise the memory budget to {format_bytes(SHARD_FRACTION * batch_bytes)}."
        )
    return max(1, share // batch_bytes)


def _check_finite(rows: Tensor, raw: Tensor, hook: str, b: int, ctx0: int, n: int, dtype: torch.dtype) -> None:
    """Raise naming the hook and batch when stored activations hold NaN/Inf."""
    if torch.isfinite(rows).all():
        return
    bad = int((~torch.isfinite(rows)).sum())
    why = (f" The model's values are finite: they overflow {dtype} (max {torch.finfo(dtype).max:.0f}); "
           "store as bfloat16 or float32." if torch.isfinite(raw).all() else
           " Check the model weights and the inputs of that batch.")  # fmt: skip
    raise InputError(
        f"activation {hook} holds {bad} NaN/Inf values in batch {b} (contexts {ctx0}..{ctx0 + n - 1}).{why}"
    )


def _truncate(keep: Bool[Tensor, "n pos"], remaining: int) -> Bool[Tensor, "n pos"]:
    """Keep only the first ``remaining`` kept positions (row-major), for the token budget."""
    flat = keep.flatten().clone()  # [n * pos]
    flat[flat.nonzero().flatten()[remaining:]] = False
    return flat.view_as(keep)  # [n, pos]


class _Loop:
    """The capture loop over one segment (kept in a class so each step stays short)."""

    def __init__(self, model: Any, plan: _Plan, state: CaptureState, shapes: dict[str, list[int]],
                 n_pos: int, worker: tuple[int, int], bar: Any, acts: Activations):  # fmt: skip
        self.model, self.plan, self.state, self.shapes, self.bar = model, plan, state, shapes, bar
        self.rank, self.world = worker
        self.acts = acts  # filled by the hooks the caller holds for the whole run
        self.ready: dict[str, Tensor] | None = None  # activations of batch 0, computed before the loop
        capacity = state.batches_per_shard * plan.batch_size * n_pos
        self.buffer = ShardBuffer(plan.hooks, shapes, plan.dtype, capacity)
        self.shard: int | None = None

    def owns(self, k: int) -> bool:
        """Whether this process captures shard ``k`` (and it is not already done)."""
        return k % self.world == self.rank and k not in self.state.done

    def flush(self) -> None:
        """Commit the buffered shard if this process captured it."""
        if self.shard is not None and self.owns(self.shard):
            commit_shard(self.state, self.shard, self.buffer, self.shapes)
        self.buffer.reset()

    def run(self, batches: Iterator[CaptureBatch], first: dict[str, Tensor] | None = None) -> int:
        """Process every batch (``first``: batch 0's activations, already computed); return the shard count."""
        self.ready = first
        n_shards = self._loop(batches)
        self.flush()
        return n_shards

    def _loop(self, batches: Iterator[CaptureBatch]) -> int:
        seen, ctx0, n_shards = 0, 0, 0
        budget = self.plan.max_tokens
        for b, batch in enumerate(batches):
            keep = keep_mask(batch, self.plan.positions)
            n_keep = int(keep.sum())
            if budget is not None and seen + n_keep >= budget:
                keep, n_keep = _truncate(keep, budget - seen), budget - seen
            k = b // self.state.batches_per_shard
            if k != self.shard:
                self.flush()
                self.shard = k
            n_shards = k + 1
            ready, self.ready = self.ready, None  # batch 0's activations, or None
            if self.owns(k):
                self.add(batch, keep, b, ctx0, ready)
                self.bar.update(n_keep)
            seen, ctx0 = seen + n_keep, ctx0 + batch.n
            if budget is not None and seen >= budget:
                break
        return n_shards

    def add(self, batch: CaptureBatch, keep: Bool[Tensor, "n pos"], b: int, ctx0: int,
            acts: dict[str, Tensor] | None = None) -> None:  # fmt: skip
        """Run the model on one batch (unless ``acts`` are given) and buffer the kept rows with their metadata."""
        if acts is None:
            acts = _forward(self.model, batch.load(), self.plan, self.acts)
        keep_dev = keep.to(next(iter(acts.values())).device)
        rows = {}
        for h, a in acts.items():
            sel = a[keep_dev]  # [n_keep, *shape]
            rows[h] = sel.to("cpu", self.plan.dtype)
            if self.plan.check_finite:
                _check_finite(rows[h], sel, h, b, ctx0, batch.n, self.plan.dtype)
        n, n_pos = keep.shape
        context = torch.arange(ctx0, ctx0 + n)[:, None].expand(n, n_pos)  # [n, pos]
        meta = {
            "doc": batch.doc[keep], "pos": batch.pos[keep],
            "token": batch.tokens[keep] if batch.tokens is not None else torch.full((int(keep.sum()),), -1),
            "context": context[keep], "ctx_pos": torch.arange(n_pos).expand(n, n_pos)[keep],
        }  # fmt: skip
        used = keep.any(1)  # [n] contexts with at least one stored token
        tokens = batch.tokens[used] if batch.tokens is not None else None
        self.buffer.add(rows, meta, torch.arange(ctx0, ctx0 + n)[used], tokens)


def _progress(total: int | None, initial: int, desc: str, enabled: bool, position: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="tok", unit_scale=True, disable=not enabled,
                dynamic_ncols=True, position=position, smoothing=0.1)  # fmt: skip


def capture_to_store(
    model: Any,
    data: Any,
    hooks: str | Sequence[str],
    out: Path | str,
    *,
    dtype: str | torch.dtype = "float32",
    batch_size: int = 32,
    max_tokens: int | None = None,
    positions: str | Sequence[int] = "content",
    memory_budget: int | str | None = DEFAULT_MEMORY_BUDGET,
    context_size: int | None = None,
    split: str = "train",
    limit: int | None = None,
    mode: str = "resume",
    stop_at_layer: int | None = None,
    worker: tuple[int, int] = (0, 1),
    check_finite: bool = True,
    progress: bool = True,
) -> Store:
    """Run ``model`` over ``data`` and record ``hooks`` into the store at ``out``.

    Rerunning the same call resumes an interrupted capture (or returns the finished
    store at once); the finished store is identical to an uninterrupted run's.

    Args:
        model: a registry model (``interp.load_model``) or any model following the contract.
        data: a dataset name, token ids ``[n, ctx]``, pixels ``[n, 3, H, W]``, an
            ``ImageSet``, a ``TextCorpus``, a list of strings or a batch source
            (see :func:`interp.capture.batches.as_source`).
        hooks: hook names or ``*`` patterns (``"blocks.*.hook_resid_post"``).
        out: the store directory (``runs/<name>/store``).
        dtype: storage dtype: ``float32``, ``float16`` or ``bfloat16``.
        batch_size: contexts (or images) per forward pass.
        max_tokens: token budget: stop after storing this many tokens.
        positions: ``"content"`` (default: drop BOS / CLS, special and padding tokens),
            ``"all"``, or a list of context positions.
        memory_budget: bytes (or ``"512MiB"``) the capture may hold beyond the loaded
            model; a shard's buffer takes at most an eighth of it.
        context_size: tokens per context for text data.
        split: split of a named dataset.
        limit: most images of a named image set.
        mode: ``resume`` (default), ``append`` (add new data as a new segment) or
            ``overwrite`` (replace another store at ``out``).
        stop_at_layer: stop the forward pass here instead of after the last needed block.
        worker: ``(rank, world_size)``: capture only shards ``k % world_size == rank``.
        check_finite: raise on NaN/Inf activations, naming the hook and batch.
        progress: show a progress bar.

    Returns:
        The :class:`~interp.store.Store` (complete when every worker has finished).

    Raises:
        UnknownNameError: an unknown hook (nearest names listed).
        HookNotReachedError: a hook beyond ``stop_at_layer``, or one the model never runs.
        StoreMismatchError: ``out`` holds a store of another model, hook set or data.
        StoreError: the disk is full (no partial shard is left behind).
        InputError: NaN/Inf activations, bad options, or no data.
    """
    names = resolve_hooks(model, hooks)
    if batch_size < 1 or (max_tokens is not None and max_tokens < 1):
        raise InputError(f"batch_size and max_tokens must be positive, got {batch_size} and {max_tokens}.")
    rank, world = worker
    if not 0 <= rank < world:
        raise InputError(f"worker rank {rank} must lie in 0..{world - 1}.")
    plan = _Plan(names, stop_layer(model, names, stop_at_layer), storage_dtype(dtype), parse_positions(positions),
                 int(batch_size), max_tokens, check_finite)  # fmt: skip
    source = as_source(data, model, context_size=context_size, split=split, limit=limit)
    batches = iter(source.batches(plan.batch_size))
    first = next(batches, None)
    if first is None:
        raise InputError(f"the data {source.describe().get('name')!r} yielded no batches. Check the dataset and split.")
    # freed batches leave the resident set while the capture runs, so the budget can hold
    with return_freed_memory(), torch.inference_mode(), capture(model, names, copy=False) as acts:
        ready = _forward(model, first.load(), plan, acts)  # batch 0 also gives the per-token shapes
        shapes = {h: list(a.shape[2:]) for h, a in ready.items()}
        budget = parse_bytes(memory_budget) or DEFAULT_MEMORY_BUDGET
        bps = _batches_per_shard(shapes, first.doc.shape[1], plan, budget)
        header = {"model": model_info(model).to_dict(), "hooks": names, "dtype": str(plan.dtype).removeprefix("torch."),
                  "code_version": interp.__version__}  # fmt: skip
        options = {"batch_size": plan.batch_size, "positions": plan.positions, "max_tokens": max_tokens}
        state = open_for_capture(out, header, source.describe(), options, bps, mode)
        if not state.complete:
            total = max_tokens or getattr(source, "n_tokens_hint", None)
            total = total and total // world  # a worker does about 1/world of the work
            with _progress(total, state.done_tokens // world, f"capture {Path(out).name}", progress, rank) as bar:
                loop = _Loop(model, plan, state, shapes, first.doc.shape[1], worker, bar, acts)
                n_shards = loop.run(itertools.chain([first], batches), ready)
            manifest = finish_segment(state, n_shards)
            if manifest.complete:
                log.info("capture complete: %s tokens in %s", manifest.n_tokens, out)
    return Store(out)
