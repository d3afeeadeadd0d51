"""Direct logit attribution sums to the logit difference; the logit lens ends at the model's output."""

from __future__ import annotations

import pytest
import torch

from circuits.logit import direct_logit_attribution, logit_lens
from circuits.tasks import AnswerMetric, Task
from interp.errors import InputError
from interp.interventions import Ablate, intervene


def _answer_task(ind_task, wrong=True):
    n = len(ind_task)
    g = torch.Generator().manual_seed(1)
    correct = torch.randint(0, 50, (n, 2), generator=g)
    correct[0, 1] = -1  # a ragged set
    bad = torch.randint(0, 50, (n, 3), generator=g) if wrong else None
    pos = torch.randint(3, ind_task.clean.shape[1], (n,), generator=g)
    metric = AnswerMetric(correct, bad, pos, "logit_diff" if wrong else "prob")
    return Task("answers", ind_task.clean, ind_task.corrupt, metric)


@pytest.mark.parametrize("norm", ["LN", "LNPre", "RMS", None])
def test_dla_sums_to_logit_difference(make_tiny, ind_task, norm):
    model = make_tiny(norm=norm, seed=2)
    task = _answer_task(ind_task)
    dla = direct_logit_attribution(model, task)
    with torch.no_grad():
        actual = task.metric(model(task.clean))
    assert dla.total == pytest.approx(float(actual.mean()), abs=1e-9)
    torch.testing.assert_close(dla.per_example.sum(0).double(), actual.double(), atol=1e-6, rtol=0)
    assert dla.by_head.shape == (2, 4) and dla.by_mlp.shape == (2,)
    assert float(dla.by_layer.sum()) + dla.node("input") + dla.bias == pytest.approx(dla.total, abs=1e-5)


def test_dla_of_last_layer_head_is_its_ablation_effect_without_norm(make_tiny, ind_task):
    model = make_tiny(norm=None, seed=4, attn_only=True)
    task = _answer_task(ind_task)
    dla = direct_logit_attribution(model, task)
    with torch.no_grad():
        base = float(task.metric(model(task.clean)).mean())
        for h in range(4):
            with intervene(model, Ablate("blocks.1.attn.hook_z", heads=[h])):
                drop = base - float(task.metric(model(task.clean)).mean())
            assert dla.node(f"a1.h{h}") == pytest.approx(drop, abs=1e-9)
            assert dla.by_head[1, h] == pytest.approx(drop, abs=1e-6)
    assert dla.by_head.abs().max() > 1e-3


def test_dla_needs_answers_and_gqa_works(gqa_model, ind_task):
    with pytest.raises(InputError, match="AnswerMetric"):
        direct_logit_attribution(gqa_model, ind_task)
    task = _answer_task(ind_task, wrong=False)
    dla = direct_logit_attribution(gqa_model, task)
    with torch.no_grad():
        final = task.metric.final_logits(gqa_model(task.clean))  # [batch, vocab]
    ids = task.metric.correct
    mean_correct = (final.gather(1, ids.clamp(min=0)) * (ids >= 0)).sum(1) / (ids >= 0).sum(1)
    assert dla.total == pytest.approx(float(mean_correct.mean()), abs=1e-9)
    assert dla.by_head.shape == (2, 6)


def test_logit_lens_ends_at_output(mlp_model, ind_task):
    lens = logit_lens(mlp_model, ind_task)
    assert lens.shape == (3,)
    with torch.no_grad():
        out = float(ind_task.metric(mlp_model(ind_task.clean)).mean())
    assert float(lens[-1]) == pytest.approx(out, abs=1e-6)
    assert float(lens[0]) != pytest.approx(out, abs=1e-3)
