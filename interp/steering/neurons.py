"""Neuron decoding: MLP neurons read through the unembedding, searched by token, clamped to show their effect.

Neuron ``i`` of layer ``L`` writes row ``i`` of ``W_out[L]`` into the residual
stream; times the unembedding ``W_U`` that says which tokens it promotes
("Decoding specialised feature neurons in LLMs with the final projection
layer"). The projection goes through the shared cached
:func:`~interp.labeling.vocab.vocab_projection` module, the one labeling and
the atlas use.

>>> table = neuron_table(model, layer=20)               # doctest: +SKIP
>>> hits = find_neurons(model, " dog", k=5)   # one product with W_U[:, dog]: milliseconds  # doctest: +SKIP
>>> neuron_effect(model, hits[0]["layer"], hits[0]["neuron"], 10.0, "I saw a", " dog")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.errors import InputError
from interp.labeling.vocab import vocab_projection
from interp.steering.vectors import neuron_clamp

__all__ = ["token_id", "neuron_table", "neuron_scores", "find_neurons", "neuron_effect"]


def token_id(model: Any, token: str | int) -> int:
    """The id of ``token``: an id, a string that is one token, or a word that is one token with a leading space."""
    d_vocab = int(model.cfg.d_vocab)
    if isinstance(token, int):
        if not 0 <= token < d_vocab:
            raise InputError(f"token id {token} is out of range for a vocabulary of {d_vocab}.")
        return token
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        raise InputError(f"{model.cfg.model_name} has no tokenizer; pass token ids instead of {token!r}.")
    for cand in (token, " " + token if not token.startswith(" ") else token):
        ids = tok.encode(cand, add_special_tokens=False)
        if len(ids) == 1:
            return int(ids[0])
    pieces = [tok.decode([i]) for i in tok.encode(token, add_special_tokens=False)]
    raise InputError(f"{token!r} is not one token of {model.cfg.model_name} (it splits into {pieces}). "
                     "Search for one of its pieces, or a single-token word such as ' dog'.")  # fmt: skip


def _layers(model: Any, layers: int | Sequence[int] | None) -> list[int]:
    n = int(model.cfg.n_layers)
    out = list(range(n)) if layers is None else ([layers] if isinstance(layers, int) else list(layers))
    bad = [x for x in out if not 0 <= x < n]
    if bad:
        raise InputError(f"layers {bad} are out of range: the model has {n} layers loaded (0..{n - 1}).")
    return out


def neuron_scores(model: Any, token: str | int, layers: int | Sequence[int] | None = None
                  ) -> Float[Tensor, "n_layers d_mlp"]:  # fmt: skip
    """How much each neuron's output direction promotes ``token``: ``W_out[L] @ W_U[:, token]`` per layer."""
    tid = token_id(model, token)
    col = vocab_projection(model).W_U[:, tid]  # [d_model]
    # per block: model.W_out would stack (copy) every layer's weights on each call
    return torch.stack([_w_out(model, layer) @ col.to(_w_out(model, layer)) for layer in _layers(model, layers)]
                       ).float().cpu()  # [n_layers, d_mlp]


def _w_out(model: Any, layer: int) -> Float[Tensor, "d_mlp d_model"]:
    return model.blocks[layer].mlp.W_out.detach()


def find_neurons(model: Any, token: str | int, k: int = 10,
                 layers: int | Sequence[int] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The ``k`` neurons (over ``layers``, default all) whose output weights promote ``token`` most.

    Returns:
        Rows ``{"layer", "neuron", "score", "rank"}``: ``score`` is the logit the
        neuron adds to the token per unit of activation; ``rank`` is the token's
        rank among everything that neuron promotes (0 = its top token).
    """
    layer_ids = _layers(model, layers)
    tid = token_id(model, token)
    scores = neuron_scores(model, tid, layer_ids)  # [n_layers, d_mlp]
    top = scores.flatten().topk(min(k, scores.numel()))
    proj = vocab_projection(model)
    d_mlp = scores.shape[1]
    rows = []
    for value, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
        layer, neuron = layer_ids[flat // d_mlp], flat % d_mlp
        logits = proj.project(_w_out(model, layer)[neuron : neuron + 1].float().cpu())[0]  # [d_vocab]
        rank = int((logits > logits[tid]).sum())
        rows.append({"layer": layer, "neuron": neuron, "score": value, "rank": rank})
    return rows


def neuron_table(model: Any, layer: int, k: int = 10) -> list[dict[str, Any]]:
    """Every MLP neuron of ``layer`` with its top promoted and suppressed tokens, ranked by its top logit.

    The top-token table is cached in the shared vocabulary projection under the hook name.

    Returns:
        One row per neuron, highest top logit first: ``{"neuron", "top_logit", "top", "bottom"}``
        (``top`` / ``bottom`` token strings, or ids without a tokenizer).
    """
    layer = _layers(model, layer)[0]
    proj = vocab_projection(model)
    tt = proj.top_tokens(proj.neuron_directions(layer), k=k, key=f"blocks.{layer}.mlp.hook_post")
    order = tt.top_values[:, 0].argsort(descending=True)  # [d_mlp]
    tok = getattr(model, "tokenizer", None)
    names = (lambda ids: [tok.decode([i]) for i in ids]) if tok is not None else (lambda ids: list(ids))
    return [{"neuron": int(i), "top_logit": float(tt.top_values[i, 0]), "top": names(tt.top_ids[i].tolist()),
             "bottom": names(tt.bottom_ids[i].tolist())} for i in order.tolist()]  # fmt: skip


def _target_logprob(logits: Float[Tensor, "batch pos vocab"], tid: int) -> float:
    return float(torch.log_softmax(logits[0, -1].float(), -1)[tid])


@torch.no_grad()
def neuron_effect(model: Any, layer: int, neuron: int, value: int | float, prompt: str | Int[Tensor, "1 pos"],
                  token: str | int, max_new_tokens: int = 12) -> dict[str, Any]:  # fmt: skip
    """Clamp one neuron to ``value`` at every position and show what changes.

    Returns:
        ``{"layer", "neuron", "value", "token", "logprob_before", "logprob_after",
        "lift", "text_before", "text_after"}``: the token's log-probability at the
        prompt's last position and greedy continuations without and with the clamp.
    """
    from interp.interventions import run_with_interventions
    from interp.steering.generate import generate

    tid = token_id(model, token)
    d_mlp = int(model.cfg.d_mlp)
    if not 0 <= neuron < d_mlp:
        raise InputError(f"neuron {neuron} is out of range: layer {layer} has d_mlp={d_mlp} neurons.")
    clamp = neuron_clamp(layer, neuron, float(value))
    before = _target_logprob(run_with_interventions(model, prompt), tid)
    after = _target_logprob(run_with_interventions(model, prompt, clamp), tid)
    g0 = generate(model, prompt, max_new_tokens=max_new_tokens)
    g1 = generate(model, prompt, clamp, max_new_tokens=max_new_tokens)
    return {"layer": layer, "neuron": neuron, "value": float(value), "token": tid, "logprob_before": before,
            "logprob_after": after, "lift": after - before, "text_before": g0.text[0], "text_after": g1.text[0]}
