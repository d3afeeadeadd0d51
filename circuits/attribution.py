"""Edge attribution patching: EAP and EAP-IG, every edge's score from a few forward/backward passes.

EAP (Syed et al. 2023) approximates exact edge patching to first order:
``score[u, r] = sum over batch, pos of (u_source - u_clean) · ∂metric/∂r_in`` at
the clean run. The differences are computed once per upstream node
(``[up, batch, pos, d_model]``) and each receiver's gradient is consumed as the
backward pass reaches it, so no per-edge activation is ever stored: memory is
one forward/backward plus the differences, per batch of examples.

EAP-IG (Hanna et al. 2024) averages the receiver gradients over ``steps``
points on the straight line between the clean and the corrupt input
embeddings (midpoint rule), integrated gradients that follow the metric when it
is far from linear. Scores estimate ``metric(patched) - metric(clean)``, mean
over examples, like :func:`circuits.patching.patch_edges`.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from circuits.graph import Graph, edge_hooks, frozen_params
from circuits.patching import Ablation, batched_sources, node_outputs, receiver_groups
from circuits.result import Circuit
from circuits.tasks import Task
from interp.errors import InputError

__all__ = ["eap", "eap_ig", "edge_gradients_dot"]


def edge_gradients_dot(
    model: Any,
    graph: Graph,
    task: Task,
    delta: Float[Tensor, "up batch pos d_model"],
    alphas: list[float],
    scale: float = 1.0,
) -> Float[Tensor, "up recv"]:
    """``sum_alpha sum_{batch,pos} delta[u] · ∂metric/∂r_in`` at inputs interpolated by ``alpha``.

    The input node's output is replaced by ``clean + alpha * delta[0]`` (``alpha = 0``: the clean run).

    Args:
        model: a ``HookedTransformer``.
        graph: its graph.
        task: the task (clean ids and metric; one batch).
        delta: source minus clean upstream outputs.
        alphas: interpolation points.
        scale: multiplies the metric before the backward pass (1 / examples / steps for a mean).

    Returns:
        Scores ``[up, recv]`` (not masked by ``graph.valid``).
    """
    dev = model.cfg.device
    scores = torch.zeros(graph.valid.shape, dtype=torch.float64, device=dev)
    delta = delta.to(dev)
    groups = receiver_groups(graph)

    def grad_hook(first: int, stop: int, n_up: int) -> Any:
        def on_grad(g: Tensor) -> None:
            g = g if g.ndim == 4 else g[:, :, None]  # [batch, pos, r, d]
            scores[:n_up, first:stop] += torch.einsum("ubpd,bprd->ur", delta[:n_up], g.to(delta.dtype)).double()

        def hook(act: Tensor, hook: Any) -> None:
            act.register_hook(on_grad)

        return hook

    with edge_hooks(model, graph), frozen_params(model), torch.enable_grad():
        for alpha in alphas:

            def interpolate(x: Tensor, hook: Any, alpha: float = alpha) -> Tensor:
                return (x + alpha * delta[0].to(x.dtype)).detach().requires_grad_(True)

            hooks = [("blocks.0.hook_resid_pre", interpolate)]
            hooks += [(h, grad_hook(a, b, n)) for h, a, b, n in groups]
            with model.hooks(fwd_hooks=hooks):
                logits = model(task.clean.to(dev))
                (task.metric(logits).sum() * scale).backward()
    return scores.float().cpu()


def _attribute(
    model: Any,
    task: Task,
    graph: Graph | None,
    alphas: list[float],
    method: str,
    ablation: Ablation,
    batch_size: int | None,
    progress: bool,
) -> Circuit:
    graph = graph if graph is not None else Graph.from_model(model)
    scores = torch.zeros(graph.valid.shape)
    n_batches = task.n_batches(batch_size)
    batches = batched_sources(model, graph, task, ablation, batch_size)
    for sub, delta in tqdm(batches, total=n_batches, disable=not progress, desc=method):
        node_outputs(model, graph, sub.clean, subtract_from=delta)  # [up, batch, pos, d]: source minus clean
        scores += edge_gradients_dot(model, graph, sub, delta, alphas, 1.0 / len(task) / len(alphas))
        del delta
    meta = {"task": task.name, "ablation": ablation, "n": len(task), "steps": len(alphas)}
    return Circuit(graph, scores * graph.valid, graph.valid.clone(), method, meta)


def eap(
    model: Any,
    task: Task,
    graph: Graph | None = None,
    *,
    ablation: Ablation = "corrupt",
    batch_size: int | None = None,
    progress: bool = False,
) -> Circuit:
    """Edge attribution patching: every edge's linear estimate from one forward and backward per batch.

    Args:
        model: a ``HookedTransformer``.
        task: the task.
        graph: its graph (default ``Graph.from_model(model)``).
        ablation: what a patched edge carries (see :func:`circuits.patching.source_outputs`).
        batch_size: examples per pass (memory scales with it; default: Task.batch_step's 512-token bound).
        progress: show a progress bar over batches.

    Returns:
        A :class:`~circuits.result.Circuit` with every edge, scored.
    """
    return _attribute(model, task, graph, [0.0], "eap", ablation, batch_size, progress)


def eap_ig(
    model: Any,
    task: Task,
    graph: Graph | None = None,
    *,
    steps: int = 5,
    ablation: Ablation = "corrupt",
    batch_size: int | None = None,
    progress: bool = False,
) -> Circuit:
    """EAP with integrated gradients over the input embeddings (Hanna et al. 2024).

    Args:
        model: a ``HookedTransformer``.
        task: the task.
        graph: its graph (default from the model).
        steps: interpolation points between the clean and the corrupt input embeddings (midpoint rule).
        ablation: what a patched edge carries (the interpolation runs towards its input node).
        batch_size: examples per pass.
        progress: show a progress bar.

    Returns:
        A :class:`~circuits.result.Circuit` with every edge, scored.
    """
    if steps < 1:
        raise InputError(f"eap_ig steps must be >= 1, got {steps}.")
    return _attribute(model, task, graph, [(k + 0.5) / steps for k in range(steps)], "eap-ig", ablation,
                      batch_size, progress)  # fmt: skip
