"""Fixtures for the SAE training tests: a tiny seeded LM and stores captured from it."""

from __future__ import annotations

import pytest
import torch

HOOK = "blocks.1.hook_resid_post"
HOOK_Z = "blocks.0.attn.hook_z"


@pytest.fixture(scope="session")
def tiny_model():
    """A 2-layer random-init HookedTransformer (d_model 64, 4 heads of 16)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    torch.manual_seed(0)
    cfg = HookedTransformerConfig(n_layers=2, d_model=64, n_ctx=32, d_head=16, n_heads=4, d_mlp=256, d_vocab=500,
                                  act_fn="gelu", normalization_type="LN", device="cpu", seed=0)  # fmt: skip
    return HookedTransformer(cfg).eval()


@pytest.fixture(scope="session")
def tiny_store(tiny_model, tmp_path_factory):
    """6,400 tokens of the residual stream after block 1 and of block 0's hook_z."""
    from interp.capture import capture_to_store

    tokens = torch.randint(0, 500, (200, 32), generator=torch.Generator().manual_seed(1))
    out = tmp_path_factory.mktemp("sae") / "store"
    return capture_to_store(tiny_model, tokens, [HOOK, HOOK_Z], out, positions="all", progress=False)


@pytest.fixture(scope="session")
def heldout_tokens():
    """Held-out token contexts for the splice evaluation."""
    return torch.randint(0, 500, (16, 32), generator=torch.Generator().manual_seed(2))
