"""ACDC-style circuit discovery: prune edges one at a time while the output barely changes.

Our own implementation of Conmy et al. (2023), on the edge graph of
:mod:`circuits.graph` and the patching engine of :mod:`circuits.patching`.
Receivers are visited in reverse topological order (``logits`` first); for
each of a receiver's incoming edges, from the latest upstream node back to
``input``, the edge is tentatively patched (it carries its corrupt or ablated
source) on top of everything removed so far. If the objective moves by less
than ``tau`` the edge stays removed, else it is restored. Objectives: ``kl``,
the KL divergence of the patched output from the full model's at the positions
the task's metric reads (removal is kept when KL rises by less than ``tau``),
or ``metric``, the task metric (kept when it moves by less than ``tau`` either
way). One forward per edge: fine for small models and graphs; use EAP to
pre-select on large ones (``edges=``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor
from tqdm.auto import tqdm

from circuits.graph import Graph
from circuits.patching import Ablation, batched_sources, run_with_edges
from circuits.result import Circuit
from circuits.tasks import Task
from interp.errors import InputError

__all__ = ["acdc"]


class _Objective:
    """The pruning objective over all batches of a task (sources computed once)."""

    def __init__(self, model: Any, graph: Graph, task: Task, kind: str, ablation: Ablation, batch_size: int | None):
        self.model, self.graph, self.kind = model, graph, kind
        self.parts = []
        for sub, src in batched_sources(model, graph, task, ablation, batch_size):
            with torch.no_grad():
                ref = model(sub.clean).log_softmax(-1)
            self.parts.append((sub, src, ref))

    def __call__(self, patched: Bool[Tensor, "up recv"]) -> float:
        total, n = 0.0, 0
        for sub, src, ref in self.parts:
            with torch.no_grad():
                logits = run_with_edges(self.model, self.graph, sub.clean, src, patched)
            total += float(self._value(sub, logits, ref).sum())
            n += len(sub)
        return total / n

    def _value(self, sub: Task, logits: Tensor, ref: Tensor) -> Float[Tensor, " batch"]:
        if self.kind == "metric":
            return sub.metric(logits)
        mask = sub.metric.positions_mask(*logits.shape[:2]).to(logits.device)
        logq = logits.log_softmax(-1)
        kl = (ref.exp() * (ref - logq)).sum(-1).clamp(min=0)  # [batch, pos]; KL >= 0 up to rounding
        return (kl * mask).sum(1) / mask.sum(1)


def acdc(
    model: Any,
    task: Task,
    graph: Graph | None = None,
    *,
    tau: float = 0.01,
    objective: Literal["kl", "metric"] = "kl",
    ablation: Ablation = "corrupt",
    edges: Bool[Tensor, "up recv"] | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> Circuit:
    """Prune the graph to a circuit by threshold (ACDC).

    Args:
        model: a ``HookedTransformer``.
        task: the task.
        graph: its graph (default ``Graph.from_model(model)``).
        tau: removal threshold on the objective's change.
        objective: ``kl`` (divergence from the full model at the metric's positions) or ``metric``.
        ablation: what a removed edge carries (:func:`circuits.patching.source_outputs`).
        edges: candidate edges (``[up, recv]`` mask); edges outside it are removed from the start.
        batch_size: examples per forward.
        progress: show a progress bar over edges.

    Returns:
        A :class:`~circuits.result.Circuit` whose mask is the kept edges and whose scores are each edge's
        objective change when it was tested (0 for edges never tested); ``meta`` has the final objective.
    """
    if objective not in ("kl", "metric"):
        raise InputError(f"acdc objective must be 'kl' or 'metric', got {objective!r}.")
    if tau < 0:
        raise InputError(f"acdc tau must be >= 0, got {tau}.")
    graph = graph if graph is not None else Graph.from_model(model)
    candidates = graph.valid.clone() if edges is None else (edges & graph.valid)
    patched = graph.valid & ~candidates
    scores = torch.zeros(graph.valid.shape)
    f = _Objective(model, graph, task, objective, ablation, batch_size)
    current = f(patched)
    start = current
    bar = tqdm(total=int(candidates.sum()), disable=not progress, desc=f"acdc tau={tau}")
    for r in reversed(range(len(graph.receivers))):
        for u in reversed(candidates[:, r].nonzero()[:, 0].tolist()):
            trial = patched.clone()
            trial[u, r] = True
            new = f(trial)
            change = new - current
            scores[u, r] = change
            if (change if objective == "kl" else abs(change)) < tau:
                patched, current = trial, new
            bar.update(1)
    bar.close()
    meta = {"task": task.name, "tau": tau, "objective": objective, "ablation": ablation,
            "objective_start": start, "objective_end": current}  # fmt: skip
    return Circuit(graph, scores, graph.valid & ~patched, "acdc", meta)
