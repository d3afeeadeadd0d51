"""Fixtures of the atlas tests: tiny seeded gated and plain models, SmolLM2's tokenizer."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig


def gated_model(seed: int = 0, d_vocab: int = 500) -> HookedTransformer:
    """A 2-layer SwiGLU HookedTransformer with RMSNorm (SmolLM2's MLP shape, tiny)."""
    cfg = HookedTransformerConfig(n_layers=2, d_model=32, n_ctx=32, d_head=8, n_heads=4, d_mlp=64, d_vocab=d_vocab,
                                  act_fn="silu", gated_mlp=True, normalization_type="RMS", seed=seed,
                                  device="cpu")  # fmt: skip
    return HookedTransformer(cfg).eval()


def plain_model(seed: int = 0) -> HookedTransformer:
    """A 2-layer GELU HookedTransformer with LayerNorm (no gate)."""
    cfg = HookedTransformerConfig(n_layers=2, d_model=32, n_ctx=32, d_head=8, n_heads=4, d_mlp=64, d_vocab=300,
                                  act_fn="gelu", normalization_type="LN", seed=seed, device="cpu")  # fmt: skip
    return HookedTransformer(cfg).eval()


@pytest.fixture(scope="module")
def gated():
    return gated_model()


@pytest.fixture(scope="module")
def smol_tokenizer():
    from transformers import AutoTokenizer

    from interp.models.smollm2 import smollm2_hf_dir

    return AutoTokenizer.from_pretrained(smollm2_hf_dir(), local_files_only=True)


@pytest.fixture
def seeded():
    return torch.Generator().manual_seed(0)
