"""Tasks: induction on token ids, templated text tasks on a real tokenizer, metrics and batching."""

from __future__ import annotations

import pytest
import torch

from circuits.tasks import (
    TASKS,
    AnswerMetric,
    ImageTask,
    NextTokenMetric,
    Task,
    induction_task,
    ioi_task,
    make_task,
    single_token_ids,
)
from interp.errors import InputError, UnknownNameError


def test_induction_task_repeats_and_masks():
    task = induction_task(n=20, seq_len=24, d_vocab=100, bos=7, min_repeat=3, max_repeat=10, seed=3)
    assert task.clean.shape == task.corrupt.shape == (20, 24)
    assert (task.clean[:, 0] == 7).all()
    reps = task.meta["repeat_lengths"]
    assert len(set(reps)) > 3 and min(reps) >= 3 and max(reps) <= 10
    m = task.metric
    for i, length in enumerate(reps):
        row = task.clean[i]
        # every masked position predicts a token that appeared `length` positions earlier
        for p in m.mask[i].nonzero()[:, 0].tolist():
            assert m.targets[i, p] == row[p + 1] == row[p + 1 - length]
        assert m.mask[i].sum() == 24 - 1 - length  # all positions whose next token is a repeat
        assert torch.equal(task.corrupt[i, : 1 + length], row[: 1 + length])
        assert len(set(row[1 : 1 + length].tolist())) == length  # the segment itself has no repeats
    assert (task.clean != task.corrupt).any(1).all()
    assert induction_task(n=2, seq_len=10, d_vocab=30, bos=None).clean.shape == (2, 10)
    with pytest.raises(InputError, match="model or d_vocab"):
        induction_task(n=2)
    with pytest.raises(InputError, match="min_repeat"):
        induction_task(n=2, seq_len=8, d_vocab=100, min_repeat=9)


def test_answer_metric_kinds():
    logits = torch.randn(3, 4, 10, generator=torch.Generator().manual_seed(0))
    correct = torch.tensor([[1, -1], [2, 3], [4, -1]])
    wrong = torch.tensor([[5], [6], [7]])
    pos = torch.tensor([-1, 2, 0])
    final = logits[torch.arange(3), torch.tensor([3, 2, 0])]
    good_mean = torch.stack([final[0, 1], final[1, 2:4].mean(), final[2, 4]])
    probs = final.softmax(-1)
    good_p = torch.stack([probs[0, 1], probs[1, 2] + probs[1, 3], probs[2, 4]])
    bad = final[torch.arange(3), wrong[:, 0]]
    m = AnswerMetric(correct, wrong, pos)
    torch.testing.assert_close(m(logits), good_mean - bad)
    torch.testing.assert_close(m.with_kind("prob")(logits), good_p)
    torch.testing.assert_close(m.with_kind("prob_diff")(logits), good_p - probs[torch.arange(3), wrong[:, 0]])
    torch.testing.assert_close(m.with_kind("logprob")(logits), good_p.log())
    best = torch.stack([final[0, 1], final[1, 2:4].max(), final[2, 4]])
    torch.testing.assert_close(m.with_kind("accuracy")(logits), (best >= bad).float())
    sub = m.select(torch.tensor([2, 0]))
    torch.testing.assert_close(sub(logits[[2, 0]]), m(logits)[[2, 0]])
    assert m.positions_mask(3, 4).nonzero().tolist() == [[0, 3], [1, 2], [2, 0]]
    with pytest.raises(InputError, match="wrong"):
        AnswerMetric(correct, None, pos)


def test_next_token_metric_and_task_batches():
    task = induction_task(n=5, seq_len=12, d_vocab=40, bos=None, seed=1)
    logits = torch.randn(5, 12, 40, generator=torch.Generator().manual_seed(2))
    m = task.metric
    lp = logits.log_softmax(-1).gather(-1, m.targets[..., None])[..., 0]
    expect = torch.stack([lp[i][m.mask[i]].mean() for i in range(5)])
    torch.testing.assert_close(m(logits), expect)
    torch.testing.assert_close(m.with_kind("loss")(logits), -expect)
    parts = list(task.batches(2))
    assert [len(p) for p in parts] == [2, 2, 1]
    torch.testing.assert_close(torch.cat([p.metric(logits[i * 2 : i * 2 + len(p)]) for i, p in enumerate(parts)]),
                               m(logits))  # fmt: skip
    assert torch.equal(task.swapped().clean, task.corrupt)
    with pytest.raises((InputError, TypeError)):  # shape checkers (jaxtyping under pytest) or our own check
        Task("bad", task.clean, task.corrupt[:, :5], task.metric)
    with pytest.raises(InputError, match="metric"):
        Task("bad", task.clean, task.corrupt, lambda x: x)
    with pytest.raises((InputError, TypeError)):
        NextTokenMetric(m.targets, m.mask[:, :3])
    img = ImageTask("img", torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4), lambda o: o[:, 1], readout=lambda o: o * 2)
    assert img.score(torch.ones(2, 3)).tolist() == [2.0, 2.0] and len(img) == 2


def test_text_tasks_need_a_tokenizer(attn_only_model):
    with pytest.raises(InputError, match="tokenizer"):
        ioi_task(attn_only_model)
    with pytest.raises(UnknownNameError, match="ioi"):
        make_task("iio", attn_only_model)


@pytest.fixture(scope="module")
def smol_tok_model():
    """A 1-layer random model carrying SmolLM2's real tokenizer (digits split, names mostly single tokens)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformers import AutoTokenizer

    from interp.models.smollm2 import smollm2_hf_dir

    tok = AutoTokenizer.from_pretrained(smollm2_hf_dir())
    cfg = HookedTransformerConfig(n_layers=1, d_model=16, n_ctx=64, d_head=8, n_heads=2, d_vocab=len(tok),
                                  attn_only=True, normalization_type="LN", seed=0, device="cpu")  # fmt: skip
    return HookedTransformer(cfg, tokenizer=tok).eval()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TASKS))
def test_text_tasks_on_a_real_tokenizer(smol_tok_model, name):
    model, tok = smol_tok_model, smol_tok_model.tokenizer
    task = make_task(name, model, n=12, seed=5)
    assert len(task) == 12 and task.clean.shape == task.corrupt.shape
    with torch.no_grad():
        vals = task.metric(model(task.clean))
    assert vals.shape == (12,) and torch.isfinite(vals).all()
    if name == "induction":
        assert (task.clean[:, 0] == tok.bos_token_id).all()
        return
    m = task.metric
    for i in range(12):
        end = int(m.position[i]) + 1
        clean, corrupt = tok.decode(task.clean[i, :end]), tok.decode(task.corrupt[i, :end])
        good = [tok.decode([t]) for t in m.correct[i] if t >= 0]
        bad = [tok.decode([t]) for t in m.wrong[i] if t >= 0]
        assert not set(good) & set(bad)
        if name == "ioi":  # the answer is the name said once; the corrupt prompt never says it
            assert clean.count(good[0]) == 1 and good[0] not in corrupt and clean.count(bad[0]) == 2
        elif name == "greater-than":  # SmolLM2 splits digits: the answer is the tens digit
            year = int(clean.split("year ")[1][:4])
            assert task.meta["two_digit_years"] is False and "01 to" in corrupt
            assert sorted(int(g) for g in good) == list(range(year % 100 // 10 + 1, 10))
        elif name == "docstring":
            assert clean.split(")")[0].endswith(good[0]) and good[0] not in corrupt
        else:
            letter = good[0].strip()
            option = clean.split(f"\n{letter}. ")[1].split("\n")[0]
            assert f"{letter}. {option}" not in corrupt
    assert single_token_ids(model, ["Mary", "zzqxjw"]) == {"Mary": tok.encode(" Mary", add_special_tokens=False)[0]}
