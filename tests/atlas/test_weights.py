"""Weight scores: every column against a plain per-neuron reference, and planted neurons land in their class."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from interp.atlas.frequency import log_frequency, unigram_counts
from interp.atlas.weights import WeightConfig, io_class, null_space, weight_scores
from interp.errors import InputError

from .conftest import gated_model, plain_model

EXACT = WeightConfig(matmul_dtype="float32", frequency_corpus=None, null_k=4, k_tokens=5)


def _reference(model, layer: int, k: int) -> dict:
    """Per-neuron loop in float64 with numpy/scipy: what the table must say."""
    w_out = model.blocks[layer].mlp.W_out.detach().double().numpy()  # [d_mlp, d_model]
    w_u = model.W_U.detach().double().numpy()  # [d_model, d_vocab]
    u, _, _ = np.linalg.svd(w_u, full_matrices=False)
    null = u[:, -k:]  # [d_model, k]: smallest singular directions
    rows = []
    for w in w_out:
        x = w @ w_u
        rows.append((scipy.stats.kurtosis(x, fisher=False), scipy.stats.skew(x), x.std(), x.mean(),
                     np.sum((w @ null) ** 2) / np.sum(w**2), np.argsort(-x)[:5], np.argsort(x)[:5]))  # fmt: skip
    return {name: np.array([r[i] for r in rows]) for i, name in enumerate(
        ["kurt", "skew", "std", "mean", "null_frac", "top", "bottom"])}  # fmt: skip


@pytest.mark.parametrize("factory", [gated_model, plain_model])
def test_scores_match_a_per_neuron_reference(factory):
    model = factory()
    table = weight_scores(model, config=EXACT)
    assert len(table) == 2 * 64 and list(table.layer.unique()) == [0, 1]
    for layer in (0, 1):
        t, ref = table[table.layer == layer], _reference(model, layer, 4)
        np.testing.assert_allclose(t.vocab_kurtosis, ref["kurt"], rtol=1e-4)
        np.testing.assert_allclose(t.vocab_skew, ref["skew"], rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(t.vocab_std, ref["std"], rtol=1e-5)
        np.testing.assert_allclose(t.vocab_mean, ref["mean"], atol=1e-5)
        np.testing.assert_allclose(t.null_frac, ref["null_frac"], rtol=1e-4, atol=1e-6)
        assert (np.stack(t.top_tokens) == ref["top"]).mean() > 0.99  # ids: the tiny model has no tokenizer
        assert (np.stack(t.bottom_tokens) == ref["bottom"]).mean() > 0.99
        w_in = model.blocks[layer].mlp.W_in.detach()
        w_out = model.blocks[layer].mlp.W_out.detach()
        np.testing.assert_allclose(t.cos_in_out, torch.cosine_similarity(w_in.T, w_out, dim=1), atol=1e-5)
    assert ("cos_gate_in" in table) == (factory is gated_model)


def test_bfloat16_products_agree_with_float32(gated):
    fast = weight_scores(gated, config=WeightConfig(frequency_corpus=None, null_k=4))
    exact = weight_scores(gated, config=EXACT)
    np.testing.assert_allclose(fast.vocab_kurtosis, exact.vocab_kurtosis, rtol=0.03)
    np.testing.assert_allclose(fast.vocab_skew, exact.vocab_skew, atol=0.05)
    np.testing.assert_allclose(fast.vocab_std, exact.vocab_std, rtol=1e-5)  # exact path: from W_U W_Uᵀ


def test_planted_neurons_get_their_class_and_null_fraction():
    model = gated_model(seed=1)
    mlp = model.blocks[1].mlp
    null, _ = null_space(model.W_U.detach(), 2)
    g = torch.Generator().manual_seed(3)
    d = torch.randn(32, generator=g)
    other = torch.randn(32, generator=g)
    with torch.no_grad():
        mlp.W_gate[:, 0], mlp.W_in[:, 0], mlp.W_out[0] = d, d, d  # reads d, writes d
        mlp.W_gate[:, 1], mlp.W_in[:, 1], mlp.W_out[1] = d, d, -d  # reads d, removes d
        mlp.W_gate[:, 2], mlp.W_in[:, 2], mlp.W_out[2] = other, d, -d  # gate elsewhere: conditional
        mlp.W_out[3] = null[0] * 50  # writes only into W_U's null space
    t = weight_scores(model, layers=1, config=WeightConfig(frequency_corpus=None, null_k=2)).set_index("neuron")
    assert list(t.io_class[:3]) == ["enrichment", "depletion", "conditional depletion"]
    assert t.null_frac[3] == pytest.approx(1.0, abs=1e-4) and t.null_norm[3] == pytest.approx(50, rel=1e-4)
    assert t.null_frac.drop(3).max() < 0.9


def test_io_class_without_gate_uses_in_out_cosine():
    assert io_class(None, None, torch.tensor([0.5, -0.5, 0.1]), 0.3) == ["enrichment", "depletion",
                                                                         "orthogonal output"]  # fmt: skip


def test_frequency_cosine_is_the_vocab_space_correlation(tmp_path, smol_tokenizer, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("In the beginning God created the heavens and the earth.\n\nAnd the earth was void.\n")
    counts = unigram_counts(smol_tokenizer, str(corpus), "all")
    the = smol_tokenizer.encode(" the", add_special_tokens=False)[0]
    ids = smol_tokenizer(["In the beginning God created the heavens and the earth.", "And the earth was void."],
                         add_special_tokens=False)["input_ids"]  # fmt: skip
    assert counts[the] == 4 and counts.sum() == len(ids[0]) + len(ids[1]) and len(counts) == len(smol_tokenizer)
    assert list((tmp_path / "cache" / "atlas").glob("unigram-*.pt"))  # cached for the next run
    model = gated_model(d_vocab=len(smol_tokenizer))
    model.set_tokenizer(smol_tokenizer)
    t = weight_scores(model, layers=0, config=WeightConfig(frequency_corpus=str(corpus), matmul_dtype="float32"))
    f = log_frequency(counts).double().numpy()
    x = model.blocks[0].mlp.W_out.detach().double().numpy() @ model.W_U.detach().double().numpy()
    ref = [np.corrcoef(row, f)[0, 1] for row in x[:8]]
    np.testing.assert_allclose(t.freq_cos[:8], ref, atol=1e-5)
    assert isinstance(t.top_tokens[0][0], str)


def test_bad_input_is_named():
    with pytest.raises(InputError, match="out of range"):
        weight_scores(gated_model(), layers=[5], config=EXACT)
    with pytest.raises(InputError, match="null_k"):
        null_space(torch.randn(8, 20), 8)
    with pytest.raises(InputError, match="matmul_dtype"):
        WeightConfig(matmul_dtype="int8")
