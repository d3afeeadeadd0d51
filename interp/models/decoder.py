"""Decoder language models as TransformerLens ``HookedTransformer``s.

SAELens trains on ``HookedTransformer`` only, so every causal LM the registry
serves — the packaged SmolLM2, local Hugging Face directories of the GPT-2 and
Llama families, and hub names — ends up as one. TransformerLens's
``from_pretrained`` accepts only official hub names; for local directories this
module performs the same steps (config from the directory, state dict converted
from an in-memory HF model, weight processing) so that both routes give the same
model.

Weight processing is chosen once per family (:func:`default_processing`) and
recorded in the model's :class:`~interp.models.contract.ModelInfo`; it is what
SAELens calls ``model_from_pretrained_kwargs``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from interp.errors import InputError, OfflineError
from interp.models.quiet import quiet_hf, quiet_transformer_lens

__all__ = [
    "default_processing",
    "load_hooked_transformer_from_dir",
    "load_hooked_transformer_from_hub",
    "hf_architecture",
    "resolve_dtype",
]

# RMSNorm is not invariant to a shift of its input, so centring the weights that
# write to the residual stream would change the function: keep it off there.
_PROCESSING_LN = {
    "fold_ln": True,
    "center_writing_weights": True,
    "center_unembed": True,
    "fold_value_biases": True,
    "refactor_factored_attn_matrices": False,
}
_PROCESSING_RMS = {**_PROCESSING_LN, "center_writing_weights": False}


def default_processing(normalization_type: str | None) -> dict[str, bool]:
    """TransformerLens weight processing used for a model with this normalisation."""
    return dict(_PROCESSING_RMS if normalization_type and "RMS" in normalization_type else _PROCESSING_LN)


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """``"float32"``/``"bfloat16"``/``"float16"``/``torch.dtype``/``None`` -> ``torch.dtype``."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16, "half": torch.float16}
    if dtype not in table:
        raise InputError(f"unknown dtype {dtype!r}; expected one of {sorted(table)}.")
    return table[dtype]


def hf_architecture(path: Path) -> tuple[str, str]:
    """``(model_type, architecture)`` from a Hugging Face directory's ``config.json``."""
    cfg_file = Path(path) / "config.json"
    if not cfg_file.is_file():
        raise InputError(
            f"{path} is not a Hugging Face model directory: no config.json. "
            "Pass a directory written by save_pretrained (config.json + weights)."
        )
    cfg = json.loads(cfg_file.read_text())
    archs = cfg.get("architectures") or [""]
    return str(cfg.get("model_type", "")), str(archs[0])


@contextlib.contextmanager
def _neutral_path(path: Path):
    """Yield a path to ``path`` whose text TransformerLens cannot misread.

    TransformerLens 3.9 picks a config branch from words in the model *name*
    ("llama", "gemma", …) before reading ``config.json``, so a local directory
    such as ``~/models/llama-tiny`` would get a config built without its file.
    A symlink with a neutral name in a fresh temporary directory avoids that.
    """
    with tempfile.TemporaryDirectory(prefix="interp-tl-") as tmp:
        link = Path(tmp) / "model"
        link.symlink_to(path.resolve(), target_is_directory=True)
        yield str(link)


def load_hooked_transformer_from_dir(
    path: str | Path,
    *,
    n_layers: int | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | None = None,
    processing: dict[str, bool] | None = None,
    hf_model: Any = None,
    tokenizer: Any = None,
) -> tuple[Any, dict[str, bool]]:
    """Build a ``HookedTransformer`` from a local Hugging Face causal-LM directory.

    Args:
        path: directory with ``config.json``, weights and tokenizer files.
        n_layers: keep only the first ``n_layers`` blocks (fast tests, early layers).
        dtype: parameter dtype.
        device: ``"cpu"``, ``"cuda"``, …; default CPU.
        processing: TransformerLens weight processing; default from
            :func:`default_processing` for the model's normalisation.
        hf_model: an already loaded HF model for ``path`` (saves a second load).
        tokenizer: an already loaded tokenizer (default: ``AutoTokenizer`` on ``path``).

    Returns:
        ``(model, processing)``: the model and the processing actually applied.
    """
    from transformer_lens import HookedTransformer, loading
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    torch_dtype = resolve_dtype(dtype)
    device = device or "cpu"
    if hf_model is None:
        with quiet_hf():
            hf_model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(path)
    with quiet_transformer_lens(), _neutral_path(path) as tl_path:
        probe = loading.get_pretrained_model_config(tl_path)
        if n_layers is not None and n_layers > probe.n_layers:
            raise InputError(
                f"{path.name} has {probe.n_layers} layers; n_layers must be in [1, {probe.n_layers}], "
                f"got {n_layers}. Omit n_layers to load the whole model."
            )
        proc = dict(processing) if processing is not None else default_processing(probe.normalization_type)
        cfg = loading.get_pretrained_model_config(
            tl_path,
            hf_cfg=hf_model.config.to_dict(),
            fold_ln=proc["fold_ln"],
            device=device,
            dtype=torch_dtype,
            first_n_layers=n_layers,
        )
        cfg.model_name = path.name
        state_dict = loading.get_pretrained_state_dict(tl_path, cfg, hf_model, dtype=torch_dtype)
        model = HookedTransformer(cfg, tokenizer, move_to_device=False)
        model.load_and_process_state_dict(state_dict, **proc)
        model.to(device)
    model.eval()
    return model, proc


def load_hooked_transformer_from_hub(
    name: str,
    *,
    n_layers: int | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | None = None,
) -> tuple[Any, dict[str, bool]]:
    """Load a hub model with TransformerLens's own ``from_pretrained`` (needs a hub).

    Raises:
        OfflineError: when no hub is reachable, with the local-directory route.
    """
    ensure_online(name)
    from transformer_lens import HookedTransformer, loading

    with quiet_transformer_lens():
        probe = loading.get_pretrained_model_config(name, first_n_layers=n_layers)
        proc = default_processing(probe.normalization_type)
        model = HookedTransformer.from_pretrained(
            name, first_n_layers=n_layers, dtype=resolve_dtype(dtype), device=device or "cpu", **proc
        )
    model.eval()
    return model, proc


def ensure_online(name: str) -> None:
    """Raise :class:`OfflineError` for hub name ``name`` if the hub cannot be reached."""
    fix = (
        f"Where you have network, run `huggingface-cli download {name} --local-dir DIR`, copy DIR here "
        f"and call interp.load_model('DIR'); or pick an offline model from `interp models`."
    )
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        raise OfflineError(f"{name!r} is a hub name, but HF_HUB_OFFLINE is set so no hub is reached. {fix}")
    import socket

    try:
        socket.getaddrinfo("huggingface.co", 443)
    except OSError as exc:
        raise OfflineError(f"{name!r} is a hub name, but huggingface.co cannot be reached ({exc}). {fix}") from exc
