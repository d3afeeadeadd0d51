"""Neuron decoding: a planted token neuron is found by search, tops the table, and its clamp promotes its token."""

from __future__ import annotations

import pytest
import torch

from interp.errors import InputError
from interp.interventions import run_with_interventions
from interp.steering.neurons import find_neurons, neuron_scores, neuron_table, token_id
from interp.steering.vectors import neuron_clamp


@pytest.fixture
def planted(model):
    """The tiny model with neuron 1:17 writing token 42's unembedding direction (norm 100)."""
    with torch.no_grad():
        col = model.W_U[:, 42]
        model.blocks[1].mlp.W_out[17] = col / col.norm() * 100
    return model


def test_search_by_token_finds_the_planted_neuron(planted):
    hits = find_neurons(planted, 42, k=3)
    assert (hits[0]["layer"], hits[0]["neuron"], hits[0]["rank"]) == (1, 17, 0)
    scores = neuron_scores(planted, 42)  # [n_layers, d_mlp]
    assert scores.shape == (2, 256)
    assert hits[0]["score"] == pytest.approx(float(scores.max()), rel=1e-5)
    assert find_neurons(planted, 42, layers=[0])[0]["layer"] == 0


def test_neuron_table_ranks_all_neurons(planted):
    table = neuron_table(planted, 1, k=5)
    assert len(table) == 256 and table[0]["neuron"] == 17 and table[0]["top"][0] == 42
    assert [r["top_logit"] for r in table] == sorted((r["top_logit"] for r in table), reverse=True)


def test_clamping_the_found_neuron_promotes_its_token(planted):
    toks = torch.tensor([[1, 2, 3, 4]])
    base = run_with_interventions(planted, toks)[0, -1].log_softmax(-1)[42]
    clamped = run_with_interventions(planted, toks, neuron_clamp(1, 17, 10.0))[0, -1].log_softmax(-1)[42]
    assert clamped > base + 1.0


def test_bad_tokens_and_layers(planted):
    with pytest.raises(InputError, match="out of range"):
        token_id(planted, 500)
    with pytest.raises(InputError, match="no tokenizer"):
        token_id(planted, "dog")
    with pytest.raises(InputError, match="layers \\[5\\] are out of range"):
        find_neurons(planted, 42, layers=[5])
