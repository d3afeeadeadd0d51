"""The data feed: activation batches from an :mod:`interp.store` store, captured on the fly if needed.

One pass over the store yields every requested hook at once (``{hook: [batch,
d_in]}``), so several SAEs train from one capture. ``hook_z`` rows
(``[n_heads, d_head]``) are flattened, heads concatenated. The order is the
store's seeded shuffle; ``start`` skips batches already trained on, which is
how a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from interp.errors import InputError

__all__ = ["open_training_store", "resolve_hooks", "d_in_of", "stream", "sample_rows", "input_stats",
           "geometric_median", "finite_or_skip"]  # fmt: skip

log = logging.getLogger("sae_training")


def open_training_store(data: Any, out: Path, model: Any = None, progress: bool = True) -> Any:
    """The store to train from: ``data.from_store``, or a capture of ``data.model`` into ``out/store``.

    Rerunning resumes an interrupted capture (the capture code is resumable).
    """
    from interp.store import open_store

    if data.from_store:
        if not Path(data.from_store).is_dir():
            raise InputError(f"store {data.from_store} does not exist. Capture one with interp capture, or pass "
                             "--model and --hook to capture while training.")  # fmt: skip
        return open_store(data.from_store)
    from interp.capture import capture_to_store

    model = model if model is not None else load_capture_model(data.model, data.hook)
    return capture_to_store(model, data.dataset, list(data.hook), out / "store", dtype=data.store_dtype,
                            batch_size=data.capture_batch_size, max_tokens=data.tokens,
                            context_size=data.context_size, split="train", progress=progress)  # fmt: skip


def load_capture_model(name: str, hooks: tuple[str, ...]) -> Any:
    """Load ``name`` truncated after the last block the hooks need."""
    import interp
    from interp.models.contract import layer_of_hook

    layers = [layer_of_hook(h) for h in hooks]
    n_layers = None if any(lay is None for lay in layers) else max(layers) + 1  # type: ignore[type-var]
    return interp.load_model(name, n_layers=n_layers)


def resolve_hooks(store: Any, hooks: tuple[str, ...]) -> list[str]:
    """The hooks to train (default: every hook of the store); unknown ones raise with the nearest names."""
    names = list(hooks) or store.hooks
    for h in names:
        store.shape(h)  # raises UnknownNameError naming the store's hooks
    return names


def d_in_of(store: Any, hook: str) -> int:
    """SAE input width of ``hook``: the product of its per-token shape (heads concatenated for hook_z)."""
    return int(math.prod(store.shape(hook)))


def stream(store: Any, hooks: list[str], batch_size: int, seed: int, start: int, total: int,
           rows: slice = slice(None)) -> Iterator[tuple[int, dict[str, Float[Tensor, "batch d_in"]]]]:  # fmt: skip
    """Yield ``(step, {hook: [batch, d_in] float32})`` for steps ``start .. total-1``.

    Batches are the store's seeded shuffle (epoch ``e`` uses ``seed + e``), full
    batches of ``batch_size`` only, as many epochs as ``total`` steps need;
    ``rows`` picks this process's part of each (data-parallel runs).
    """
    per_epoch = store.n_tokens // batch_size
    if per_epoch < 1:
        raise InputError(f"the store {store.path} holds {store.n_tokens} tokens, fewer than one batch of "
                         f"{batch_size}. Lower --batch-size or capture more tokens.")  # fmt: skip
    epochs = math.ceil(total / per_epoch)
    batches = store.batches(list(hooks), batch_size, shuffle=True, seed=seed, epochs=epochs, drop_last=True)
    for step, batch in enumerate(batches):
        if step >= total:
            return
        if step >= start:
            yield step, {h: batch[h][rows].flatten(1).float() for h in hooks}  # [batch, d_in], heads concatenated


def sample_rows(store: Any, hook: str, n: int, seed: int) -> Float[Tensor, "n d_in"]:
    """``n`` rows of ``hook`` at seeded random token indices (for initialisation statistics)."""
    g = torch.Generator().manual_seed(seed)
    n = min(n, store.n_tokens)
    idx = torch.randperm(store.n_tokens, generator=g)[:n].sort().values
    return store.get(idx, hook).reshape(n, -1).float()  # [n, d_in]


def geometric_median(x: Float[Tensor, "n d"], iters: int = 50, eps: float = 1e-6) -> Float[Tensor, " d"]:
    """Weiszfeld's algorithm: the point minimising the summed distance to the rows of ``x``."""
    m = x.mean(0)
    for _ in range(iters):
        w = 1 / (x - m).norm(dim=1).clamp_min(eps)  # [n]
        new = (w[:, None] * x).sum(0) / w.sum()
        if (new - m).norm() < eps * max(float(m.norm()), 1.0):
            return new
        m = new
    return m


def input_stats(x: Float[Tensor, "n d_in"], normalize: str, b_dec_init: str) -> tuple[float, Tensor]:
    """``(scale, b_dec)``: the input scale (mean norm becomes sqrt(d_in)) and the decoder-bias start (scaled units)."""
    scale = math.sqrt(x.shape[1]) / float(x.norm(dim=1).mean().clamp_min(1e-12)) if normalize == "norm" else 1.0
    xs = x * scale
    b_dec = {"median": geometric_median, "mean": lambda t: t.mean(0), "zeros": lambda t: torch.zeros(t.shape[1])}
    return scale, b_dec[b_dec_init](xs)


def finite_or_skip(x: Tensor, hook: str, step: int, on_nonfinite: str) -> bool:
    """Whether to train on ``x``; raise naming the batch and hook when it holds NaN/Inf (unless skipping)."""
    if bool(torch.isfinite(x).all()):
        return True
    bad = int((~torch.isfinite(x)).sum())
    if on_nonfinite == "skip":
        log.warning("skipping batch %d: %s holds %d NaN/Inf values", step, hook, bad)
        return False
    raise InputError(f"activation batch {step} of hook {hook} holds {bad} NaN/Inf values. Recapture the store "
                     "(interp capture checks finiteness), or pass --on-nonfinite skip to skip such batches.")
