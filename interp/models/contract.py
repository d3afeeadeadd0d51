"""The one model contract that everything downstream relies on.

Whatever class a registry model is — TransformerLens's ``HookedTransformer`` for
decoder LMs (SAELens needs that class), or this project's
:class:`~interp.models.encoder.HookedEncoder` and
:class:`~interp.models.vit.HookedViT` for encoders and vision transformers — the
capture, store, SAE, labeling, circuit and steering code touches it only through:

``model.hook_dict``
    ``dict[str, HookPoint]`` addressed by TransformerLens hook names
    (``blocks.{L}.hook_resid_pre``, ``blocks.{L}.attn.hook_z``,
    ``blocks.{L}.attn.hook_pattern``, ``blocks.{L}.mlp.hook_post``, …).
``model.run_with_cache(inputs, names_filter=..., stop_at_layer=...)``
    Forward pass returning ``(output, ActivationCache)``.
``model.hooks(fwd_hooks=[(name, fn), ...])``
    A context manager that adds hooks and always removes them.
``model(inputs, stop_at_layer=L)``
    Runs blocks ``0 .. L-1`` only and returns the residual stream there.
``prepare_inputs(model, inputs)``
    Strings become token ids (BOS handled by the model's tokenizer conventions),
    images become normalised pixels; tensors are validated and passed through.
``model.cfg``
    Has at least ``n_layers, d_model, n_heads, d_head, d_mlp, n_ctx, d_vocab,
    model_name, device, dtype``.
``model_info(model)``
    The :class:`ModelInfo` the registry recorded: registry name, family, kind,
    source and the weight processing applied (which goes into store manifests
    and SAE configs as ``model_from_pretrained_kwargs``).

Keeping the contract this small is what lets one capture loop serve a 135M
Llama, a BERT encoder and a DINOv2 ViT alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import torch

from interp.errors import InputError, InterpError, UnknownNameError

__all__ = [
    "ModelInfo",
    "HookedModel",
    "model_info",
    "prepare_inputs",
    "check_hook_names",
    "check_token_ids",
    "check_finite",
    "COEFFICIENT_FIX",
    "layer_of_hook",
    "CONTRACT_ATTRS",
]

ModelKind = Literal["decoder", "encoder", "vit"]

#: ``cfg`` attributes every registry model provides.
CONTRACT_ATTRS = ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "n_ctx", "d_vocab", "model_name")


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a loaded model; recorded in every manifest.

    Attributes:
        name: registry name or hub name or local path the user asked for.
        family: architecture family (``gpt2``, ``llama``, ``bert``, ``vit``, ``dinov2``, …).
        kind: ``decoder`` (causal LM with logits), ``encoder`` (text encoder,
            activations only) or ``vit`` (vision transformer, pixels in).
        source: where the weights came from (package file, directory or hub id).
        processing: TransformerLens weight processing applied, as keyword
            arguments (``fold_ln``, ``center_writing_weights``, …); empty when none.
        n_layers: layers actually loaded (smaller than the checkpoint's when truncated).
        dtype: parameter dtype as a string (``float32``).
        extra: family-specific facts (image size, patch size, BOS token, …).
    """

    name: str
    family: str
    kind: ModelKind
    source: str
    processing: dict[str, Any] = field(default_factory=dict)
    n_layers: int = 0
    dtype: str = "float32"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, as written into manifests and run directories."""
        return asdict(self)


@runtime_checkable
class HookedModel(Protocol):
    """Structural type of every registry model (see the module docstring)."""

    cfg: Any
    hook_dict: dict[str, Any]

    def run_with_cache(self, *args: Any, **kwargs: Any) -> Any: ...

    def hooks(self, *args: Any, **kwargs: Any) -> Any: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


def model_info(model: Any) -> ModelInfo:
    """Return the :class:`ModelInfo` the registry attached to ``model``.

    Models built outside the registry get one inferred from their config.
    """
    info = getattr(model, "interp_info", None)
    if isinstance(info, ModelInfo):
        return info
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        raise InterpError(
            f"{type(model).__name__} is not a hooked model: it has no .cfg. "
            "Load models with interp.load_model(name) or pass a HookedTransformer."
        )
    return ModelInfo(
        name=str(getattr(cfg, "model_name", type(model).__name__)),
        family=str(getattr(cfg, "original_architecture", None) or "unknown"),
        kind="decoder" if hasattr(model, "to_tokens") and hasattr(model, "unembed") else "encoder",
        source="in-memory",
        n_layers=int(cfg.n_layers),
        dtype=str(getattr(cfg, "dtype", torch.float32)).removeprefix("torch."),
    )


def prepare_inputs(model: Any, inputs: Any, **kwargs: Any) -> torch.Tensor:
    """Turn user inputs into the tensor ``model`` takes.

    Args:
        model: a registry model.
        inputs: for language models a string, a list of strings or an integer
            tensor of token ids ``[batch, pos]``; for ViTs a PIL image, a list of
            images, an array ``[H, W, C]``/``[batch, H, W, C]`` or a float tensor
            ``[batch, 3, H, W]`` already normalised.
        **kwargs: passed to the model's own preparation (e.g. ``prepend_bos``).

    Returns:
        ``Int[Tensor, "batch pos"]`` token ids or ``Float[Tensor, "batch 3 H W"]`` pixels,
        on the model's device.
    """
    own = getattr(model, "prepare_inputs", None)
    if callable(own):
        return own(inputs, **kwargs)
    if hasattr(model, "to_tokens"):  # HookedTransformer
        if isinstance(inputs, torch.Tensor):
            return check_token_ids(inputs, model.cfg.d_vocab).to(model.cfg.device)
        if isinstance(inputs, str) or (
            isinstance(inputs, Sequence) and all(isinstance(s, str) for s in inputs)
        ):
            return model.to_tokens(inputs, **kwargs)
        raise InputError(
            f"{model.cfg.model_name} takes text or token ids, got {type(inputs).__name__}. "
            "Pass a string, a list of strings or an integer tensor [batch, pos]."
        )
    raise InterpError(f"{type(model).__name__} has no input preparation; it does not follow the model contract.")


def check_token_ids(tokens: torch.Tensor, d_vocab: int) -> torch.Tensor:
    """Validate an integer token tensor ``[batch, pos]`` against a vocabulary size."""
    if tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise InputError(f"token ids must be an integer tensor, got dtype {tokens.dtype}. Use tokens.long().")
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2:
        raise InputError(f"token ids must have shape [batch, pos], got {tuple(tokens.shape)}.")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= d_vocab):
        raise InputError(
            f"token ids must lie in [0, {d_vocab}), found range "
            f"[{int(tokens.min())}, {int(tokens.max())}]. Tokenize with this model's tokenizer."
        )
    return tokens.long()


#: What a steering edit's NaN/Inf means and how to fix it.
COEFFICIENT_FIX = "The coefficient is too large for this activation's dtype; use a smaller scale."


def check_finite(x: torch.Tensor, what: str, fix: str = "Check the input data or its normalisation.") -> torch.Tensor:
    """Return ``x``, or raise :class:`InputError` naming ``what`` and ``fix`` if it holds NaN or Inf."""
    if x.is_floating_point() and not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise InputError(f"{what} is non-finite: {bad} NaN/Inf values of {x.numel()}. {fix}")
    return x


def check_hook_names(model: Any, names: Sequence[str]) -> list[str]:
    """Return ``names`` if all are hook points of ``model``; else raise with nearest matches."""
    known = model.hook_dict.keys()
    for n in names:
        if n not in model.hook_dict:
            raise UnknownNameError(
                "hook name",
                n,
                known,
                fix=f"List them with sorted(model.hook_dict) ({len(known)} hook points on "
                f"{getattr(model.cfg, 'model_name', type(model).__name__)}).",
            )
    return list(names)


def layer_of_hook(name: str) -> int | None:
    """Block index of a hook name (``blocks.3.attn.hook_z`` -> 3); ``None`` outside blocks."""
    parts = name.split(".")
    if len(parts) > 1 and parts[0] == "blocks" and parts[1].isdigit():
        return int(parts[1])
    return None


