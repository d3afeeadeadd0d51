"""A hooked post-LayerNorm BERT encoder (all-MiniLM-L6-v2 and other ``BertModel``\\ s).

Why our own: TransformerLens's ``HookedEncoder`` is deprecated, cannot load a
local directory and always computes the 30522-way unembedding, which a sentence
encoder such as MiniLM never trained. :class:`HookedEncoder` stops at the final
hidden state (HF ``last_hidden_state``) and satisfies :mod:`interp.models.contract`.

Hook points follow TransformerLens 3.9's ``HookedEncoder`` / ``BertBlock`` names
(shapes in brackets; ``L`` is the block index)::

    embed.hook_embed, embed.hook_pos_embed, embed.hook_token_type_embed   [batch pos d_model]
    embed.ln.hook_scale [batch pos 1], embed.ln.hook_normalized            [batch pos d_model]
    hook_full_embed                      embedding output (== blocks.0.hook_resid_pre)
    blocks.L.hook_resid_pre                                               [batch pos d_model]
    blocks.L.attn.hook_q / hook_k / hook_v / hook_z               [batch pos n_heads d_head]
    blocks.L.attn.hook_attn_scores / hook_pattern         [batch n_heads query_pos key_pos]
    blocks.L.attn.hook_result  (only with cfg.use_attn_result)   [batch pos n_heads d_model]
    blocks.L.hook_attn_out, blocks.L.hook_resid_mid                       [batch pos d_model]
    blocks.L.ln1.hook_scale [batch pos 1], blocks.L.ln1.hook_normalized   [batch pos d_model]
    blocks.L.hook_normalized_resid_mid   ln1 output incl. affine = MLP input (our addition)
    blocks.L.mlp.hook_pre, blocks.L.mlp.hook_post                           [batch pos d_mlp]
    blocks.L.hook_mlp_out, blocks.L.hook_resid_post                       [batch pos d_model]
    blocks.L.ln2.hook_scale [batch pos 1], blocks.L.ln2.hook_normalized   [batch pos d_model]
    blocks.L.hook_normalized_resid_post  block output (== blocks.L+1.hook_resid_pre)

TL's flag-gated ``hook_{q,k,v}_input``/``hook_mlp_in`` points (in its ``hook_dict``
but silent by default) and the MLM/NSP/pooler heads are left out. As in BERT, the
LayerNorms sit *after* each sublayer: ``resid_mid = resid_pre + attn_out``;
``resid_post = ln1(resid_mid) + mlp_out``; the block returns ``ln2(resid_post)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens.ActivationCache import ActivationCache
from transformer_lens.hook_points import HookPoint
from transformer_lens.HookedRootModule import HookedRootModule

from interp.errors import InputError
from interp.models.contract import check_token_ids
from interp.models.layers import LayerNorm

__all__ = ["EncoderConfig", "HookedEncoder"]

_ACT_FNS = {
    "gelu": F.gelu,  # HF "gelu" is the exact erf form
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


@dataclass(frozen=True)
class EncoderConfig:
    """Shape and numerics of a :class:`HookedEncoder` (TransformerLens field names).

    Attributes:
        n_layers: number of transformer blocks.
        d_model: residual stream width.
        n_heads: attention heads per block.
        d_head: width of one head's query/key/value.
        d_mlp: MLP hidden width.
        n_ctx: number of learned positions (longest input).
        d_vocab: vocabulary size.
        model_name: a name for manifests and error messages.
        device: device the parameters live on; kept current by ``.to()``.
        dtype: parameter dtype (a ``torch.dtype``; strings such as ``"float32"`` accepted).
        eps: LayerNorm epsilon (BERT: 1e-12).
        act_fn: MLP activation: ``gelu`` (exact erf), ``gelu_new``/``gelu_pytorch_tanh`` or ``relu``.
        pad_token_id: token id treated as padding when no attention mask is given;
            ``None`` means every position is attended.
        n_token_types: segment (token type) embeddings; BERT has 2.
        use_attn_result: compute per-head outputs at ``attn.hook_result`` (costs
            ``n_heads`` times the memory of ``hook_attn_out``).
        original_architecture: the HF architecture the weights came from.
    """

    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    d_mlp: int
    n_ctx: int = 512
    d_vocab: int = 30522
    model_name: str = "bert"
    device: str = "cpu"
    dtype: Any = torch.float32
    eps: float = 1e-12
    act_fn: str = "gelu"
    pad_token_id: int | None = 0
    n_token_types: int = 2
    use_attn_result: bool = False
    original_architecture: str = "BertModel"

    def __post_init__(self) -> None:
        if isinstance(self.dtype, str):
            object.__setattr__(self, "dtype", getattr(torch, self.dtype.removeprefix("torch."), None))
        if not isinstance(self.dtype, torch.dtype) or not self.dtype.is_floating_point:
            raise InputError(f"EncoderConfig.dtype must be a floating torch dtype, got {self.dtype!r}. "
                             "Use torch.float32.")
        for f in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "n_ctx", "d_vocab", "n_token_types"):
            if not isinstance(getattr(self, f), int) or getattr(self, f) < 1:
                raise InputError(f"EncoderConfig.{f} must be a positive int, got {getattr(self, f)!r}.")
        if self.act_fn not in _ACT_FNS:
            raise InputError(f"EncoderConfig.act_fn {self.act_fn!r} is not supported; use one of {sorted(_ACT_FNS)}.")
        object.__setattr__(self, "device", str(self.device))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (dtype as a string); :meth:`from_dict` inverts it."""
        return {**dataclasses.asdict(self), "dtype": str(self.dtype).removeprefix("torch.")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EncoderConfig:
        """Rebuild a config from :meth:`to_dict` output."""
        return cls(**d)


class Embed(nn.Module):
    """Token + absolute position + token-type embeddings, then LayerNorm (``W_E``, ``W_pos``, ``W_token_type``)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model, dtype=cfg.dtype))
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model, dtype=cfg.dtype))
        self.W_token_type = nn.Parameter(torch.empty(cfg.n_token_types, cfg.d_model, dtype=cfg.dtype))
        self.ln = LayerNorm(cfg)
        self.hook_embed = HookPoint()  # [batch, pos, d_model]
        self.hook_pos_embed = HookPoint()  # [batch, pos, d_model]
        self.hook_token_type_embed = HookPoint()  # [batch, pos, d_model]

    def forward(
        self, tokens: Int[Tensor, "batch pos"], token_type_ids: Int[Tensor, "batch pos"]
    ) -> Float[Tensor, "batch pos d_model"]:
        """Sum the three embeddings (positions are absolute, as in HF, padding included)."""
        pos = self.W_pos[: tokens.shape[1]].expand(tokens.shape[0], -1, -1)  # [batch, pos, d_model]
        x = self.hook_embed(self.W_E[tokens]) + self.hook_pos_embed(pos.clone())
        return self.ln(x + self.hook_token_type_embed(self.W_token_type[token_type_ids]))


class Attention(nn.Module):
    """Bidirectional multi-head attention with TL's weight layout (``W_Q [n_heads d_model d_head]``, …)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        h, m, d = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q, self.W_K, self.W_V = (nn.Parameter(torch.empty(h, m, d, dtype=cfg.dtype)) for _ in range(3))
        self.b_Q, self.b_K, self.b_V = (nn.Parameter(torch.zeros(h, d, dtype=cfg.dtype)) for _ in range(3))
        self.W_O = nn.Parameter(torch.empty(h, d, m, dtype=cfg.dtype))
        self.b_O = nn.Parameter(torch.zeros(m, dtype=cfg.dtype))
        for name in ("hook_q", "hook_k", "hook_v", "hook_z", "hook_attn_scores", "hook_pattern"):
            setattr(self, name, HookPoint())
        if cfg.use_attn_result:  # created only when it fires, so hook_dict never lists a dead point
            self.hook_result = HookPoint()  # [batch, pos, n_heads, d_model]

    def forward(
        self, x: Float[Tensor, "batch pos d_model"], additive_mask: Float[Tensor, "batch 1 1 pos"]
    ) -> Float[Tensor, "batch pos d_model"]:
        """Attend over all unmasked key positions; ``additive_mask`` is 0 or a large negative number."""
        q = self.hook_q(torch.einsum("bpm,hmd->bphd", x, self.W_Q) + self.b_Q)  # [batch, pos, head, d_head]
        k = self.hook_k(torch.einsum("bpm,hmd->bphd", x, self.W_K) + self.b_K)  # [batch, pos, head, d_head]
        v = self.hook_v(torch.einsum("bpm,hmd->bphd", x, self.W_V) + self.b_V)  # [batch, pos, head, d_head]
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.cfg.d_head)  # [batch, head, q, k]
        scores = self.hook_attn_scores(scores + additive_mask)
        pattern = self.hook_pattern(scores.softmax(dim=-1))  # [batch, head, q, k]
        z = self.hook_z(torch.einsum("bhqk,bkhd->bqhd", pattern, v))  # [batch, pos, head, d_head]
        if self.cfg.use_attn_result:
            result = self.hook_result(torch.einsum("bqhd,hdm->bqhm", z, self.W_O))  # [batch, pos, head, d_model]
            return result.sum(dim=-2) + self.b_O
        return torch.einsum("bqhd,hdm->bqm", z, self.W_O) + self.b_O  # [batch, pos, d_model]


class MLP(nn.Module):
    """Two-layer MLP ``W_out · act(W_in · x + b_in) + b_out``."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.act_fn = _ACT_FNS[cfg.act_fn]
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp, dtype=cfg.dtype))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp, dtype=cfg.dtype))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model, dtype=cfg.dtype))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model, dtype=cfg.dtype))
        self.hook_pre = HookPoint()  # [batch, pos, d_mlp]
        self.hook_post = HookPoint()  # [batch, pos, d_mlp]

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        """Apply the MLP position-wise."""
        pre = self.hook_pre(x @ self.W_in + self.b_in)  # [batch, pos, d_mlp]
        return self.hook_post(self.act_fn(pre)) @ self.W_out + self.b_out  # [batch, pos, d_model]


class BertBlock(nn.Module):
    """One post-LayerNorm BERT block (hook names as TL's ``BertBlock``)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.attn, self.ln1, self.mlp, self.ln2 = Attention(cfg), LayerNorm(cfg), MLP(cfg), LayerNorm(cfg)
        for name in ("resid_pre", "attn_out", "resid_mid", "normalized_resid_mid", "mlp_out", "resid_post",
                     "normalized_resid_post"):
            setattr(self, f"hook_{name}", HookPoint())  # each [batch, pos, d_model]

    def forward(
        self, resid_pre: Float[Tensor, "batch pos d_model"], additive_mask: Float[Tensor, "batch 1 1 pos"]
    ) -> Float[Tensor, "batch pos d_model"]:
        """Attention, add, LayerNorm, MLP, add, LayerNorm."""
        resid_pre = self.hook_resid_pre(resid_pre)
        resid_mid = self.hook_resid_mid(resid_pre + self.hook_attn_out(self.attn(resid_pre, additive_mask)))
        normalized_mid = self.hook_normalized_resid_mid(self.ln1(resid_mid))
        resid_post = self.hook_resid_post(normalized_mid + self.hook_mlp_out(self.mlp(normalized_mid)))
        return self.hook_normalized_resid_post(self.ln2(resid_post))


class HookedEncoder(HookedRootModule):
    """A BERT-family encoder with a :class:`HookPoint` on every activation (see the module docstring).

    Args:
        cfg: the architecture.
        tokenizer: the HF tokenizer that :meth:`prepare_inputs` uses for strings (kept as ``self.tokenizer``).

    Weights start BERT-initialised (normal, std 0.02); :func:`from_hf` loads real ones.
    """

    def __init__(self, cfg: EncoderConfig, tokenizer: Any = None):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.embed = Embed(cfg)
        self.hook_full_embed = HookPoint()  # [batch, pos, d_model]
        self.blocks = nn.ModuleList(BertBlock(cfg) for _ in range(cfg.n_layers))
        for p in self.parameters():
            if p.ndim > 1:
                nn.init.normal_(p, std=0.02)
        self.to(cfg.device)
        self.setup()

    def _apply(self, fn: Any, recurse: bool = True) -> HookedEncoder:
        # .to()/.cuda()/.half() all land here: keep cfg.device and cfg.dtype truthful.
        super()._apply(fn, recurse)
        w = self.embed.W_E
        if str(w.device) != self.cfg.device or w.dtype != self.cfg.dtype:
            self.cfg = dataclasses.replace(self.cfg, device=str(w.device), dtype=w.dtype)
        return self

    def prepare_inputs(
        self, inputs: Any, *, prepend_bos: bool = True, truncate: bool = True
    ) -> Int[Tensor, "batch pos"]:
        """Token ids ``[batch, pos]`` on the model's device from text or a token tensor.

        Args:
            inputs: a string, a list of strings (right-padded with ``cfg.pad_token_id``
                to the longest) or an integer tensor ``[batch, pos]``/``[pos]`` (validated).
            prepend_bos: for strings, wrap each in ``[CLS] … [SEP]`` (BERT's BOS/EOS);
                ``False`` adds no special tokens.
            truncate: cut strings longer than ``cfg.n_ctx`` tokens.
        """
        if isinstance(inputs, torch.Tensor):
            tokens = check_token_ids(inputs, self.cfg.d_vocab)
        elif isinstance(inputs, str) or (
            isinstance(inputs, Sequence) and inputs and all(isinstance(s, str) for s in inputs)
        ):
            if self.tokenizer is None:
                raise InputError(f"{self.cfg.model_name} has no tokenizer, so it cannot tokenize text. "
                                 "Pass token ids, or load the model with from_hf(<dir with tokenizer files>).")
            tokens = self.tokenizer([inputs] if isinstance(inputs, str) else list(inputs), padding=True,
                                    truncation=truncate, max_length=self.cfg.n_ctx if truncate else None,
                                    add_special_tokens=prepend_bos, return_tensors="pt")["input_ids"]
        else:
            raise InputError(f"{self.cfg.model_name} takes text or token ids, got {type(inputs).__name__}. "
                             "Pass a string, a non-empty list of strings or an integer tensor [batch, pos].")
        if tokens.shape[-1] > self.cfg.n_ctx:
            raise InputError(f"{self.cfg.model_name} takes at most n_ctx={self.cfg.n_ctx} positions, "
                             f"got {tokens.shape[-1]}. Truncate or split the input.")
        return tokens.to(self.cfg.device)

    def forward(
        self,
        tokens: Any,
        attention_mask: Tensor | None = None,
        stop_at_layer: int | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """Run the encoder.

        Args:
            tokens: token ids ``[batch, pos]`` (or text, passed through
                :meth:`prepare_inputs`). Annotated loosely on purpose: user input is
                validated here with errors that say the fix, not by the type checker.
            attention_mask: 1 for real tokens, 0 for padding. If ``None`` it is
                ``tokens != cfg.pad_token_id`` (all ones when ``pad_token_id`` is None);
                pass one explicitly if a real token shares the pad id.
            stop_at_layer: run blocks ``0 .. L-1`` only and return the residual stream
                entering block ``L`` (``0`` returns the embeddings; negative counts from the end).
            token_type_ids: segment ids; zeros (single segment) if ``None``.

        Returns:
            The final hidden state (HF ``last_hidden_state``) or, with ``stop_at_layer``,
            ``blocks.{L}.hook_resid_pre``: ``[batch, pos, d_model]``.
        """
        tokens = self.prepare_inputs(tokens)
        if attention_mask is None:
            pad = self.cfg.pad_token_id
            attention_mask = torch.ones_like(tokens) if pad is None else tokens != pad
        elif attention_mask.shape != tokens.shape:
            raise InputError(f"attention_mask must have the tokens' shape {tuple(tokens.shape)}, "
                             f"got {tuple(attention_mask.shape)}. Pass the mask the tokenizer returned.")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(tokens)
        n = self.cfg.n_layers
        stop = n if stop_at_layer is None else stop_at_layer
        if not -n <= stop <= n:
            raise InputError(f"stop_at_layer must lie in [{-n}, {n}] for {self.cfg.model_name}, got {stop_at_layer}.")
        stop = stop + n if stop < 0 else stop  # -1 -> n - 1, as in TransformerLens
        mask = attention_mask.to(device=tokens.device, dtype=torch.bool)[:, None, None, :]  # [batch, 1, 1, key_pos]
        additive_mask = torch.zeros(mask.shape, dtype=self.cfg.dtype, device=tokens.device)
        additive_mask.masked_fill_(~mask, torch.finfo(self.cfg.dtype).min)  # HF's eager convention
        resid = self.hook_full_embed(self.embed(tokens, token_type_ids.to(tokens.device)))
        for block in self.blocks[:stop]:
            resid = block(resid, additive_mask)
        return resid

    def run_with_cache(self, *args: Any, return_cache_object: bool = True, **kwargs: Any) -> tuple[Tensor, Any]:
        """Forward pass plus a cache of hook activations (``names_filter=``, ``stop_at_layer=``, …).

        Returns ``(output, ActivationCache)`` like TransformerLens (a plain dict
        with ``return_cache_object=False``). Set ``cache.model = None`` to let the
        model be freed while the cache lives.
        """
        out, cache = super().run_with_cache(*args, **kwargs)
        remove_batch_dim = kwargs.get("remove_batch_dim", False)
        return out, ActivationCache(cache, self, has_batch_dim=not remove_batch_dim) if return_cache_object else cache
