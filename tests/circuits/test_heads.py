"""Head detectors find hand-built heads; target masks follow their definitions."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from circuits.heads import ablate_heads, head_scores, target_mask, top_heads
from circuits.tasks import induction_task


def test_target_masks_on_a_repeat():
    toks = torch.tensor([[5, 6, 7, 5, 6, 7]])
    ind, dup, prev = (target_mask(toks, k)[0] for k in ("induction", "duplicate_token", "previous_token"))
    assert ind.nonzero().tolist() == [[3, 1], [4, 2], [5, 3]]  # query 5 (token 7) -> key after the earlier 7
    assert dup.nonzero().tolist() == [[3, 0], [4, 1], [5, 2]]
    assert prev.nonzero().tolist() == [[p, p - 1] for p in range(1, 6)]


def _previous_token_model() -> HookedTransformer:
    """One layer, two heads: head 0 built to attend to the previous position, head 1 random."""
    cfg = HookedTransformerConfig(n_layers=1, d_model=32, n_ctx=16, d_head=32, n_heads=2, d_vocab=20, attn_only=True,
                                  normalization_type=None, seed=0, device="cpu")  # fmt: skip
    model = HookedTransformer(cfg).eval()
    pos, _ = torch.linalg.qr(torch.randn(32, 16, generator=torch.Generator().manual_seed(0)))  # [d, 16] orthonormal
    with torch.no_grad():
        model.W_E.zero_()
        model.W_pos.copy_(pos.T)
        shift = sum(torch.outer(pos[:, p], pos[:, p - 1]) for p in range(1, 16))  # maps pos p to pos p-1
        model.blocks[0].attn.W_Q[0] = 60.0 * shift
        model.blocks[0].attn.W_K[0] = torch.eye(32)
        for b in ("b_Q", "b_K"):
            getattr(model.blocks[0].attn, b).zero_()
    return model


def test_detects_hand_built_previous_token_head():
    model = _previous_token_model()
    toks = torch.randint(0, 20, (4, 16), generator=torch.Generator().manual_seed(1))
    scores = head_scores(model, toks, ["previous_token", "induction", "duplicate_token"])
    prev = scores["previous_token"]
    assert prev.shape == (1, 2)
    assert prev[0, 0] > 0.95 and prev[0, 1] < 0.5
    assert top_heads(prev, 1) == [(0, 0)]
    assert scores["induction"][0, 0] < 0.5


def test_default_tokens_and_ablation(attn_only_model):
    scores = head_scores(attn_only_model, None, n=2, seq_len=21)
    assert scores.shape == (2, 4) and ((scores >= 0) & (scores <= 1)).all()
    task = induction_task(attn_only_model, n=4, seq_len=12, seed=0)
    base = ablate_heads(attn_only_model, task.clean, task.metric, [])
    with torch.no_grad():
        assert base == pytest.approx(float(task.metric(attn_only_model(task.clean)).mean()))
    assert ablate_heads(attn_only_model, task.clean, task.metric, [(1, 0), (1, 2)]) != pytest.approx(base)
    assert ablate_heads(attn_only_model, task.clean, task.metric, [(0, 1)], "mean") != pytest.approx(base)
