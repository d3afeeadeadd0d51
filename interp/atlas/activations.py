"""Activation-based scores: per-neuron statistics and cross-model correlations, in one streaming pass.

:class:`ActivationStats` keeps running sums (count, Σa, Σa², Σ|a|, count of
a > 0, max) per neuron; :func:`store_activation_stats` feeds it from an
activation store, so statistics of a store larger than memory cost one read.

:class:`RunningCorrelation` keeps Σx, Σy, Σx², Σy² and Σxᵀy (one GEMM per
batch) between every neuron of model A and every neuron of model B. Its
baseline is the correlation of A's neurons with *random directions* in B's
activation space (independent Gaussian unit vectors, as many as B has
neurons: a random rotation of B's basis up to the near-orthogonality of
high-dimensional Gaussians, without a QR): the cross terms come after the
pass as (Σxᵀy)R, the directions' spreads from Σ(yR) and Σ(yR)² accumulated on
every few batches, so it needs no second read of the data and no d×d
matrix. The same holds with the sides swapped. A neuron is
*universal* ("Universal Neurons in GPT-2", Gurnee et al. 2024; "Rosetta
neurons", Dravid et al. 2023) when its maximum correlation with any neuron of
the other model exceeds a threshold (0.5); the random directions say how often
that happens when the other model's neurons are not privileged directions.
:func:`~interp.atlas.universal.model_correlation` runs both models on the same tokens (BOS dropped)
and never holds more than one batch of activations
(:mod:`interp.atlas.universal`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from interp.errors import InputError

__all__ = ["ActivationStats", "RunningCorrelation", "store_activation_stats", "mlp_hooks"]


class ActivationStats:
    """Running per-neuron activation statistics (float64 sums; one :meth:`update` per batch)."""

    def __init__(self, d: int):
        self.n = 0
        self.s1, self.s2, self.abs1 = (torch.zeros(d, dtype=torch.float64) for _ in range(3))
        self.pos = torch.zeros(d, dtype=torch.int64)
        self.max = torch.full((d,), -torch.inf, dtype=torch.float64)

    def update(self, x: Float[Tensor, "n d"]) -> None:
        """Add a batch of rows."""
        x = x.detach().float()
        self.n += x.shape[0]
        self.s1 += x.sum(0).double()
        self.s2 += (x * x).sum(0).double()
        self.abs1 += x.abs().sum(0).double()
        self.pos += (x > 0).sum(0)
        self.max = torch.maximum(self.max, x.max(0).values.double())

    def columns(self) -> dict[str, Tensor]:
        """``act_mean``, ``act_var``, ``act_max``, ``act_frequency`` (P(a > 0)) and ``act_sparsity``.

        ``act_sparsity`` is ``1 - E|a|² / E[a²]``: 0 when every token gives the same
        magnitude, near 1 when a few tokens carry all the activation.
        """
        if self.n == 0:
            raise InputError("no activations were seen: the store or data stream is empty.")
        mean, m2 = self.s1 / self.n, self.s2 / self.n
        return {"act_mean": mean, "act_var": (m2 - mean**2).clamp_min(0), "act_max": self.max,
                "act_frequency": self.pos.double() / self.n,
                "act_sparsity": 1 - (self.abs1 / self.n) ** 2 / m2.clamp_min(1e-30)}  # fmt: skip


def mlp_hooks(n_layers: int, layers: Sequence[int] | None) -> list[str]:
    """``blocks.L.mlp.hook_post`` for ``layers`` (default all)."""
    ids = list(range(n_layers)) if layers is None else list(layers)
    bad = [x for x in ids if not 0 <= x < n_layers]
    if bad:
        raise InputError(f"layers {bad} are out of range: the model has {n_layers} layers (0..{n_layers - 1}).")
    return [f"blocks.{x}.mlp.hook_post" for x in ids]


def store_activation_stats(store: Any, layers: Sequence[int] | None = None, *, batch_size: int = 8192,
                           progress: bool = False) -> Any:  # fmt: skip
    """Activation statistics of every neuron of the store's ``blocks.L.mlp.hook_post`` hooks, in one read.

    Args:
        store: a store path or an open :class:`~interp.store.Store`.
        layers: layers to include (default every MLP hook in the store).
        batch_size: rows per read.
        progress: show a progress bar.

    Returns:
        A DataFrame: ``layer``, ``neuron`` and the :meth:`ActivationStats.columns`.

    Raises:
        InputError: the store holds none of the requested MLP hooks.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from interp.models.contract import layer_of_hook
    from interp.store import Store, open_store

    st = store if isinstance(store, Store) else open_store(store)
    hooks = [h for h in st.hooks if h.endswith("mlp.hook_post") and (layers is None or layer_of_hook(h) in layers)]
    if not hooks:
        raise InputError(
            f"store {st.path} holds no blocks.L.mlp.hook_post hooks for layers {layers} (it holds "
            f"{st.hooks}). Capture them with `interp capture --hooks 'blocks.*.mlp.hook_post'`."
        )
    stats = {h: ActivationStats(st.shape(h)[-1]) for h in hooks}
    bar = tqdm(total=st.n_tokens, desc="atlas: activation stats", unit="tok", disable=not progress)
    for batch in st.batches(hooks, batch_size, shuffle=False):
        for h in hooks:
            stats[h].update(batch[h].reshape(-1, stats[h].s1.shape[0]))  # [rows, d_mlp]
        bar.update(len(batch[hooks[0]]))
    bar.close()
    frames = []
    for h, s in stats.items():
        cols = {k: v.numpy() for k, v in s.columns().items()}
        frames.append(pd.DataFrame({"layer": layer_of_hook(h), "neuron": range(len(cols["act_mean"])), **cols}))
    return pd.concat(frames, ignore_index=True)


class RunningCorrelation:
    """Pearson correlations between all columns of ``x`` (model A) and ``y`` (model B), streamed.

    Sums are float64; each batch is shifted by the first batch's means before its
    GEMMs, which keeps the one-pass formula free of cancellation when a neuron's
    mean is large against its spread.

    Args:
        d_a / d_b: neurons of each side.
        baseline: also track random directions on both sides (see the module docstring).
        baseline_every: track them on every ``baseline_every``-th batch only: a
            direction's spread needs far fewer tokens than the correlations, and the
            two extra GEMMs would otherwise cost twice the main one.
        matmul_dtype: dtype of the per-batch GEMMs (``float32`` or ``bfloat16``: about
            4x faster on CPUs with bf16 units; correlations move by up to ~3e-3); sums stay float64.
        seed: seed of the random directions.
        max_random: most random directions per side (``min(d, max_random)``): a ``[d, k]``
            float32 matrix is kept per side, so wide models (all layers of a large model)
            get a capped baseline, recorded in :attr:`n_random`.
    """

    def __init__(self, d_a: int, d_b: int, baseline: bool = True, baseline_every: int = 1,
                 matmul_dtype: str = "float32", seed: int = 0, max_random: int = 4096):  # fmt: skip
        if matmul_dtype not in ("float32", "bfloat16"):
            raise InputError(f"matmul_dtype must be 'float32' or 'bfloat16', got {matmul_dtype!r}.")
        if baseline_every < 1:
            raise InputError(f"baseline_every must be a positive number of batches, got {baseline_every}.")
        self.dtype, self.every, self.batches, self.n = getattr(torch, matmul_dtype), baseline_every, 0, 0
        z = lambda d: torch.zeros(d, dtype=torch.float64)  # noqa: E731
        self.sx, self.sxx, self.sy, self.syy = z(d_a), z(d_a), z(d_b), z(d_b)
        self.sxy = torch.zeros(d_a, d_b, dtype=torch.float64)
        self._buffers: dict[str, tuple[Tensor, ...]] = {}  # per side: shifted rows, their squares, GEMM-dtype rows
        self.shift_x: Tensor | None = None
        self.shift_y: Tensor | None = None
        self.r: dict[str, Tensor] = {}
        if baseline:
            g = torch.Generator().manual_seed(seed)
            for side, d in (("a", d_a), ("b", d_b)):
                r = torch.randn(d, min(d, max_random), generator=g)
                self.r[side] = r / r.norm(dim=0, keepdim=True)  # [d, k]: unit random directions as columns
        self._r_low = {k: v.to(self.dtype) for k, v in self.r.items()}  # random directions in the GEMM dtype
        self.n_base = 0
        self.rsum = {k: z(v.shape[1]) for k, v in self.r.items()}  # Σ(xR), Σ(yR) on baseline batches
        self.rsq = {k: z(v.shape[1]) for k, v in self.r.items()}
        self.n_random = {k: v.shape[1] for k, v in self.r.items()}

    def update(self, x: Float[Tensor, "*rows d_a"], y: Float[Tensor, "*rows d_b"]) -> None:
        """Add a batch of paired rows (the same tokens through both models).

        ``x`` and ``y`` may keep leading batch dimensions (``[batch, pos, d]``, even a
        strided view such as ``acts[:, 1:]``): they are read once, into buffers kept
        across batches, so no per-batch copy of the rows is made.
        """
        if x.shape[:-1] != y.shape[:-1]:
            raise InputError(f"paired batches need the same rows: got {list(x.shape[:-1])} and {list(y.shape[:-1])}.")
        if self.shift_x is None:
            self.shift_x = x.reshape(-1, x.shape[-1]).float().mean(0)
            self.shift_y = y.reshape(-1, y.shape[-1]).float().mean(0)
        n = x[..., 0].numel()
        self.n += n
        xl = self._shifted("a", x, self.shift_x, self.sx, self.sxx)
        yl = self._shifted("b", y, self.shift_y, self.sy, self.syy)
        self.sxy.add_(xl.T @ yl)  # [d_a, d_b]: the one GEMM the correlations need, summed in float64
        if self.r and self.batches % self.every == 0:
            self.n_base += n
            for side, v in (("a", xl), ("b", yl)):
                p = (v @ self._r_low[side]).float()  # [n, k]: activations along random directions
                self.rsum[side] += p.sum(0).double()
                self.rsq[side] += (p * p).sum(0).double()
        self.batches += 1

    def _shifted(self, side: str, v: Tensor, shift: Tensor, s1: Tensor, s2: Tensor) -> Tensor:
        """Add a batch's shifted column sums to ``s1``/``s2``; return the shifted rows in the GEMM dtype.

        The rows live in buffers kept across batches: allocating two fresh ``[n, d]``
        tensors per batch cost ~4x the arithmetic (page faults on every new block).
        """
        shape = (v[..., 0].numel(), v.shape[-1])  # [n, d]
        buf = self._buffers.get(side)
        if buf is None or buf[0].shape != shape:
            f, sq = torch.empty(shape, dtype=torch.float32), torch.empty(shape, dtype=torch.float32)
            low = f if self.dtype == torch.float32 else torch.empty(shape, dtype=self.dtype)
            buf = self._buffers[side] = (f, sq, low)
        f, sq, low = buf
        torch.sub(v, shift, out=f.view(v.shape))  # [n, d] shifted rows, float32 (reads a strided view once)
        s1 += f.sum(0).double()
        s2 += torch.mul(f, f, out=sq).sum(0).double()  # a column sum is ~30x faster than torch.var_mean here
        if low is not f:
            low.copy_(f)
        return low

    def _moments(self) -> tuple[Tensor, Tensor, Tensor]:
        n = self.n
        if n < 2:
            raise InputError(f"a correlation needs at least 2 rows; {n} were seen.")
        mx, my = self.sx / n, self.sy / n
        return mx, my, self.sxy / n - mx[:, None] * my[None, :]  # means, covariance [d_a, d_b]

    def correlation(self) -> Float[Tensor, "d_a d_b"]:
        """The correlation matrix (0 where a neuron never varied)."""
        mx, my, cov = self._moments()
        sdx = (self.sxx / self.n - mx**2).clamp_min(0).sqrt()
        sdy = (self.syy / self.n - my**2).clamp_min(0).sqrt()
        return (cov / (sdx[:, None] * sdy[None, :]).clamp_min(1e-12)).float()

    def random_correlation(self, side: str = "b") -> Tensor:
        """Correlations with random directions on one side instead of its neurons.

        Args:
            side: ``"b"``: A's neurons against random directions of B (``[d_a, k_b]``);
                ``"a"``: random directions of A against B's neurons (``[k_a, d_b]``).
        """
        if not self.r:
            raise InputError("this RunningCorrelation was built with baseline=False; rebuild with baseline=True.")
        if side not in ("a", "b"):
            raise InputError(f"side must be 'a' or 'b', got {side!r}.")
        mx, my, cov = self._moments()
        r, nb, cov = self.r[side], self.n_base, cov.float()  # float32 products: a baseline needs no more
        sd_r = (self.rsq[side] / nb - (self.rsum[side] / nb) ** 2).clamp_min(0).sqrt().float()  # [k]
        if side == "b":
            sdx = (self.sxx / self.n - mx**2).clamp_min(0).sqrt().float()
            return (cov @ r) / (sdx[:, None] * sd_r[None, :]).clamp_min(1e-12)
        sdy = (self.syy / self.n - my**2).clamp_min(0).sqrt().float()
        return (r.T @ cov) / (sd_r[:, None] * sdy[None, :]).clamp_min(1e-12)
