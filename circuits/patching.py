"""Patching: exact edge patching (the ground truth), activation patching and path patching.

Edge patching runs the clean input and changes only the chosen receivers'
inputs: for each patched edge ``u->r``, ``r_in' = r_in + (u_source - u_now)``,
where ``u_now`` is ``u``'s output in this (patched) run and ``u_source`` its
output in the source run (the corrupt input, or a mean/zero/resampled
ablation). Patching every edge into a receiver equals replacing that
receiver's input wholesale; patching every edge of the graph reproduces the
source run. :func:`run_with_edges` is the engine every edge method here, in
:mod:`circuits.acdc` and in :mod:`circuits.result` uses; :func:`patch_edges`
scores edges one at a time (batched as copies of the input).

Node-level methods go through :mod:`interp.interventions`:
:func:`patch_heads`, :func:`patch_mlps`, :func:`patch_resid` and
:func:`path_patch`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from circuits.graph import Graph, edge_hooks
from circuits.result import Circuit
from circuits.tasks import Task
from interp.errors import InputError
from interp.interventions import Patch, intervene
from interp.interventions.apply import capture_activations

__all__ = [
    "node_outputs",
    "source_outputs",
    "batched_sources",
    "run_with_edges",
    "edge_metric",
    "patch_edges",
    "patch_heads",
    "patch_mlps",
    "patch_resid",
    "path_patch",
    "upstream_hooks",
    "receiver_groups",
]

Ablation = Literal["corrupt", "mean", "zero", "resample"]


def _graph(model: Any, graph: Graph | None) -> Graph:
    return graph if graph is not None else Graph.from_model(model)


def upstream_hooks(model: Any, graph: Graph, sink: Callable[[int, int, Tensor], None]) -> list[tuple[str, Any]]:
    """Forward hooks that hand every upstream node's output to ``sink(start, stop, out[k, batch, pos, d])``.

    ``start:stop`` are the nodes' rows in ``graph.upstream``. Head outputs are
    ``z_h @ W_O[h]``, computed from ``attn.hook_z``.
    """
    hooks: list[tuple[str, Any]] = [("blocks.0.hook_resid_pre", lambda x, hook: sink(0, 1, x[None]))]
    per = graph.n_heads + int(graph.has_mlp)
    for layer in range(graph.n_layers):
        first = 1 + layer * per
        w_o = model.blocks[layer].attn.W_O  # [head, d_head, d_model]

        def on_z(z: Tensor, hook: Any, first: int = first, w_o: Tensor = w_o) -> None:
            sink(first, first + graph.n_heads, torch.einsum("bphk,hkd->hbpd", z, w_o))  # [head, b, p, d]

        hooks.append((f"blocks.{layer}.attn.hook_z", on_z))
        if graph.has_mlp:
            stop = first + graph.n_heads
            hooks.append((f"blocks.{layer}.hook_mlp_out", lambda x, hook, s=stop: sink(s, s + 1, x[None])))
    return hooks


def receiver_groups(graph: Graph) -> list[tuple[str, int, int, int]]:
    """Receivers grouped by hook point: ``(hook, first column, stop column, n_upstream)``."""
    groups: list[tuple[str, int, int, int]] = []
    for j, spec in enumerate(graph.receiver_specs):
        if groups and groups[-1][0] == spec.hook:
            groups[-1] = (spec.hook, groups[-1][1], j + 1, spec.n_upstream)
        else:
            groups.append((spec.hook, j, j + 1, spec.n_upstream))
    return groups


@torch.no_grad()
def node_outputs(
    model: Any, graph: Graph, tokens: Int[Tensor, "batch pos"], *, subtract_from: Tensor | None = None
) -> Float[Tensor, "up batch pos d_model"]:
    """Every upstream node's output on ``tokens``, in one forward pass.

    Args:
        model: a ``HookedTransformer``.
        graph: its :class:`Graph`.
        tokens: input ids.
        subtract_from: outputs ``[up, batch, pos, d_model]`` to subtract these from, in place (saves a copy).

    Returns:
        Outputs stacked in ``graph.upstream`` order (or ``subtract_from`` minus them).
    """
    shape = (len(graph.upstream), *tokens.shape, model.cfg.d_model)
    out = torch.zeros(shape, dtype=model.cfg.dtype) if subtract_from is None else subtract_from

    def sink(start: int, stop: int, x: Tensor) -> None:
        if subtract_from is None:
            out[start:stop] = x.detach().to(out.device)
        else:
            out[start:stop] -= x.detach().to(out.device)

    with model.hooks(fwd_hooks=upstream_hooks(model, graph, sink)):
        model(tokens.to(model.cfg.device), stop_at_layer=graph.n_layers)
    return out


def source_outputs(
    model: Any, graph: Graph, task: Task, ablation: Ablation = "corrupt", *, seed: int = 0
) -> Float[Tensor, "up batch pos d_model"]:
    """What patched edges carry: node outputs on the corrupt input, or an ablation of the clean ones.

    Args:
        model: a ``HookedTransformer``.
        graph: its :class:`Graph`.
        task: the task (``corrupt`` for ``"corrupt"``; ``clean`` for the ablations).
        ablation: ``corrupt``; ``mean`` (per-position mean over the task's clean examples); ``zero``;
            ``resample`` (the clean outputs of another example, a seeded permutation).
        seed: seeds the resampling permutation.

    Returns:
        Source outputs, ``graph.upstream`` order.
    """
    if ablation == "corrupt":
        return node_outputs(model, graph, task.corrupt)
    if ablation not in ("mean", "zero", "resample"):
        raise InputError(f"ablation must be 'corrupt', 'mean', 'zero' or 'resample', got {ablation!r}.")
    clean = node_outputs(model, graph, task.clean)
    if ablation == "zero":
        return torch.zeros_like(clean)
    if ablation == "mean":
        return clean.mean(1, keepdim=True).expand_as(clean).clone()
    n = clean.shape[1]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    perm = torch.where(perm == torch.arange(n), (perm + 1) % n, perm) if n > 1 else perm  # avoid self-pairs
    return clean[:, perm]


def batched_sources(
    model: Any, graph: Graph, task: Task, ablation: Ablation, batch_size: int | None, *, seed: int = 0
) -> Iterator[tuple[Task, Float[Tensor, "up batch pos d_model"]]]:
    """``(sub-task, source outputs)`` per batch of ``batch_size`` examples.

    Mean ablation averages over the whole task (not per batch); resampling draws within each batch.
    """
    if ablation != "mean":
        for sub in task.batches(batch_size):
            yield sub, source_outputs(model, graph, sub, ablation, seed=seed)
        return
    total = torch.zeros(0)
    for sub in task.batches(batch_size):
        part = node_outputs(model, graph, sub.clean).sum(1, keepdim=True)  # [up, 1, pos, d]
        total = part if total.numel() == 0 else total + part
    for sub in task.batches(batch_size):
        yield sub, (total / len(task)).expand(-1, len(sub), -1, -1).clone()


def run_with_edges(
    model: Any,
    graph: Graph,
    tokens: Int[Tensor, "batch pos"],
    source: Float[Tensor, "up batch pos d_model"],
    patched: Bool[Tensor, "up recv"] | Bool[Tensor, "copies up recv"],
    extra_hooks: list[tuple[str, Any]] | None = None,
) -> Float[Tensor, "copies_batch pos vocab"]:
    """Run the clean ``tokens`` with the ``patched`` edges carrying ``source`` outputs.

    Args:
        model: a ``HookedTransformer``.
        graph: its :class:`Graph`.
        tokens: clean input ids.
        source: upstream outputs the patched edges carry (:func:`source_outputs`).
        patched: edges to patch, ``[up, recv]``; or ``[copies, up, recv]`` to run several patch sets at
            once on copies of the batch.
        extra_hooks: more forward hooks, run after the patches (to record patched activations).

    Returns:
        Logits; with copies, copy-major ``[copies * batch, pos, vocab]``.
    """
    masks = patched[None] if patched.ndim == 2 else patched
    if masks.shape[1:] != graph.valid.shape:
        raise InputError(f"patched mask has shape {tuple(patched.shape)}; expected [up, recv] = "
                         f"{tuple(graph.valid.shape)} (or with a leading copies dim).")  # fmt: skip
    n_copies, (batch, n_pos), dev = masks.shape[0], tokens.shape, model.cfg.device
    masks = (masks & graph.valid).to(dev)
    need = masks.any(0).any(1).nonzero()[:, 0].cpu()  # upstream rows whose diffs some receiver uses
    slot = {u: k for k, u in enumerate(need.tolist())}  # row -> slot in the compact diff store
    d_model, dtype = model.cfg.d_model, model.cfg.dtype
    diff = torch.zeros(len(need), n_copies, batch, n_pos, d_model, dtype=dtype, device=dev)  # [need, c, b, p, d]
    src = source.to(dev)

    def sink(start: int, stop: int, x: Tensor) -> None:
        rows = [u for u in range(start, stop) if u in slot]
        if rows:
            x = x.reshape(stop - start, n_copies, batch, n_pos, -1)  # [k, copies, batch, pos, d]
            diff[[slot[u] for u in rows]] = src[rows, None] - x[[u - start for u in rows]]

    def receiver_hook(first: int, stop: int, n_up: int) -> Callable[[Tensor, Any], Tensor]:
        ups = need[need < n_up]  # needed rows this receiver group reads; their slots are 0..len(ups)-1
        m = masks[:, ups.to(dev), first:stop].to(dtype)  # [copies, k, r]

        def hook(act: Tensor, hook: Any) -> Tensor:
            add = torch.einsum("kcbpd,ckr->cbprd", diff[: len(ups)], m)  # [copies, batch, pos, r, d]
            add = add.reshape(n_copies * batch, n_pos, stop - first, -1)
            return act + (add if act.ndim == 4 else add[:, :, 0])

        return hook

    hooks = upstream_hooks(model, graph, sink)
    for hook_name, first, stop, n_up in receiver_groups(graph):
        if masks[:, :n_up, first:stop].any():
            hooks.append((hook_name, receiver_hook(first, stop, n_up)))
    hooks += extra_hooks or []
    with edge_hooks(model, graph), model.hooks(fwd_hooks=hooks):
        return model(tokens.to(dev).repeat(n_copies, 1))


def edge_metric(
    model: Any,
    graph: Graph,
    task: Task,
    patched: Bool[Tensor, "up recv"] | Bool[Tensor, "copies up recv"],
    source: Float[Tensor, "up batch pos d_model"],
) -> Float[Tensor, " copies"]:
    """Mean task metric with ``patched`` edges carrying ``source`` (one value per copy)."""
    masks = patched[None] if patched.ndim == 2 else patched
    with torch.no_grad():
        logits = run_with_edges(model, graph, task.clean, source, masks)
    logits = logits.reshape(len(masks), len(task), *logits.shape[1:])  # [copies, batch, pos, vocab]
    return torch.stack([task.metric(x).mean() for x in logits])


def patch_edges(
    model: Any,
    task: Task,
    graph: Graph | None = None,
    edges: Any = None,
    *,
    ablation: Ablation = "corrupt",
    batch_size: int | None = None,
    edges_per_pass: int = 8,
    progress: bool = False,
) -> Circuit:
    """Exact edge patching: the metric change from patching each edge alone (ground truth for EAP).

    ``score[u, r] = mean over examples of metric(clean run with u->r patched) - metric(clean run)``;
    one forward per edge, ``edges_per_pass`` edges per forward as copies of the batch.

    Args:
        model: a ``HookedTransformer``.
        task: the task.
        graph: its graph (default ``Graph.from_model(model)``).
        edges: edges to score (names ``"u->r"``, pairs, or a ``[up, recv]`` mask); default all.
        ablation: what a patched edge carries (:func:`source_outputs`).
        batch_size: examples per forward (default: as many as fit in 512 tokens, see Task.batch_step).
        edges_per_pass: edges run together as copies of the batch.
        progress: show a progress bar.

    Returns:
        A :class:`~circuits.result.Circuit` holding every scored edge (unscored edges score 0).
    """
    graph = _graph(model, graph)
    mask = graph.valid if edges is None else (edges if isinstance(edges, Tensor) else graph.edge_mask(edges))
    todo = (mask & graph.valid).nonzero().tolist()
    scores = torch.zeros(graph.valid.shape)
    bar = tqdm(total=len(todo) * task.n_batches(batch_size), disable=not progress, desc="edges")
    for sub, source in batched_sources(model, graph, task, ablation, batch_size):
        base = edge_metric(model, graph, sub, torch.zeros_like(graph.valid), source)[0]
        for start in range(0, len(todo), edges_per_pass):
            chunk = todo[start : start + edges_per_pass]
            masks = torch.zeros(len(chunk), *graph.valid.shape, dtype=torch.bool)
            for c, (u, r) in enumerate(chunk):
                masks[c, u, r] = True
            vals = edge_metric(model, graph, sub, masks, source) - base
            for (u, r), v in zip(chunk, vals.tolist(), strict=True):
                scores[u, r] += v * len(sub) / len(task)
            bar.update(len(chunk))
    bar.close()
    meta = {"task": task.name, "ablation": ablation, "n": len(task)}
    return Circuit(graph, scores, mask & graph.valid, "exact", meta)


def _node_patch(model: Any, task: Task, patches: list[list[Patch]], progress: bool) -> Float[Tensor, " n"]:
    """Metric change (vs the clean run) for each list of patches applied to the clean input."""
    with torch.no_grad():
        base = task.metric(model(task.clean)).mean()
        out = []
        for edits in tqdm(patches, disable=not progress, desc="patching"):
            with intervene(model, edits):
                out.append(task.metric(model(task.clean)).mean() - base)
    return torch.stack(out)


def patch_heads(model: Any, task: Task, *, progress: bool = False) -> Float[Tensor, "layer head"]:
    """Activation patching of each attention head: its corrupt ``hook_z`` into the clean run.

    Args:
        model: a ``HookedTransformer``.
        task: the task (for denoising, pass ``task.swapped()``).
        progress: show a progress bar.

    Returns:
        Mean metric change per head (patched minus clean).
    """
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    acts = capture_activations(model, task.corrupt, [f"blocks.{i}.attn.hook_z" for i in range(n_layers)])
    edits = [[Patch(f"blocks.{i}.attn.hook_z", acts[f"blocks.{i}.attn.hook_z"], heads=[h])]
             for i in range(n_layers) for h in range(n_heads)]  # fmt: skip
    return _node_patch(model, task, edits, progress).reshape(n_layers, n_heads)


def patch_mlps(model: Any, task: Task, *, progress: bool = False) -> Float[Tensor, " layer"]:
    """Activation patching of each MLP's output (``hook_mlp_out``); mean metric change per layer."""
    if model.cfg.attn_only:
        raise InputError(f"{model.cfg.model_name} is attention-only: it has no MLPs to patch.")
    hooks = [f"blocks.{i}.hook_mlp_out" for i in range(model.cfg.n_layers)]
    acts = capture_activations(model, task.corrupt, hooks)
    return _node_patch(model, task, [[Patch(h, acts[h])] for h in hooks], progress)


def patch_resid(model: Any, task: Task, *, progress: bool = False) -> Float[Tensor, "layer pos"]:
    """Activation patching of the residual stream (``hook_resid_pre``) by layer × position."""
    n_layers, n_pos = model.cfg.n_layers, task.clean.shape[1]
    hooks = [f"blocks.{i}.hook_resid_pre" for i in range(n_layers)]
    acts = capture_activations(model, task.corrupt, hooks)
    edits = [[Patch(h, acts[h], positions=[p])] for h in hooks for p in range(n_pos)]
    return _node_patch(model, task, edits, progress).reshape(n_layers, n_pos)


def path_patch(model: Any, task: Task, sender: str, receivers: list[str], graph: Graph | None = None) -> float:
    """Path patching (Wang et al. 2022): the effect of ``sender`` on the metric through ``receivers`` only.

    Pass 1 runs the clean input with the sender's corrupt output and every other attention head frozen at
    its clean output (MLPs recompute), recording the receivers' inputs; pass 2 runs the clean input with
    only those receiver inputs replaced.

    Args:
        model: a ``HookedTransformer``.
        task: the task.
        sender: an upstream node (``a0.h3``, ``m1``, ``input``).
        receivers: receiver names (``a1.h2<q>``, ``m2``, ``logits``) downstream of the sender.
        graph: its graph (default from the model).

    Returns:
        Mean metric change (path-patched minus clean).
    """
    graph = _graph(model, graph)
    s = graph.upstream_index(sender)
    cols = [graph.receiver_index(r) for r in receivers]
    bad = [graph.receivers[c] for c in cols if not graph.valid[s, c]]
    if bad:
        raise InputError(f"path_patch: {bad} do not read {sender}; receivers must come after the sender.")
    with torch.no_grad():
        src = node_outputs(model, graph, task.corrupt)
        clean = node_outputs(model, graph, task.clean)
        # Pass 1: every head edge carries its clean output, except the sender's, which carries its corrupt one.
        frozen = torch.zeros(len(graph.upstream), dtype=torch.bool)
        frozen[[i for i, u in enumerate(graph.upstream) if u.startswith("a")]] = True
        frozen[s] = True
        pass1_src = torch.where(torch.arange(len(graph.upstream))[:, None, None, None] == s, src, clean)
        mask = graph.valid & frozen[:, None]
        recorded: dict[int, Tensor] = {}
        hooks = _record_receivers(graph, cols, recorded)
        run_with_edges(model, graph, task.clean, pass1_src, mask, extra_hooks=hooks)
        base = task.metric(model(task.clean)).mean()
        with edge_hooks(model, graph), model.hooks(fwd_hooks=_replace_receivers(graph, recorded)):
            return float(task.metric(model(task.clean)).mean() - base)


def _record_receivers(graph: Graph, cols: list[int], store: dict[int, Tensor]) -> list[tuple[str, Any]]:
    hooks = []
    for c in cols:
        spec = graph.receiver_specs[c]

        def rec(act: Tensor, hook: Any, c: int = c, spec: Any = spec) -> None:
            store[c] = (act[:, :, spec.index] if act.ndim == 4 else act).detach().clone()

        hooks.append((spec.hook, rec))
    return hooks


def _replace_receivers(graph: Graph, store: dict[int, Tensor]) -> list[tuple[str, Any]]:
    hooks = []
    for c, value in store.items():
        spec = graph.receiver_specs[c]

        def put(act: Tensor, hook: Any, value: Tensor = value, spec: Any = spec) -> Tensor:
            act = act.clone()
            if act.ndim == 4:
                act[:, :, spec.index] = value
            else:
                act[:] = value
            return act

        hooks.append((spec.hook, put))
    return hooks
