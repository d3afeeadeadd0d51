"""Exemplars of every unit of a layer, gathered in one streaming pass.

A *unit* is one column of a layer's activations: an MLP neuron
(``blocks.L.mlp.hook_post``), an attention head (``blocks.L.attn.hook_z``: the
norm of the head's output ``z``), or an SAE latent (``sae.encode`` of the
stored activations). :func:`unit_batches` turns a store into batches of unit
activations ``[batch, n_units]``; :func:`collect` reads them once and keeps, per unit:

* the top ``top_rows`` rows (values and global row indices), from which the
  top-k exemplar contexts and their masks are cut (:meth:`Exemplars.contexts`);
* a shared uniform reservoir of rows with every unit's activation, from which
  the streaming quantiles (the 0.99 quantile is the *active* threshold),
  histograms, samples from lower quantiles and non-activating samples come;
* the exact fraction of rows with a positive activation, max and mean;
* the activations of (up to ``max_heldout``) held-out rows, for scoring.

Memory is ``O(n_units · (top_rows + reservoir))`` whatever the store size.
A row is *active* when its activation is at least the unit's threshold and
above zero (so a unit that fires on fewer than 1% of tokens is active wherever
it fires). The mask of an exemplar context is its active rows among the kept
top rows; rows below the last kept value are not seen, which only matters
when a unit fires on more than ``top_rows`` rows of its top-k contexts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from interp.errors import InputError
from interp.labeling.probe import ProbeSet

__all__ = ["Exemplars", "ExemplarContext", "collect", "unit_batches", "array_batches"]


@dataclass
class ExemplarContext:
    """One exemplar: a context, its active rows (the mask) and its peak.

    Attributes:
        context: context index.
        peak_row: row of the highest activation.
        peak: that activation.
        active_rows: rows of the context at or above the unit's threshold.
    """

    context: int
    peak_row: int
    peak: float
    active_rows: list[int]


@dataclass
class Exemplars:
    """What :func:`collect` keeps for every unit (see the module docstring).

    Attributes:
        top_values: highest activations per unit, descending ``[u, m]``.
        top_rows: their global rows ``[u, m]``.
        threshold: active threshold per unit (streaming ``quantile`` estimate) ``[u]``.
        quantile: the quantile level of ``threshold`` (0.99).
        reservoir_rows: uniformly sampled grounding rows ``[r]``.
        reservoir: every unit's activation at them ``[r, u]``.
        frac_positive: exact fraction of grounding rows with activation > 0 ``[u]``.
        max: exact maximum ``[u]``; ``mean``: exact mean ``[u]``.
        heldout_rows: held-out rows kept for scoring ``[h]``; ``heldout``: activations there ``[h, u]``.
        n_rows: grounding rows read.
    """

    top_values: Float[Tensor, "u m"]
    top_rows: Int[Tensor, "u m"]
    threshold: Float[Tensor, " u"]
    quantile: float
    reservoir_rows: Int[Tensor, " r"]
    reservoir: Float[Tensor, "r u"]
    frac_positive: Float[Tensor, " u"]
    max: Float[Tensor, " u"]
    mean: Float[Tensor, " u"]
    heldout_rows: Int[Tensor, " h"]
    heldout: Float[Tensor, "h u"]
    n_rows: int

    @property
    def n_units(self) -> int:
        """Units collected."""
        return self.top_values.shape[0]

    def contexts(self, unit: int, probe: ProbeSet, k: int = 15) -> list[ExemplarContext]:
        """The top-``k`` contexts of ``unit`` (by peak activation), each with its mask."""
        vals, rows = self.top_values[unit], self.top_rows[unit]
        thr = float(self.threshold[unit])
        keep = (rows >= 0) & torch.isfinite(vals)
        vals, rows = vals[keep], rows[keep]
        out: dict[int, ExemplarContext] = {}
        for v, r in zip(vals.tolist(), rows.tolist(), strict=True):
            c = int(probe.context[r])
            if c not in out:
                if len(out) == k:
                    continue
                out[c] = ExemplarContext(c, r, v, [])
            if v >= thr and v > 0:
                out[c].active_rows.append(r)
        return [e for e in out.values() if e.active_rows]

    def exemplar_rows(self, unit: int, probe: ProbeSet, k: int = 15, top: int = 0) -> Int[Tensor, " m"]:
        """The set ``E`` that candidates are grounded in.

        The active rows (the masks) of the top-``k`` contexts, plus the active rows
        among the unit's ``top`` highest rows when ``top > 0``.
        """
        rows = {r for e in self.contexts(unit, probe, k) for r in e.active_rows}
        if top > 0:
            vals, cand = self.top_values[unit, :top], self.top_rows[unit, :top]
            hit = (vals >= self.threshold[unit]) & (vals > 0) & (cand >= 0)
            rows |= set(cand[hit].tolist())
        return torch.tensor(sorted(rows), dtype=torch.long)

    def lower_samples(self, unit: int, n: int = 10, seed: int = 0) -> Int[Tensor, " s"]:
        """Rows sampled evenly across the positive activations below the threshold (reservoir rows)."""
        a = self.reservoir[:, unit]
        below = ((a > 0) & (a < self.threshold[unit])).nonzero().flatten()
        order = below[a[below].argsort()]
        pick = torch.linspace(0, len(order) - 1, min(n, len(order))).round().long() if len(order) else order
        return self.reservoir_rows[order[pick]]

    def inactive_samples(self, unit: int, n: int = 10, seed: int = 0) -> Int[Tensor, " s"]:
        """Random reservoir rows where the unit does not fire (activation ≤ 0)."""
        idle = (self.reservoir[:, unit] <= 0).nonzero().flatten()
        g = torch.Generator().manual_seed(seed + unit)
        return self.reservoir_rows[idle[torch.randperm(len(idle), generator=g)[:n]]]

    def histogram(self, unit: int, bins: int = 30) -> tuple[list[int], list[float]]:
        """Counts and bin edges of the unit's activations over the reservoir."""
        a = self.reservoir[:, unit].double()
        lo, hi = float(a.min()), float(a.max())
        hi = hi if hi > lo else lo + 1.0
        counts = torch.histc(a, bins=bins, min=lo, max=hi)
        edges = torch.linspace(lo, hi, bins + 1)
        return [int(c) for c in counts], [float(e) for e in edges]


class _Reservoir:
    """Uniform sample of ``size`` rows: each row gets a seeded random key, the smallest keys stay."""

    def __init__(self, size: int, n_units: int, seed: int):
        self.size, self.gen = size, torch.Generator().manual_seed(seed)
        self.keys = torch.empty(0)
        self.rows = torch.empty(0, dtype=torch.long)
        self.acts = torch.empty(0, n_units)

    def add(self, rows: Int[Tensor, " b"], acts: Float[Tensor, "b u"]) -> None:
        keys = torch.cat([self.keys, torch.rand(len(rows), generator=self.gen)])
        self.rows, self.acts = torch.cat([self.rows, rows]), torch.cat([self.acts, acts])
        if len(keys) > self.size:
            keep = keys.topk(self.size, largest=False).indices.sort().values
            keys, self.rows, self.acts = keys[keep], self.rows[keep], self.acts[keep]
        self.keys = keys


def _threshold(reservoir: Float[Tensor, "r u"], q: float) -> Float[Tensor, " u"]:
    """Per-unit ``q`` quantile of the reservoir (sort-based: no size limit)."""
    s = reservoir.sort(dim=0).values  # [r, u]
    idx = min(len(s) - 1, int(round(q * (len(s) - 1))))
    return s[idx]


def collect(batches: Iterable[Float[Tensor, "b u"]], heldout: Bool[Tensor, " n"] | None = None, *,
            top_rows: int = 200, reservoir: int = 4096, quantile: float = 0.99, max_heldout: int = 50_000,
            seed: int = 0) -> Exemplars:
    """Read unit activations once, in row order, and keep what labeling needs.

    Args:
        batches: consecutive batches of unit activations ``[b, u]`` covering rows ``0..n-1`` in order.
        heldout: held-out rows ``[n]``: excluded from exemplars and quantiles, kept (up to
            ``max_heldout``) for scoring. Default: none.
        top_rows: rows kept per unit for the top-k contexts.
        reservoir: size of the uniform row sample for quantiles, histograms and lower samples.
        quantile: level of the active threshold (MILAN: 0.99).
        max_heldout: most held-out rows whose activations are kept.
        seed: seeds the reservoir.
    """
    if not 0 < quantile < 1 or top_rows < 1 or reservoir < 2:
        raise InputError(f"need 0 < quantile < 1, top_rows ≥ 1, reservoir ≥ 2; "
                         f"got {quantile}, {top_rows}, {reservoir}.")
    state: dict[str, Any] = {}
    offset = 0
    for acts in batches:
        acts = acts.float()
        b = acts.shape[0]
        rows = torch.arange(offset, offset + b)  # [b] global rows
        is_held = heldout[offset:offset + b] if heldout is not None else torch.zeros(b, dtype=torch.bool)
        if not state:
            state = _start(acts.shape[1], top_rows, reservoir, seed)
        _update(state, acts[~is_held], rows[~is_held], top_rows)
        if is_held.any() and state["n_held"] < max_heldout:
            take = is_held.nonzero().flatten()[: max_heldout - state["n_held"]]
            state["held_rows"].append(rows[take])
            state["held"].append(acts[take])
            state["n_held"] += len(take)
        offset += b
    if not state or state["n"] == 0:
        raise InputError("no grounding rows: the store is empty or every row is held out.")
    return _finish(state, quantile)


def _start(u: int, m: int, r: int, seed: int) -> dict[str, Any]:
    """Empty running state for ``u`` units."""
    return {"vals": torch.full((u, m), -torch.inf), "rows": torch.full((u, m), -1, dtype=torch.long),
            "res": _Reservoir(r, u, seed), "pos": torch.zeros(u), "sum": torch.zeros(u, dtype=torch.float64),
            "max": torch.full((u,), -torch.inf), "n": 0, "held_rows": [], "held": [], "n_held": 0}  # fmt: skip


def _update(state: dict[str, Any], acts: Float[Tensor, "b u"], rows: Int[Tensor, " b"], m: int) -> None:
    """Fold one batch of grounding rows into the running state."""
    if len(rows) == 0:
        return
    vals = torch.cat([state["vals"], acts.T], dim=1)  # [u, m + b]
    cand = torch.cat([state["rows"], rows.expand(acts.shape[1], -1)], dim=1)  # [u, m + b]
    top = vals.topk(min(m, vals.shape[1]), dim=1)
    state["vals"], state["rows"] = top.values, cand.gather(1, top.indices)
    state["res"].add(rows, acts)
    state["pos"] += (acts > 0).sum(0)
    state["sum"] += acts.sum(0).double()
    state["max"] = torch.maximum(state["max"], acts.max(0).values)
    state["n"] += len(rows)


def _finish(state: dict[str, Any], q: float) -> Exemplars:
    """Thresholds from the reservoir, exact statistics, held-out activations."""
    res = state["res"]
    u = state["vals"].shape[0]
    return Exemplars(
        top_values=state["vals"], top_rows=state["rows"], threshold=_threshold(res.acts, q), quantile=q,
        reservoir_rows=res.rows, reservoir=res.acts, frac_positive=state["pos"] / state["n"], max=state["max"],
        mean=(state["sum"] / state["n"]).float(),
        heldout_rows=torch.cat(state["held_rows"]) if state["held_rows"] else torch.empty(0, dtype=torch.long),
        heldout=torch.cat(state["held"]) if state["held"] else torch.empty(0, u), n_rows=state["n"])


def array_batches(acts: Float[Tensor, "n u"], batch_size: int = 8192) -> Iterator[Float[Tensor, "b u"]]:
    """In-memory activations ``[n, u]`` as consecutive batches."""
    for i in range(0, acts.shape[0], batch_size):
        yield acts[i:i + batch_size]


def unit_batches(store: Any, hook: str, *, sae: Any = None, units: list[int] | None = None,
                 batch_size: int | None = None) -> Iterator[Float[Tensor, "b u"]]:
    """Unit activations of a store hook, in row order.

    Args:
        store: an :class:`interp.store.Store`.
        hook: the hook: MLP neurons (``blocks.L.mlp.hook_post``), heads (``blocks.L.attn.hook_z``:
            one unit per head, the norm of its ``z``), or the input of ``sae``.
        sae: a SAELens SAE whose latents are the units (``sae.encode`` of each batch).
        units: the unit indices to keep (default all).
        batch_size: rows per batch (default: about 4M activations per batch).
    """
    shape = store.shape(hook)
    if sae is not None and shape[-1] != sae.cfg.d_in:
        raise InputError(f"the SAE reads d_in={sae.cfg.d_in} but {hook} stores {list(shape)}. "
                         f"Pass the store hook the SAE was trained on ({getattr(sae.cfg, 'metadata', None)}).")
    width = sae.cfg.d_sae if sae is not None else (shape[0] if shape else 1)
    bs = batch_size or max(256, (1 << 22) // max(1, width))
    for x in store.batches(hook, bs, shuffle=False):
        with torch.no_grad():
            if sae is not None:
                param = next(sae.parameters())
                a = sae.encode(x.to(param.dtype).to(param.device)).float().cpu()  # [b, d_sae]
            elif len(shape) == 2:
                a = x.float().norm(dim=-1)  # [b, n_heads]: one unit per head
            else:
                a = x.float().reshape(x.shape[0], -1)  # [b, d]
        yield a if units is None else a[:, units]
