"""Circuit results: scored edges, selection, JSON, faithfulness and agreement with a known circuit.

A :class:`Circuit` is a :class:`~circuits.graph.Graph`, a score per edge
(``[up, recv]``; what the method estimates: the metric change from patching
the edge) and the set of edges in the circuit. Every method returns one with
all edges in; :meth:`Circuit.top_k` and :meth:`Circuit.threshold` select.
:func:`faithfulness` runs the circuit alone (every edge outside it patched with
a corrupt, mean, zero or resampled source); :func:`compare_to_truth` measures
ROC-AUC, precision and recall against a true edge set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from circuits.graph import Graph, edge_name, parse_edge
from interp.cache import atomic_write_text
from interp.errors import InputError

__all__ = ["Circuit", "Faithfulness", "faithfulness", "compare_to_truth", "node_order"]


def node_order(node: str) -> tuple[int, int, int]:
    """Sort key putting nodes in topological order: input, layer by layer (heads, KV groups, MLP), logits."""
    if node in ("input", "logits"):
        return (-1 if node == "input" else 1 << 30, 0, 0)
    layer, _, rest = node[1:].partition(".")
    if node.startswith("m"):
        return (int(layer), 2, 0)
    return (int(layer), 0 if rest.startswith("h") else 1, int(rest.lstrip("hkv")))


@dataclass(frozen=True, eq=False)
class Circuit:
    """Scored edges of a graph and the subset that forms the circuit.

    Attributes:
        graph: the model's edge graph.
        scores: ``scores[u, r]`` for edge ``upstream[u] -> receivers[r]`` (0 for non-edges).
        mask: edges in the circuit (a subset of ``graph.valid``).
        method: what produced the scores (``exact``, ``eap``, ``eap-ig``, ``acdc``, …).
        meta: task, settings and measurements, JSON-able.
    """

    graph: Graph
    scores: Float[Tensor, "up recv"]
    mask: Bool[Tensor, "up recv"]
    method: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scores.shape != self.graph.valid.shape or self.mask.shape != self.graph.valid.shape:
            raise InputError(f"Circuit scores {tuple(self.scores.shape)} and mask {tuple(self.mask.shape)} must have "
                             f"the graph's shape [up, recv] = {tuple(self.graph.valid.shape)}.")  # fmt: skip
        valid = self.graph.valid
        object.__setattr__(self, "scores", torch.where(valid, self.scores, torch.zeros((), dtype=self.scores.dtype)))
        object.__setattr__(self, "mask", self.mask & valid)  # non-edges score 0 and are never selected

    @property
    def n_edges(self) -> int:
        """Edges in the circuit."""
        return int((self.mask & self.graph.valid).sum())

    def edges(self) -> dict[str, float]:
        """``{"u->r": score}`` for the circuit's edges, in graph order."""
        return self._edge_list(self.mask & self.graph.valid)

    def _edge_list(self, keep: Tensor) -> dict[str, float]:
        cols, rows = keep.T.nonzero().T.tolist()  # receiver-major order
        vals = self.scores[rows, cols].tolist()
        up, rc = self.graph.upstream, self.graph.receivers
        return {edge_name(up[i], rc[j]): v for i, j, v in zip(rows, cols, vals, strict=True)}

    def nodes(self) -> list[str]:
        """Nodes touched by the circuit's edges (upstream nodes and receiving nodes), graph order."""
        seen: dict[str, None] = {}
        for e in self.edges():
            u, r = parse_edge(e)
            seen[u] = seen[self.graph.receiver_node(r)] = None
        return sorted(seen, key=node_order)

    def top_k(self, k: int, *, absolute: bool = True) -> Circuit:
        """The ``k`` edges with the largest (absolute) scores among the current ones."""
        vals = self.scores.abs() if absolute else self.scores
        vals = vals.masked_fill(~(self.mask & self.graph.valid), float("-inf")).flatten()
        keep = torch.zeros_like(vals, dtype=torch.bool)
        keep[vals.topk(min(k, self.n_edges)).indices] = True
        return replace(self, mask=keep.reshape(self.mask.shape))

    def threshold(self, tau: float, *, absolute: bool = True) -> Circuit:
        """The current edges whose (absolute) score is at least ``tau``."""
        vals = self.scores.abs() if absolute else self.scores
        return replace(self, mask=self.mask & self.graph.valid & (vals >= tau))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: graph, method, meta and every valid edge with its score and membership."""
        scored = self._edge_list(self.graph.valid)
        inside = set(self.edges())
        edges = [{"edge": e, "score": v, "in_circuit": e in inside} for e, v in scored.items()]
        return {"graph": self.graph.to_dict(), "method": self.method, "meta": self.meta, "edges": edges}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Circuit:
        """Inverse of :meth:`to_dict`."""
        graph = Graph(**d["graph"])
        scores, mask = torch.zeros(graph.valid.shape), torch.zeros(graph.valid.shape, dtype=torch.bool)
        pairs = [parse_edge(e["edge"]) for e in d["edges"]]
        rows = [graph.upstream_index(u) for u, _ in pairs]
        cols = [graph.receiver_index(r) for _, r in pairs]
        scores[rows, cols] = torch.tensor([float(e["score"]) for e in d["edges"]])
        mask[rows, cols] = torch.tensor([bool(e["in_circuit"]) for e in d["edges"]], dtype=torch.bool)
        return cls(graph, scores, mask, d.get("method", ""), d.get("meta", {}))

    def to_json(self, path: str | Path | None = None) -> str:
        """The JSON text; also written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict())
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> Circuit:
        """Read a circuit from JSON text or a file."""
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text).read_text()
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class Faithfulness:
    """Metric of the circuit alone, normalised between the empty and the full circuit.

    Attributes:
        full: metric of the full model (clean run).
        circuit: metric with every edge outside the circuit ablated.
        empty: metric with every edge ablated (for ``corrupt`` ablation: the corrupt run).
        corrupt: metric of the corrupt run.
        score: ``(circuit - empty) / (full - empty)``: 1 recovers the full model, 0 the empty one.
    """

    full: float
    circuit: float
    empty: float
    corrupt: float
    score: float


def faithfulness(model: Any, task: Any, circuit: Circuit, ablation: str = "corrupt", *, seed: int = 0) -> Faithfulness:
    """Faithfulness of ``circuit`` on ``task``: run it with everything outside it ablated.

    Args:
        model: a ``HookedTransformer``.
        task: the task.
        circuit: the circuit (its ``mask``).
        ablation: what edges outside the circuit carry: ``corrupt`` outputs, the ``mean`` of the clean
            outputs over the task, ``zero`` or ``resample`` (another example's clean outputs).
        seed: seeds resampling.

    Returns:
        A :class:`Faithfulness`.
    """
    from circuits.patching import edge_metric, source_outputs

    g = circuit.graph
    source = source_outputs(model, g, task, ablation, seed=seed)
    outside = g.valid & ~circuit.mask
    masks = torch.stack([torch.zeros_like(g.valid), outside, g.valid.clone()])  # full, circuit, empty
    full, circ, empty = edge_metric(model, g, task, masks, source).tolist()
    with torch.no_grad():
        corrupt = float(task.metric(model(task.corrupt)).mean())
    denom = full - empty
    score = (circ - empty) / denom if abs(denom) > 1e-12 else float("nan")
    return Faithfulness(full, circ, empty, corrupt, score)


def compare_to_truth(circuit: Circuit, truth: Any) -> dict[str, float]:
    """Agreement of scores and selection with a known circuit.

    Args:
        circuit: scored edges; its ``mask`` is the selection judged by precision and recall.
        truth: the true edges (names ``"u->r"``, pairs, or a ``[up, recv]`` mask).

    Returns:
        ``roc_auc`` (|score| ranking true edges above the others, over all valid edges), ``precision``,
        ``recall``, ``n_true`` and ``n_selected``.
    """
    from sklearn.metrics import roc_auc_score

    g = circuit.graph
    true = truth if isinstance(truth, Tensor) else g.edge_mask(truth)
    true, sel = true[g.valid], circuit.mask[g.valid]
    y, s = true.numpy(), circuit.scores.abs()[g.valid].numpy()
    auc = float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")
    tp = int((true & sel).sum())
    return {"roc_auc": auc, "precision": tp / max(int(sel.sum()), 1), "recall": tp / max(int(true.sum()), 1),
            "n_true": int(true.sum()), "n_selected": int(sel.sum())}  # fmt: skip
