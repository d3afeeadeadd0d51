"""The computational graph that circuit discovery scores: nodes, receivers and edges.

Convention (the one every method in :mod:`circuits` shares):

Upstream nodes (they write into the residual stream), in topological order:
    ``input``      the embeddings (``blocks.0.hook_resid_pre``: token + positional embedding);
    ``a{L}.h{H}``  attention head ``H`` of layer ``L`` (its output ``z_H @ W_O[H]``, without ``b_O``);
    ``m{L}``       the MLP of layer ``L`` (``blocks.{L}.hook_mlp_out``), absent in attention-only models.

Receivers (they read the residual stream):
    ``a{L}.h{H}<q>``            the query input of head ``H``;
    ``a{L}.h{H}<k>``, ``<v>``   its key and value inputs (multi-head attention);
    ``a{L}.kv{G}<k>``, ``<v>``  with grouped-query attention, the key/value input of KV group ``G``,
                                one receiver shared by the query heads of the group;
    ``m{L}``                    the MLP input; ``logits`` the input of the final LayerNorm.

An edge ``u->r`` exists when ``u`` is computed before ``r`` reads: attention in
layer ``L`` reads ``input`` and every node of layers ``< L``; the MLP of layer
``L`` also reads layer ``L``'s heads (not with parallel attention/MLP blocks);
``logits`` reads everything. A receiver's input is the residual stream before
its LayerNorm, i.e. the sum of its upstream nodes' outputs plus constant biases,
which is what makes edge patching exact: ``r_in' = r_in + (u_corrupt - u_clean)``.
A 2-layer × 4-head attention-only model has 81 edges (12 + 60 + 9).

Scores live in dense ``[n_upstream, n_receivers]`` matrices masked by
:attr:`Graph.valid`; :meth:`Graph.edges` lists the valid pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from jaxtyping import Bool
from torch import Tensor

from interp.errors import InputError, UnknownNameError

__all__ = ["Graph", "ReceiverSpec", "edge_name", "parse_edge", "edge_hooks", "frozen_params"]


def edge_name(upstream: str, receiver: str) -> str:
    """The edge's name, ``"a0.h1->a1.h2<k>"``."""
    return f"{upstream}->{receiver}"


def parse_edge(name: str) -> tuple[str, str]:
    """``"a0.h1->a1.h2<k>"`` -> ``("a0.h1", "a1.h2<k>")``."""
    u, sep, r = name.partition("->")
    if not sep:
        raise InputError(f"edge name {name!r} has no '->'; edges are named 'upstream->receiver', e.g. 'a0.h1->m1'.")
    return u, r


@dataclass(frozen=True)
class ReceiverSpec:
    """Where a receiver's input lives in a TransformerLens forward pass.

    Attributes:
        name: receiver name (``a1.h2<q>``).
        layer: block index (``n_layers`` for ``logits``).
        kind: ``q``, ``k``, ``v``, ``mlp`` or ``logits``.
        index: head (``q``) or KV group (``k``, ``v``) index; 0 otherwise.
        hook: the hook point holding its input (``blocks.1.hook_q_input`` …).
        n_upstream: how many upstream nodes (a prefix of :attr:`Graph.upstream`) it reads.
    """

    name: str
    layer: int
    kind: str
    index: int
    hook: str
    n_upstream: int


@dataclass(frozen=True)
class Graph:
    """The edge graph of one transformer architecture (see the module docstring).

    Attributes:
        n_layers: blocks.
        n_heads: query heads per layer.
        n_kv_heads: key/value heads per layer (``n_heads`` without grouped-query attention).
        has_mlp: whether blocks have MLPs (``m{L}`` nodes).
        parallel_attn_mlp: MLPs read the block's input, not attention's output (GPT-J, NeoX).
    """

    n_layers: int
    n_heads: int
    n_kv_heads: int
    has_mlp: bool = True
    parallel_attn_mlp: bool = False

    def __post_init__(self) -> None:
        if min(self.n_layers, self.n_heads, self.n_kv_heads) < 1 or self.n_heads % self.n_kv_heads:
            raise InputError(
                f"Graph needs n_layers, n_heads, n_kv_heads >= 1 with n_heads divisible by n_kv_heads; got "
                f"{self.n_layers}, {self.n_heads}, {self.n_kv_heads}."
            )

    @classmethod
    def from_model(cls, model: Any) -> Graph:
        """The graph of a TransformerLens ``HookedTransformer`` (or its ``cfg``).

        Raises:
            InputError: the architecture is not additive per head (post-norm blocks, a LayerNorm after
                attention) or uses shortformer positions, so edge patching would not be exact.
        """
        cfg = getattr(model, "cfg", model)
        arch = str(getattr(cfg, "original_architecture", "") or "")
        if getattr(cfg, "use_normalization_before_and_after", False) or arch.startswith("Olmo2") or "Olmo3" in arch:
            raise InputError(
                f"{cfg.model_name}: a LayerNorm after attention/MLP makes head outputs non-additive, so edge "
                "patching is not exact. Use node-level activation patching (circuits.patching.patch_heads)."
            )
        if getattr(cfg, "positional_embedding_type", "standard") == "shortformer":
            raise InputError(f"{cfg.model_name}: shortformer positions are not supported by the edge graph.")
        n_kv = getattr(cfg, "n_key_value_heads", None)
        if n_kv is None or getattr(cfg, "ungroup_grouped_query_attention", False):
            n_kv = cfg.n_heads
        return cls(cfg.n_layers, cfg.n_heads, int(n_kv), not cfg.attn_only, bool(cfg.parallel_attn_mlp))

    @property
    def gqa(self) -> bool:
        """Whether key/value receivers are per KV group rather than per head."""
        return self.n_kv_heads != self.n_heads

    def _n_before(self, layer: int) -> int:
        """Upstream nodes written before layer ``layer``'s attention reads."""
        return 1 + layer * (self.n_heads + int(self.has_mlp))

    @cached_property
    def upstream(self) -> tuple[str, ...]:
        """Upstream node names in topological order."""
        names = ["input"]
        for layer in range(self.n_layers):
            names += [f"a{layer}.h{h}" for h in range(self.n_heads)]
            names += [f"m{layer}"] if self.has_mlp else []
        return tuple(names)

    @cached_property
    def receiver_specs(self) -> tuple[ReceiverSpec, ...]:
        """Every receiver, in the order of the score matrices' columns."""
        out: list[ReceiverSpec] = []
        kv = "kv" if self.gqa else "h"
        for layer in range(self.n_layers):
            n_up = self._n_before(layer)
            for h in range(self.n_heads):
                out.append(ReceiverSpec(f"a{layer}.h{h}<q>", layer, "q", h, f"blocks.{layer}.hook_q_input", n_up))
            for kind in ("k", "v"):
                for g in range(self.n_kv_heads):
                    name = f"a{layer}.{kv}{g}<{kind}>"
                    out.append(ReceiverSpec(name, layer, kind, g, f"blocks.{layer}.hook_{kind}_input", n_up))
            if self.has_mlp:
                n_mlp = n_up if self.parallel_attn_mlp else n_up + self.n_heads
                out.append(ReceiverSpec(f"m{layer}", layer, "mlp", 0, f"blocks.{layer}.hook_mlp_in", n_mlp))
        last = f"blocks.{self.n_layers - 1}.hook_resid_post"
        out.append(ReceiverSpec("logits", self.n_layers, "logits", 0, last, len(self.upstream)))
        return tuple(out)

    @cached_property
    def receivers(self) -> tuple[str, ...]:
        """Receiver names (columns of the score matrices)."""
        return tuple(r.name for r in self.receiver_specs)

    @cached_property
    def valid(self) -> Bool[Tensor, "up recv"]:
        """``valid[u, r]``: whether edge ``upstream[u] -> receivers[r]`` exists."""
        mask = torch.zeros(len(self.upstream), len(self.receivers), dtype=torch.bool)
        for j, spec in enumerate(self.receiver_specs):
            mask[: spec.n_upstream, j] = True
        return mask

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return int(self.valid.sum())

    def edges(self) -> list[tuple[str, str]]:
        """All edges ``(upstream, receiver)``, receiver-major in topological order."""
        return [(self.upstream[u], self.receivers[r]) for r, u in self.valid.T.nonzero().tolist()]

    @cached_property
    def _rows(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.upstream)}

    @cached_property
    def _cols(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.receivers)}

    def upstream_index(self, name: str) -> int:
        """Row of upstream node ``name``; raises :class:`UnknownNameError` with nearest names."""
        return self._index(name, self._rows, "upstream node")

    def receiver_index(self, name: str) -> int:
        """Column of receiver ``name``; raises :class:`UnknownNameError` with nearest names."""
        return self._index(name, self._cols, "receiver")

    def _index(self, name: str, lookup: dict[str, int], kind: str) -> int:
        if name not in lookup:
            raise UnknownNameError(kind, name, lookup, fix="Names follow circuits.graph: input, a{L}.h{H}, m{L}, "
                                   "a{L}.h{H}<q|k|v>, a{L}.kv{G}<k|v> (GQA), logits.")  # fmt: skip
        return lookup[name]

    def edge_mask(self, edges: Any) -> Bool[Tensor, "up recv"]:
        """A ``[up, recv]`` mask from edge names (``"u->r"``) or ``(u, r)`` pairs.

        Raises:
            InputError: a pair that is not an edge of this graph (wrong order or layer).
        """
        mask = torch.zeros_like(self.valid)
        for e in edges:
            u, r = parse_edge(e) if isinstance(e, str) else e
            i, j = self.upstream_index(u), self.receiver_index(r)
            if not self.valid[i, j]:
                raise InputError(f"{edge_name(u, r)} is not an edge: {r} reads only nodes computed before it.")
            mask[i, j] = True
        return mask

    def receiver_node(self, receiver: str) -> str:
        """The node a receiver belongs to (``a1.h2<q>`` -> ``a1.h2``, ``a1.kv0<k>`` -> ``a1.kv0``)."""
        return receiver.split("<")[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"n_layers": self.n_layers, "n_heads": self.n_heads, "n_kv_heads": self.n_kv_heads,
                "has_mlp": self.has_mlp, "parallel_attn_mlp": self.parallel_attn_mlp}  # fmt: skip


@contextmanager
def edge_hooks(model: Any, graph: Graph) -> Iterator[Any]:
    """Expose per-head q/k/v inputs (and MLP inputs) as hook points; restore the flags afterwards.

    Turns on TransformerLens's ``use_split_qkv_input`` (``blocks.L.hook_q_input``
    ``[batch, pos, n_heads, d_model]``; ``hook_k_input``/``hook_v_input`` have
    ``n_kv_heads`` heads under grouped-query attention) and ``use_hook_mlp_in``.
    """
    cfg = model.cfg
    old = (cfg.use_split_qkv_input, cfg.use_hook_mlp_in)
    try:
        cfg.use_split_qkv_input = True
        cfg.use_hook_mlp_in = graph.has_mlp
        yield model
    finally:
        cfg.use_split_qkv_input, cfg.use_hook_mlp_in = old


@contextmanager
def frozen_params(model: Any) -> Iterator[Any]:
    """Turn off parameter gradients inside the block (attribution needs activation gradients only)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
