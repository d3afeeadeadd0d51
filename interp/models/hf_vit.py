"""Conversion of HF ``ViTModel`` and ``Dinov2Model`` weights into a :class:`HookedViT`.

Both families are pre-LN ViTs with a CLS token and learned position embeddings;
they differ only in where the weights live and in DINOv2's LayerScale, a
per-channel gain ``λ`` on each block's attention and MLP output. Since
``λ ⊙ (W x + b) = (diag(λ) W) x + λ ⊙ b``, LayerScale is folded into ``W_O`` /
``b_O`` and ``W_out`` / ``b_out`` exactly, and one block class serves both.

Position embeddings are resampled once, at conversion, to the requested image
size with the HF model's own ``interpolate_pos_encoding`` (bicubic over the
patch grid), so a model loaded at 112 px matches HF run at 112 px.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from interp.datasets.images import IMAGENET_MEAN, IMAGENET_STD
from interp.errors import InputError, InterpError
from interp.models.contract import ModelInfo
from interp.models.quiet import quiet_hf
from interp.models.vit import ACT_FNS, HookedViT, HookedViTConfig

__all__ = ["from_hf", "load_hf_vision_model", "hf_state_dict", "quiet_hf"]

#: Normalisation of each family when no ``preprocessor_config.json`` says otherwise.
_DEFAULT_NORM = {"vit": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), "dinov2": (IMAGENET_MEAN, IMAGENET_STD)}


def load_hf_vision_model(hf_model_or_dir: Any) -> tuple[Any, str, str, dict[str, Any]]:
    """Resolve a model or directory to ``(base_model, family, source, preprocessor_config)``.

    Accepts ``ViTModel``, ``ViTForImageClassification`` (its ``.vit``), ``Dinov2Model``,
    ``Dinov2ForImageClassification`` (its ``.dinov2``) or a directory saved from any of them.

    Raises:
        InputError: for a missing directory or another architecture.
    """
    from transformers import Dinov2Model, ViTModel

    preproc: dict[str, Any] = {}
    if isinstance(hf_model_or_dir, (str, Path)):
        path = Path(hf_model_or_dir).expanduser()
        if not (path / "config.json").is_file():
            raise InputError(
                f"{path} is not a saved HF model directory (no config.json). Pass a directory written by "
                "model.save_pretrained(dir), or the model object itself."
            )
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
        if (path / "preprocessor_config.json").is_file():
            preproc = json.loads((path / "preprocessor_config.json").read_text())
        if model_type == "vit":
            with quiet_hf():
                model: Any = ViTModel.from_pretrained(path, add_pooling_layer=False)
        elif model_type == "dinov2":
            with quiet_hf():
                model = Dinov2Model.from_pretrained(path)
        else:
            raise InputError(f"{path} holds a {model_type!r} model; HookedViT converts 'vit' and 'dinov2' models only.")
        source = str(path)
    else:
        model, source = hf_model_or_dir, f"in-memory {type(hf_model_or_dir).__name__}"
    model = getattr(model, "vit", None) or getattr(model, "dinov2", None) or model
    if isinstance(model, Dinov2Model):
        return model, "dinov2", source, preproc
    if isinstance(model, ViTModel):
        return model, "vit", source, preproc
    raise InputError(
        f"cannot convert a {type(model).__name__} to HookedViT; expected an HF ViTModel, "
        "ViTForImageClassification, Dinov2Model or Dinov2ForImageClassification (or a directory of one)."
    )


def _heads_in(w: Tensor, b: Tensor | None, n_heads: int) -> tuple[Tensor, Tensor]:
    """HF ``nn.Linear`` d_model -> heads into TL ``W`` [head d_model d_head] and ``b`` [head d_head]."""
    d_model = w.shape[1]
    W = w.reshape(n_heads, -1, d_model).transpose(1, 2)  # [head*d_head, d_model] -> [head, d_model, d_head]
    bias = b if b is not None else torch.zeros(w.shape[0], dtype=w.dtype)
    return W, bias.reshape(n_heads, -1)  # [head, d_head]


def _pos_embed(embeddings: Any, image_size: int, d_model: int) -> Float[Tensor, "pos d_model"]:
    """Position embeddings for ``image_size`` via the HF module's own ``interpolate_pos_encoding``."""
    grid = image_size // embeddings.patch_embeddings.patch_size[0]
    dummy = embeddings.position_embeddings.new_zeros(1, grid * grid + 1, d_model)  # [1, n_ctx, d_model]
    with torch.no_grad():
        return embeddings.interpolate_pos_encoding(dummy, image_size, image_size)[0]  # [n_ctx, d_model]


def hf_state_dict(hf: Any, family: str, cfg: HookedViTConfig) -> dict[str, Tensor]:
    """HookedViT state dict (float32) from an HF base model, LayerScale folded for DINOv2."""
    emb = hf.embeddings
    sd: dict[str, Tensor] = {
        "embed.W_E": emb.patch_embeddings.projection.weight,  # [d_model, channels, patch, patch]
        "embed.b_E": emb.patch_embeddings.projection.bias,
        "embed.cls_token": emb.cls_token[0, 0],  # [1, 1, d_model] -> [d_model]
        "pos_embed.W_pos": _pos_embed(emb, cfg.image_size, cfg.d_model),
        "ln_final.w": hf.layernorm.weight,
        "ln_final.b": hf.layernorm.bias,
    }
    layers = hf.encoder.layer if family == "dinov2" else hf.layers
    for i in range(cfg.n_layers):
        layer, p = layers[i], f"blocks.{i}."
        att = layer.attention
        ln1, ln2 = (layer.norm1, layer.norm2) if family == "dinov2" else (layer.layernorm_before, layer.layernorm_after)
        if family == "dinov2":
            lam1, lam2 = layer.layer_scale1.lambda1, layer.layer_scale2.lambda1  # [d_model] each
        else:
            lam1 = lam2 = torch.ones(cfg.d_model)
        for name, proj in (("Q", att.q_proj), ("K", att.k_proj), ("V", att.v_proj)):
            sd[p + f"attn.W_{name}"], sd[p + f"attn.b_{name}"] = _heads_in(proj.weight, proj.bias, cfg.n_heads)
        w_o = att.o_proj.weight * lam1[:, None]  # diag(λ1) W: [d_model, head*d_head]
        sd[p + "attn.W_O"] = w_o.T.reshape(cfg.n_heads, cfg.d_head, cfg.d_model)  # [head, d_head, d_model]
        sd[p + "attn.b_O"] = att.o_proj.bias * lam1
        sd[p + "mlp.W_in"] = layer.mlp.fc1.weight.T  # [d_mlp, d_model] -> [d_model, d_mlp]
        sd[p + "mlp.b_in"] = layer.mlp.fc1.bias
        sd[p + "mlp.W_out"] = (layer.mlp.fc2.weight * lam2[:, None]).T  # [d_model, d_mlp] -> [d_mlp, d_model]
        sd[p + "mlp.b_out"] = layer.mlp.fc2.bias * lam2
        sd[p + "ln1.w"], sd[p + "ln1.b"] = ln1.weight, ln1.bias
        sd[p + "ln2.w"], sd[p + "ln2.b"] = ln2.weight, ln2.bias
    return {k: v.detach().float().contiguous() for k, v in sd.items()}


def _config(
    hf: Any, family: str, n_layers: int, image_size: int, preproc: dict[str, Any], **kw: Any
) -> HookedViTConfig:
    """HookedViTConfig from an HF config (raises on settings HookedViT does not implement)."""
    c = hf.config
    if family == "dinov2" and getattr(c, "use_swiglu_ffn", False):
        raise InputError(
            "this Dinov2 checkpoint uses a SwiGLU MLP (use_swiglu_ffn=True, the giant variant); "
            "HookedViT implements the standard GELU MLP only. Use a dinov2-small/base/large checkpoint."
        )
    if c.hidden_act not in ACT_FNS:
        raise InputError(f"activation {c.hidden_act!r} of this {family} model is not one of {sorted(ACT_FNS)}.")
    d_mlp = int(c.hidden_size * c.mlp_ratio) if family == "dinov2" else c.intermediate_size
    patch = c.patch_size if isinstance(c.patch_size, int) else c.patch_size[0]
    mean, std = _DEFAULT_NORM[family]
    return HookedViTConfig(
        n_layers=n_layers,
        d_model=c.hidden_size,
        n_heads=c.num_attention_heads,
        d_head=c.hidden_size // c.num_attention_heads,
        d_mlp=d_mlp,
        image_size=image_size,
        patch_size=patch,
        num_channels=c.num_channels,
        eps=c.layer_norm_eps,
        act_fn=c.hidden_act,
        image_mean=tuple(preproc.get("image_mean", mean)),
        image_std=tuple(preproc.get("image_std", std)),
        family=family,  # type: ignore[arg-type]
        **kw,
    )


def from_hf(
    hf_model_or_dir: Any,
    *,
    n_layers: int | None = None,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    image_size: int | None = None,
    model_name: str | None = None,
) -> HookedViT:
    """Convert an HF ``ViTModel`` or ``Dinov2Model`` into a :class:`HookedViT`.

    Args:
        hf_model_or_dir: the HF model (``ViTModel``, ``ViTForImageClassification``,
            ``Dinov2Model``, ``Dinov2ForImageClassification``) or a directory saved from one;
            a directory's ``preprocessor_config.json`` gives the pixel mean and std.
        n_layers: keep only the first ``n_layers`` blocks (all when ``None``).
        dtype: parameter dtype (defaults to the HF model's).
        device: parameter device (defaults to the HF model's).
        image_size: input side in pixels, a multiple of the patch size; position embeddings
            are interpolated from the checkpoint's grid when it differs. Defaults to 224 for
            DINOv2 (whose configs say 518) and to the checkpoint's own size for ViT.
        model_name: name in messages and manifests (defaults to the checkpoint's name or family).

    Returns:
        A :class:`HookedViT` in eval mode whose final LayerNorm output equals the HF
        ``last_hidden_state`` (and ``blocks.{L}.hook_resid_post`` the HF ``hidden_states[L+1]``).

    Raises:
        InputError: for another architecture, an unsupported variant, a bad ``n_layers``
            or an ``image_size`` that is not a multiple of the patch size.
    """
    hf, family, source, preproc = load_hf_vision_model(hf_model_or_dir)
    total = hf.config.num_hidden_layers
    n_layers = total if n_layers is None else n_layers
    if not 1 <= n_layers <= total:
        raise InputError(f"n_layers={n_layers} but this {family} checkpoint has {total} layers. Use 1..{total}.")
    param = hf.embeddings.patch_embeddings.projection.weight
    name = model_name or getattr(hf.config, "name_or_path", "") or family
    if image_size is None:  # DINOv2 checkpoints say 518 px but are used at 224
        native = hf.config.image_size if isinstance(hf.config.image_size, int) else hf.config.image_size[0]
        image_size = 224 if family == "dinov2" else native
    cfg = _config(
        hf, family, n_layers, image_size, preproc,
        model_name=name, device="cpu", dtype=dtype or param.dtype,
    )  # fmt: skip
    state = hf_state_dict(hf, family, cfg)
    model = HookedViT(cfg, init_weights=False)  # every parameter is loaded below
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:  # a bug in the mapping, not a user error
        raise InterpError(f"HookedViT conversion mismatch: missing {missing}, unexpected {unexpected}.")
    model.to(device if device is not None else param.device).eval()
    model.interp_info = ModelInfo(
        name=name, family=family, kind="vit", source=source, n_layers=n_layers,
        dtype=str(model.cfg.dtype).removeprefix("torch."),
        extra={
            "image_size": cfg.image_size, "patch_size": cfg.patch_size, "hf_layers": total,
            "hf_class": type(hf).__name__, "layerscale_folded": family == "dinov2",
        },
    )  # fmt: skip
    return model
