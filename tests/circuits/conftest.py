"""Shared fixtures for the circuit-discovery tests: tiny seeded models and tasks built from configs."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from circuits.tasks import induction_task


def tiny(
    n_layers: int = 2,
    n_heads: int = 4,
    *,
    attn_only: bool = False,
    n_kv: int | None = None,
    norm: str | None = "LN",
    seed: int = 0,
    d_vocab: int = 50,
    qk_scale: float = 3.0,
) -> HookedTransformer:
    """A random-init model (d_model 32, d_head 8, n_ctx 32), seeded; float64 so exactness tests are tight."""
    cfg = HookedTransformerConfig(n_layers=n_layers, d_model=32, n_ctx=32, d_head=8, n_heads=n_heads, d_mlp=64,
                                  d_vocab=d_vocab, act_fn="gelu", normalization_type=norm, attn_only=attn_only,
                                  n_key_value_heads=n_kv, seed=seed, device="cpu", dtype=torch.float64,
                                  positional_embedding_type="rotary" if n_kv else "standard")  # fmt: skip
    model = HookedTransformer(cfg).eval()
    with torch.no_grad():  # larger weights than the default init, so heads matter and attention is not uniform
        for name, p in model.named_parameters():
            if name.endswith(("W_Q", "W_K")):
                p.mul_(qk_scale)
    return model


@pytest.fixture(scope="module")
def attn_only_model() -> HookedTransformer:
    return tiny(attn_only=True)


@pytest.fixture(scope="module")
def mlp_model() -> HookedTransformer:
    return tiny()


@pytest.fixture(scope="module")
def gqa_model() -> HookedTransformer:
    return tiny(n_heads=6, n_kv=2, norm="RMSPre", seed=1)


@pytest.fixture(scope="module")
def ind_task():
    return induction_task(n=6, seq_len=12, d_vocab=50, bos=None, seed=0)


@pytest.fixture(scope="session")
def make_tiny():
    """The :func:`tiny` factory (test modules cannot import conftest under importlib mode)."""
    return tiny


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models on a shared 2-core machine: intra-op threads only contend (100x slower ops); restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
