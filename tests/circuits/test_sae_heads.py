"""SAE-code head identification, scored against the exact-patching truth of a shipped model."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from circuits.models import circuit_truth, induction_task, load_circuit_model
from circuits.sae_heads import HeadScores, SAEHeadConfig, head_codes, sae_code_heads, train_head_saes
from interp.errors import InputError

MODEL = "planted-4x8"


@pytest.fixture(scope="module")
def scored() -> tuple[HeadScores, dict]:
    model, _ = load_circuit_model(MODEL)
    truth = circuit_truth(MODEL)
    task = induction_task(MODEL, n=truth["task_n"], seed=truth["task_seed"]).select(slice(0, 32))
    return sae_code_heads(model, task), truth


def test_ranks_true_heads_first(scored):
    result, truth = scored
    scores = result.as_dict()
    y = [h in truth["circuit_nodes"] for h in scores]
    assert 0 < sum(y) < len(y)
    assert roc_auc_score(y, list(scores.values())) >= 0.85
    assert result.ranking()[0] in truth["circuit_nodes"]
    assert result.scores.shape == (4, 8) and ((0 <= result.scores) & (result.scores <= 1)).all()
    assert float(result.fvu.mean()) < 0.6  # the head SAEs reconstruct what they code


def test_codes_separate_planted_clusters():
    """On synthetic head outputs, only the head whose positives form a distinct cluster scores high."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 8, generator=g) * 4

    def draw(lo: int, hi: int) -> torch.Tensor:  # 200 rows near centres lo..hi-1
        return centres[torch.randint(lo, hi, (200,), generator=g)] + 0.1 * torch.randn(200, 8, generator=g)

    # head 0: positives use clusters {0, 1}, negatives {2, 3}; head 1: both draw from all four
    pos, neg = torch.stack([draw(0, 2), draw(0, 4)]), torch.stack([draw(2, 4), draw(0, 4)])
    cfg = SAEHeadConfig(d_sae=8, k=1, steps=300)
    params, fvu = train_head_saes(torch.cat([pos, neg], 1), cfg)
    codes = head_codes(torch.cat([pos, neg], 1), params, 1)[..., 0]  # [head, rows]
    p = [set(codes[h, :200].tolist()) for h in range(2)]
    n = [set(codes[h, 200:].tolist()) for h in range(2)]
    assert not p[0] & n[0]  # head 0: no code shared between positives and negatives
    assert len(p[1] & n[1]) >= 3
    assert float(fvu.max()) < 0.3


def test_config_is_validated():
    with pytest.raises(InputError, match="k"):
        SAEHeadConfig(d_sae=4, k=8)
    with pytest.raises(InputError, match="steps"):
        SAEHeadConfig(steps=0)
