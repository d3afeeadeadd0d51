"""Direct logit attribution and the logit lens.

Direct logit attribution (DLA) splits the answer's logit difference into one
term per upstream node (``input``, each head, each MLP) plus the biases,
through the final LayerNorm with its scale frozen at the clean run's value:
with the scale fixed the logits are linear in the residual stream, so the terms
sum exactly to the logit difference. The logit lens reads the residual stream
before every block through the final LayerNorm and unembedding and evaluates
the task metric there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from circuits.graph import Graph
from circuits.patching import node_outputs
from circuits.tasks import AnswerMetric, Task
from interp.errors import InputError

__all__ = ["LogitAttribution", "direct_logit_attribution", "logit_lens"]


@dataclass(frozen=True, eq=False)
class LogitAttribution:
    """Each node's direct contribution to the answer's logit difference, mean over examples.

    Attributes:
        graph: the node naming (``graph.upstream``).
        per_node: contribution of each upstream node ``[up]``.
        bias: attention output biases, the final LayerNorm's bias and the unembedding bias together.
        total: the logit difference itself (``per_node.sum() + bias``).
        per_example: ``[up + 1, batch]``: the node terms and (last row) the bias term per example.
    """

    graph: Graph
    per_node: Float[Tensor, " up"]
    bias: float
    total: float
    per_example: Float[Tensor, "up1 batch"]

    def node(self, name: str) -> float:
        """The contribution of one node (``a3.h1``, ``m2``, ``input``)."""
        return float(self.per_node[self.graph.upstream_index(name)])

    @property
    def by_head(self) -> Float[Tensor, "layer head"]:
        """Head contributions ``[n_layers, n_heads]``."""
        g = self.graph
        per = g.n_heads + int(g.has_mlp)
        return self.per_node[1:].reshape(g.n_layers, per)[:, : g.n_heads]

    @property
    def by_mlp(self) -> Float[Tensor, " layer"]:
        """MLP contributions ``[n_layers]`` (zeros for attention-only models)."""
        g = self.graph
        if not g.has_mlp:
            return torch.zeros(g.n_layers)
        return self.per_node[1:].reshape(g.n_layers, g.n_heads + 1)[:, -1]

    @property
    def by_layer(self) -> Float[Tensor, " layer"]:
        """Heads plus MLP of each layer."""
        return self.by_head.sum(1) + self.by_mlp


def _direction(model: Any, metric: AnswerMetric) -> tuple[Float[Tensor, "batch d_model"], Float[Tensor, " batch"]]:
    """Per-example unembedding direction (correct minus wrong, set means) and its bias term."""
    w_u, b_u = model.W_U, model.b_U  # [d_model, vocab], [vocab]

    def mean_cols(ids: Tensor) -> tuple[Tensor, Tensor]:
        valid = (ids >= 0).to(w_u.dtype)  # [batch, k]
        cols = w_u[:, ids.clamp(min=0)]  # [d_model, batch, k]
        n = valid.sum(1)
        return (cols * valid).sum(-1).T / n[:, None], (b_u[ids.clamp(min=0)] * valid).sum(1) / n

    d, b = mean_cols(metric.correct.to(w_u.device))
    if metric.wrong is not None:
        dw, bw = mean_cols(metric.wrong.to(w_u.device))
        d, b = d - dw, b - bw
    return d, b


@torch.no_grad()
def direct_logit_attribution(model: Any, task: Task) -> LogitAttribution:
    """Direct logit attribution of the task's answer logit difference, final LayerNorm scale frozen.

    Args:
        model: a ``HookedTransformer``.
        task: a task whose metric is an :class:`~circuits.tasks.AnswerMetric` (its ``correct`` and
            ``wrong`` sets give the direction; without ``wrong``, the mean correct logit is attributed).

    Returns:
        A :class:`LogitAttribution`; ``total`` equals the clean logit difference.

    Raises:
        InputError: the metric has no answer tokens.
    """
    metric = task.metric
    if not isinstance(metric, AnswerMetric):
        raise InputError(f"direct_logit_attribution needs a task with an AnswerMetric; {task.name!r} has "
                         f"{type(metric).__name__}. Build the task with answer tokens (ioi_task, …).")  # fmt: skip
    g = Graph.from_model(model)
    outs = node_outputs(model, g, task.clean)  # [up, batch, pos, d]
    n, n_pos = len(task), task.clean.shape[1]
    pos = metric.position % n_pos
    outs = outs[:, torch.arange(n), pos]  # [up, batch, d]: each example's predicting position
    _, cache = model.run_with_cache(task.clean, names_filter=lambda h: h.startswith("ln_final.hook_scale"))
    norm = model.cfg.normalization_type
    biases = sum(model.blocks[i].attn.b_O for i in range(g.n_layers))  # [d_model]
    parts = torch.cat([outs, biases.expand(1, n, -1).to(outs.dtype)])  # [up + 1, batch, d]
    if norm in ("LN", "LNPre"):
        parts = parts - parts.mean(-1, keepdim=True)  # LayerNorm centres: linear, so per part
    if norm is not None:
        scale = cache["ln_final.hook_scale"][torch.arange(n), pos]  # [batch, 1], frozen from the clean run
        parts = parts / scale.to(parts.dtype)
    d, b_dir = _direction(model, metric)
    w = model.ln_final.w if norm in ("LN", "RMS") else torch.ones(model.cfg.d_model)
    terms = torch.einsum("nbd,bd->nb", parts, (d * w.to(d.dtype)).to(parts.dtype))  # [up + 1, batch]
    if norm == "LN":
        terms[-1] += d @ model.ln_final.b.to(d.dtype)
    terms[-1] += b_dir
    mean = terms.mean(1)
    return LogitAttribution(g, mean[:-1], float(mean[-1]), float(mean.sum()), terms)


@torch.no_grad()
def logit_lens(model: Any, task: Task) -> Float[Tensor, " layer"]:
    """The task metric read off the residual stream before each block and after the last.

    Args:
        model: a ``HookedTransformer``.
        task: the task (its metric is evaluated on the lens logits of the clean input).

    Returns:
        ``[n_layers + 1]``: mean metric from ``blocks.L.hook_resid_pre`` for each ``L``, then from the final
        residual stream (the model's own output).
    """
    n_layers = model.cfg.n_layers
    names = [f"blocks.{i}.hook_resid_pre" for i in range(n_layers)] + [f"blocks.{n_layers - 1}.hook_resid_post"]
    _, cache = model.run_with_cache(task.clean, names_filter=lambda h: h in names)
    return torch.stack([task.metric(model.unembed(model.ln_final(cache[h]))).mean().float() for h in names])
