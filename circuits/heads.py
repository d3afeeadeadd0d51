"""Head detectors: induction, previous-token and duplicate-token scores from attention patterns.

Each score is the attention mass a head puts on the positions a mechanism
would attend to, averaged over the query positions where such a target
exists, for any token ids:

``previous_token``   key ``p - 1`` for query ``p``;
``duplicate_token``  earlier keys holding the same token as the query;
``induction``        keys right after an earlier occurrence of the query's token
                     (``tokens[k - 1] == tokens[p]``, ``k <= p``).

Without tokens, the detectors run on repeated random tokens (the standard
probe: a segment followed by its repeat). Confirm a detection by ablation
(:func:`ablate_heads` with :mod:`interp.interventions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from circuits.tasks import NextTokenMetric, induction_task
from interp.errors import InputError
from interp.interventions import Ablate, intervene

__all__ = ["HEAD_KINDS", "head_scores", "target_mask", "top_heads", "ablate_heads"]

HeadKind = Literal["induction", "previous_token", "duplicate_token"]
HEAD_KINDS = ("induction", "previous_token", "duplicate_token")


def target_mask(tokens: Int[Tensor, "batch pos"], kind: HeadKind) -> Bool[Tensor, "batch query key"]:
    """Where a head of ``kind`` should attend: ``mask[b, p, k]``."""
    n_pos = tokens.shape[1]
    causal = torch.ones(n_pos, n_pos, dtype=torch.bool).tril()  # [query, key]
    if kind == "previous_token":
        return torch.eye(n_pos, dtype=torch.bool).roll(-1, 1).tril(-1).expand(len(tokens), -1, -1)
    same = tokens[:, :, None] == tokens[:, None, :]  # [batch, query, key]
    if kind == "duplicate_token":
        return same & causal.tril(-1)
    if kind == "induction":
        prev = torch.zeros_like(same)
        prev[:, :, 1:] = same[:, :, :-1]  # tokens[k - 1] == tokens[p]
        return prev & causal
    raise InputError(f"unknown head kind {kind!r}; use one of {', '.join(HEAD_KINDS)}.")


def _default_tokens(model: Any, n: int, seq_len: int, seed: int) -> Int[Tensor, "batch pos"]:
    half = (seq_len - 1) // 2
    return induction_task(model, n=n, seq_len=seq_len, min_repeat=half, max_repeat=half, seed=seed).clean


@torch.no_grad()
def head_scores(
    model: Any,
    tokens: Int[Tensor, "batch pos"] | None = None,
    kind: HeadKind | Sequence[HeadKind] = "induction",
    *,
    n: int = 8,
    seq_len: int = 41,
    seed: int = 0,
) -> Float[Tensor, "layer head"] | dict[str, Float[Tensor, "layer head"]]:
    """Detector scores of every head, from one forward pass.

    Args:
        model: a ``HookedTransformer`` (or any model with ``blocks.L.attn.hook_pattern``).
        tokens: input ids; default ``n`` sequences of a random segment and its repeat (BOS first when the
            model's tokenizer uses one), ``seq_len`` tokens each.
        kind: one kind, or several (then a dict by kind).
        n: sequences for the default tokens.
        seq_len: length of the default tokens.
        seed: seeds the default tokens.

    Returns:
        ``[n_layers, n_heads]`` mean attention on the kind's targets (0 to 1), or a dict of them.
    """
    kinds = [kind] if isinstance(kind, str) else list(kind)
    tokens = _default_tokens(model, n, seq_len, seed) if tokens is None else tokens
    masks = {k: target_mask(tokens, k) for k in kinds}
    n_layers = model.cfg.n_layers
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(n_layers)]
    _, cache = model.run_with_cache(tokens.to(model.cfg.device), names_filter=lambda h: h in names)
    out = {}
    for k, mask in masks.items():
        has = mask.any(-1)  # [batch, query]: queries with a target
        if not has.any():
            raise InputError(f"the tokens give no {k} targets (e.g. no repeated tokens); pass repeated sequences.")
        scores = []
        for h in names:
            mass = (cache[h].cpu() * mask[:, None]).sum(-1)  # [batch, head, query]
            scores.append((mass * has[:, None]).sum((0, 2)) / has.sum())
        out[k] = torch.stack(scores).float()  # [layer, head]
    return out[kinds[0]] if isinstance(kind, str) else out


def top_heads(scores: Float[Tensor, "layer head"], k: int) -> list[tuple[int, int]]:
    """The ``k`` highest-scoring heads as ``(layer, head)``, best first."""
    idx = scores.flatten().topk(k).indices
    return [(int(i) // scores.shape[1], int(i) % scores.shape[1]) for i in idx]


@torch.no_grad()
def ablate_heads(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    metric: NextTokenMetric | Any,
    heads: Sequence[tuple[int, int]],
    method: Literal["zero", "mean"] = "zero",
) -> float:
    """Mean metric with ``heads`` ablated at ``blocks.L.attn.hook_z`` (zero, or their mean over ``tokens``)."""
    by_layer: dict[int, list[int]] = {}
    for layer, h in heads:
        by_layer.setdefault(layer, []).append(h)
    edits = []
    for layer, hs in by_layer.items():
        hook = f"blocks.{layer}.attn.hook_z"
        ref = None
        if method == "mean":
            _, cache = model.run_with_cache(tokens, names_filter=lambda n, hook=hook: n == hook)
            ref = cache[hook]
        edits.append(Ablate(hook, method=method, reference=ref, heads=hs))
    with intervene(model, edits):
        return float(metric(model(tokens.to(model.cfg.device))).mean())
