"""The vocabulary projection: unit output directions read through the unembedding (logit lens).

A unit writes a direction into the residual stream: row ``i`` of an MLP's
``W_out`` for neuron ``i``, row ``i`` of an SAE's ``W_dec`` for latent ``i``.
Multiplying that direction by the model's unembedding ``W_U`` says which
tokens the unit promotes and suppresses. This module is the one place that
does it, shared by labeling (output-side candidates and report columns),
steering and the atlas:

>>> proj = vocab_projection(model)                        # doctest: +SKIP
>>> top = proj.top_tokens(proj.neuron_directions(3), k=10, key="L3.mlp")   # doctest: +SKIP

The projection uses ``W_U`` alone (no final LayerNorm, whose scale depends on
the input), as Neuronpedia's and SAELens's logit-lens tables do. One
:class:`VocabProjection` is kept per model (weakly, so the model can be freed)
and it caches top-token tables by key.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.errors import InputError

__all__ = ["TopTokens", "VocabProjection", "vocab_projection"]


@dataclass(frozen=True)
class TopTokens:
    """The ``k`` most promoted and most suppressed tokens of each direction.

    Attributes:
        top_ids / top_values: ``[u, k]``, highest logit first.
        bottom_ids / bottom_values: ``[u, k]``, lowest logit first.
    """

    top_ids: Int[Tensor, "u k"]
    top_values: Float[Tensor, "u k"]
    bottom_ids: Int[Tensor, "u k"]
    bottom_values: Float[Tensor, "u k"]


class VocabProjection:
    """Directions of a model's units through its unembedding, with a cache of top-token tables.

    Args:
        model: a model with ``W_U`` ``[d_model, d_vocab]`` (``HookedTransformer``); ``W_out``
            and ``W_O`` are used by the neuron and head helpers when present.
        max_cached: most top-token tables kept.
    """

    def __init__(self, model: Any, max_cached: int = 64):
        w_u = getattr(model, "W_U", None)
        if w_u is None:
            raise InputError(f"{type(model).__name__} has no unembedding W_U, so its units have no output tokens. "
                             "Use a decoder language model (HookedTransformer).")
        self._model = weakref.ref(model)
        self.W_U = w_u.detach().float().cpu()  # [d_model, d_vocab]
        self._cache: OrderedDict[str, TopTokens] = OrderedDict()
        self.max_cached = max_cached

    @property
    def model(self) -> Any:
        """The model (raises if it was freed)."""
        m = self._model()
        if m is None:
            raise InputError("the model of this vocabulary projection was freed. Call vocab_projection(model) again.")
        return m

    def neuron_directions(self, layer: int) -> Float[Tensor, "d_mlp d_model"]:
        """Output directions of layer ``layer``'s MLP neurons (rows of ``W_out``)."""
        return self.model.W_out[layer].detach().float().cpu()

    def head_directions(self, layer: int) -> Float[Tensor, "n_heads d_model"]:
        """One output direction per head: the top right-singular vector of its ``W_O`` ``[d_head, d_model]``.

        A head writes a subspace, not a direction; its main direction is a summary.
        """
        w_o = self.model.W_O[layer].detach().float().cpu()  # [n_heads, d_head, d_model]
        _, s, vh = torch.linalg.svd(w_o, full_matrices=False)  # vh: [n_heads, d_head, d_model]
        return vh[:, 0] * s[:, :1]

    @staticmethod
    def sae_directions(sae: Any) -> Float[Tensor, "d_sae d_model"]:
        """Decoder directions of a SAELens SAE (rows of ``W_dec``)."""
        return sae.W_dec.detach().float().cpu()

    def project(self, directions: Float[Tensor, "u d_model"]) -> Float[Tensor, "u d_vocab"]:
        """Logits each direction adds to every token (``directions @ W_U``)."""
        if directions.shape[-1] != self.W_U.shape[0]:
            raise InputError(f"directions have width {directions.shape[-1]} but the model's d_model is "
                             f"{self.W_U.shape[0]}. Pass output directions in the residual stream.")
        return directions.float() @ self.W_U  # [u, d_vocab]

    def top_tokens(self, directions: Float[Tensor, "u d_model"], k: int = 10, key: str | None = None) -> TopTokens:
        """The ``k`` most promoted and suppressed tokens per direction, cached under ``key`` when given."""
        cache_key = f"{key}|{k}" if key is not None else None
        if cache_key is not None and cache_key in self._cache:
            self._cache.move_to_end(cache_key)
            return self._cache[cache_key]
        out = []
        for chunk in directions.split(1024):  # bounds the [chunk, d_vocab] logits in memory
            logits = self.project(chunk)
            top, bot = logits.topk(k, dim=1), logits.topk(k, dim=1, largest=False)
            out.append((top.indices, top.values, bot.indices, bot.values))
        result = TopTokens(*(torch.cat([o[i] for o in out]) for i in range(4)))
        if cache_key is not None:
            self._cache[cache_key] = result
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        return result


_PROJECTIONS: weakref.WeakKeyDictionary[Any, VocabProjection] = weakref.WeakKeyDictionary()


def vocab_projection(model: Any) -> VocabProjection:
    """The shared :class:`VocabProjection` of ``model`` (one per live model)."""
    proj = _PROJECTIONS.get(model)
    if proj is None:
        proj = _PROJECTIONS[model] = VocabProjection(model)
    return proj
