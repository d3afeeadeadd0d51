"""Tiny seeded models and data for the capture and store tests.

Also used as factories by subprocess tests (``--model tests/capture/tiny.py:tiny_model``),
so everything here is importable from a file path and builds in milliseconds.
"""

from __future__ import annotations

import os
import time

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from interp.capture import TokenSource


def tiny_model(seed: int = 0) -> HookedTransformer:
    """A 2-layer random-init HookedTransformer (d_model 64, vocab 500, n_ctx 32)."""
    cfg = HookedTransformerConfig(n_layers=2, d_model=64, n_ctx=32, d_head=16, n_heads=4, d_mlp=256, d_vocab=500,
                                  act_fn="gelu", normalization_type="LN", seed=seed, device="cpu")  # fmt: skip
    return HookedTransformer(cfg).eval()


def wide_model() -> HookedTransformer:
    """One wide, cheap layer: 16 KiB of fp32 residual per token, little compute (memory-budget test)."""
    cfg = HookedTransformerConfig(n_layers=1, d_model=4096, n_ctx=32, d_head=8, n_heads=1, d_mlp=8, d_vocab=64,
                                  act_fn="gelu", normalization_type="LN", seed=0, device="cpu")  # fmt: skip
    return HookedTransformer(cfg).eval()


def tokens(n: int = 96, ctx: int = 16, d_vocab: int = 500, seed: int = 0) -> torch.Tensor:
    """Seeded random token ids ``[n, ctx]``."""
    return torch.randint(0, d_vocab, (n, ctx), generator=torch.Generator().manual_seed(seed))


class _SlowTokens(TokenSource):
    """A TokenSource that sleeps before each batch (so a test can kill a capture mid-run)."""

    delay = 0.0

    def batches(self, batch_size):
        for b in super().batches(batch_size):
            time.sleep(self.delay)
            yield b


def token_source(model=None) -> TokenSource:
    """The standard test data: 96 contexts of 16 tokens with BOS; slow when $TINY_DELAY is set."""
    src = _SlowTokens(tokens(), name="tiny-tokens", bos=True)
    src.delay = float(os.environ.get("TINY_DELAY", "0"))
    return src


def wide_tokens(model=None) -> TokenSource:
    """Tokens for :func:`wide_model`: ``$WIDE_N`` contexts of 32."""
    return TokenSource(tokens(int(os.environ.get("WIDE_N", "640")), 32, 64), name="wide-tokens")
