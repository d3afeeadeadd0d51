"""Generation with interventions active at every step, with or without the KV cache, streamed.

>>> out = generate(model, "I think that", Steer("blocks.6.hook_resid_post", v, scale=4.0),
...                max_new_tokens=20, on_token=print_stream(model))                       # doctest: +SKIP
>>> out.text[0]                                                                             # doctest: +SKIP

The edits are added once, through :func:`~interp.interventions.intervene`, and
stay for the whole loop, so every forward pass — the prompt and each new
token — is edited; they are removed when generation ends or raises. With the
KV cache each step runs only the new token; without it each step reruns the
whole sequence. Both give the same tokens for edits that apply at every
position (``positions=None``, the usual steering setting). An edit that
selects positions sees, with the cache, only the positions of the current
forward chunk (the prompt, then one token at a time), so a position-selected
edit means different things in the two modes.

Attention masks are passed explicitly (all ones), so a generated token equal
to the pad token is never masked out and models without a tokenizer work.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp._lazy import callable_module
from interp.errors import InputError
from interp.interventions import Intervention, intervene
from interp.models.contract import COEFFICIENT_FIX, check_finite, prepare_inputs

__all__ = ["Generation", "generate", "print_stream"]

#: ``on_token(step, token_ids [batch], pieces)``: called once per generated token; ``pieces`` are the
#: decoded strings (empty strings when the model has no tokenizer).
TokenCallback = Callable[[int, Tensor, list[str]], None]


@dataclass(frozen=True)
class Generation:
    """The result of :func:`generate`.

    Attributes:
        tokens: ``[batch, prompt_len + n_new]`` prompt and generated token ids.
        prompt_len: number of prompt tokens (BOS included).
        text: per batch row the decoded generated continuation (empty without a tokenizer).
    """

    tokens: Int[Tensor, "batch pos"]
    prompt_len: int
    text: list[str]

    @property
    def new_tokens(self) -> Int[Tensor, "batch new"]:
        """The generated token ids ``[batch, n_new]``."""
        return self.tokens[:, self.prompt_len :]


def _decode(model: Any, ids: Tensor) -> list[str]:
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        return ["" for _ in range(len(ids))]
    return [tok.decode(row.tolist()) for row in ids.reshape(len(ids), -1)]


def _pick(logits: Float[Tensor, "batch vocab"], temperature: float, top_k: int | None,
          gen: torch.Generator) -> Int[Tensor, " batch"]:  # fmt: skip
    """Greedy (``temperature == 0``) or sampled next tokens."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # [batch, 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, -1)  # [batch, vocab]
    return torch.multinomial(probs.cpu(), 1, generator=gen)[:, 0].to(logits.device)


def _validate(model: Any, max_new_tokens: int, temperature: int | float, top_k: int | None) -> None:
    if not hasattr(model, "W_U"):
        raise InputError(f"{type(model).__name__} has no unembedding W_U, so it cannot generate. "
                         "Load a decoder language model with all its blocks: load_model(name).")  # fmt: skip
    if max_new_tokens < 0:
        raise InputError(f"max_new_tokens must be >= 0, got {max_new_tokens}.")
    if temperature < 0:
        raise InputError(f"temperature must be >= 0 (0 is greedy), got {temperature}.")
    if top_k is not None and top_k < 1:
        raise InputError(f"top_k must be >= 1 or None, got {top_k}.")


@torch.no_grad()
def generate(
    model: Any,
    prompt: str | Sequence[str] | Tensor,
    *interventions: Intervention | Sequence[Intervention],
    max_new_tokens: int = 20,
    temperature: int | float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
    use_cache: bool = True,
    stop_at_eos: bool = False,
    on_token: TokenCallback | None = None,
) -> Generation:
    """Generate from ``model`` with ``interventions`` active at every step.

    Args:
        model: a decoder ``HookedTransformer`` (all blocks and the unembedding).
        prompt: a string, a list of strings of the same token length, or token ids ``[batch, pos]``.
        *interventions: edits (or lists of edits) applied to every forward pass.
        max_new_tokens: tokens to generate.
        temperature: 0 for greedy decoding, else sampling temperature.
        top_k: sample among the ``top_k`` most likely tokens only.
        seed: seeds the sampling generator (same seed, same tokens).
        use_cache: keep keys and values between steps (same tokens, much faster).
        stop_at_eos: stop once every row has produced the EOS token.
        on_token: streaming callback ``(step, token_ids [batch], pieces)``; see :func:`print_stream`.

    Returns:
        A :class:`Generation`.

    Raises:
        InputError: bad options, or an edit that makes the logits non-finite.
    """
    _validate(model, max_new_tokens, temperature, top_k)
    tokens = prepare_inputs(model, prompt)  # [batch, pos]
    prompt_len = tokens.shape[1]
    gen = torch.Generator().manual_seed(seed)
    eos = getattr(getattr(model, "tokenizer", None), "eos_token_id", None)
    done = torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    cache = None
    if use_cache:
        from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache as KVCache

        cache = KVCache.init_cache(model.cfg, model.cfg.device, tokens.shape[0])
    with intervene(model, *interventions):
        step_input = tokens
        for step in range(max_new_tokens):
            logits = model(step_input, past_kv_cache=cache, attention_mask=torch.ones_like(step_input))
            check_finite(logits, f"the logits at generation step {step}", COEFFICIENT_FIX)
            nxt = _pick(logits[:, -1], float(temperature), top_k, gen)  # [batch]
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)  # [batch, pos + 1]
            if on_token is not None:
                on_token(step, nxt, _decode(model, nxt[:, None]))
            if eos is not None and stop_at_eos:
                done |= nxt == eos
                if bool(done.all()):
                    break
            step_input = nxt[:, None] if use_cache else tokens
    return Generation(tokens=tokens, prompt_len=prompt_len, text=_decode(model, tokens[:, prompt_len:]))


def print_stream(model: Any, row: int = 0, file: Any = None) -> TokenCallback:
    """A callback for :func:`generate` that prints row ``row``'s tokens as they come (notebooks, terminals)."""

    def _print(step: int, ids: Tensor, pieces: list[str]) -> None:
        print(pieces[row] if pieces[row] else f"<{int(ids[row])}>", end="", flush=True, file=file or sys.stdout)

    return _print


callable_module(__name__, lambda: generate)  # interp.steering.generate(...) works after this module is imported
