"""The causal check of entropy neurons: total effect on output entropy against the direct logit effect.

An entropy neuron ("Confidence Regulation Neurons in Language Models", Stolfo
et al. 2024) writes mostly into the unembedding's effective null space, so
its direct effect on the logits is small; it changes the output's entropy
through the final normalisation instead, by changing the residual norm that
every logit is divided by. :func:`entropy_effects` measures both for chosen
neurons on some tokens:

* **total effect**: mean-ablate the neuron (its mean over the same tokens,
  :class:`~interp.interventions.Ablate` at every non-BOS position) and run the
  rest of the model; the change in next-token entropy per position;
* **direct effect**: remove only the neuron's own contribution
  ``(mean - a) * w_out`` from the final residual and read it through the
  unembedding with the final norm's scale frozen at its clean value (and, for
  LayerNorm, the centring applied); the change in entropy.

``ratio = mean |ΔH_total| / mean |ΔH_direct|``: entropy neurons have ratios far
above those of ordinary neurons of the same layer, which the function also
measures (``n_random`` of them) as the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.capture import capture
from interp.errors import InputError
from interp.interventions import Ablate, intervene

__all__ = ["entropy_effects", "entropy_candidates", "entropy"]


def entropy(logits: Float[Tensor, "*batch vocab"]) -> Float[Tensor, "*batch"]:
    """Entropy (nats) of the softmax of ``logits`` along the last dimension."""
    logp = logits.float().log_softmax(-1)
    return -(logp.exp() * logp).sum(-1)


def entropy_candidates(table: Any, layer: int, k: int = 5) -> list[tuple[int, int]]:
    """The ``k`` neurons of ``layer`` with the largest output component in ``W_U``'s null space (``null_norm``)."""
    rows = table[table.layer == layer]
    if rows.empty:
        raise InputError(f"the atlas table has no neurons of layer {layer}. Score it with weight_scores first.")
    return [(int(layer), int(n)) for n in rows.nlargest(k, "null_norm").neuron]


def _random_neurons(model: Any, layers: list[int], exclude: set, n: int, seed: int) -> list[tuple[int, int]]:
    g = torch.Generator().manual_seed(seed)
    out: list[tuple[int, int]] = []
    for layer in layers:
        perm = torch.randperm(int(model.cfg.d_mlp), generator=g).tolist()
        out += [(layer, i) for i in perm if (layer, i) not in exclude][:n]
    return out


@torch.no_grad()
def entropy_effects(model: Any, tokens: Int[Tensor, "batch pos"], neurons: Sequence[tuple[int, int]], *,
                    n_random: int = 5, seed: int = 0) -> Any:  # fmt: skip
    """Total (mean-ablation) and direct (frozen final norm) effects of neurons on next-token entropy.

    Args:
        model: a ``HookedTransformer`` with a final norm (``ln_final``).
        tokens: token ids ``[batch, pos]``; position 0 (BOS) is neither ablated nor scored.
        neurons: ``(layer, neuron)`` pairs to test.
        n_random: random neurons of each tested layer added as the baseline group.
        seed: seed of the random neurons.

    Returns:
        A DataFrame, one row per neuron: ``layer``, ``neuron``, ``group`` (``candidate`` /
        ``random``), ``total_dH`` and ``direct_dH`` (mean signed entropy change),
        ``total_abs`` and ``direct_abs`` (mean absolute change) and ``ratio``.

    Raises:
        InputError: fewer than 2 positions, or a model without a final norm.
    """
    import pandas as pd

    if tokens.ndim != 2 or tokens.shape[1] < 2:
        raise InputError(f"tokens must be [batch, pos] with pos >= 2 (position 0 is skipped), "
                         f"got {tuple(tokens.shape)}.")  # fmt: skip
    if "ln_final.hook_scale" not in model.hook_dict:
        raise InputError(f"{model.cfg.model_name} has no final norm (ln_final.hook_scale), so there is no "
                         "entropy effect through it to measure.")  # fmt: skip
    layers = sorted({int(layer) for layer, _ in neurons})
    tested = [(int(a), int(b)) for a, b in neurons]
    rows = [(n, "candidate") for n in tested]
    rows += [(n, "random") for n in _random_neurons(model, layers, set(tested), n_random, seed)]
    hooks = [f"blocks.{x}.hook_resid_pre" for x in layers] + [f"blocks.{x}.mlp.hook_post" for x in layers]
    with capture(model, hooks + ["ln_final.hook_scale"]) as acts:
        logits = model(tokens)  # [batch, pos, vocab]
    h0 = entropy(logits[:, 1:])  # [batch, pos-1]
    scale = acts["ln_final.hook_scale"][:, 1:]  # [batch, pos-1, 1]
    w_u = model.W_U.detach()  # [d_model, d_vocab]
    centre = str(model.cfg.normalization_type or "").startswith("LN")  # LayerNorm also subtracts the mean
    out = []
    for (layer, i), group in rows:
        post = acts[f"blocks.{layer}.mlp.hook_post"]  # [batch, pos, d_mlp]
        ref = post[:, 1:].reshape(-1, post.shape[-1])  # [rows, d_mlp]: non-BOS token rows
        edit = Ablate(f"blocks.{layer}.mlp.hook_post", method="mean", reference=ref, units=[i],
                      positions=list(range(1, tokens.shape[1])))  # fmt: skip
        with intervene(model, edit):
            ablated = model(acts[f"blocks.{layer}.hook_resid_pre"], start_at_layer=layer)
        d_total = entropy(ablated[:, 1:]) - h0
        w = model.blocks[layer].mlp.W_out[i]  # [d_model]
        w = w - w.mean() if centre else w
        coef = (ref[:, i].mean() - post[:, 1:, i])[..., None] / scale  # [b, p-1, 1]
        d_direct = entropy(logits[:, 1:] + coef * (w @ w_u)) - h0  # the removed contribution is rank one
        out.append({"layer": layer, "neuron": i, "group": group, "total_dH": float(d_total.mean()),
                    "direct_dH": float(d_direct.mean()), "total_abs": float(d_total.abs().mean()),
                    "direct_abs": float(d_direct.abs().mean())})  # fmt: skip
    df = pd.DataFrame(out)
    df["ratio"] = df.total_abs / df.direct_abs.clip(lower=1e-9)
    return df
