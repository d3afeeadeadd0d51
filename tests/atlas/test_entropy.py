"""Entropy check: a neuron writing into W_U's null space changes entropy only through the final norm."""

from __future__ import annotations

import pytest
import torch

from interp.atlas.entropy import entropy, entropy_candidates, entropy_effects
from interp.atlas.weights import WeightConfig, weight_scores
from interp.errors import InputError

from .conftest import gated_model, plain_model


@pytest.mark.parametrize("factory", [gated_model, plain_model])
def test_a_planted_null_space_neuron_acts_only_through_the_final_norm(factory):
    model = factory(seed=2)
    g = torch.Generator().manual_seed(0)
    u = torch.randn(32, generator=g)
    u = u - u.mean()  # LayerNorm centres the residual: keep u a direction it passes
    u = u / u.norm()
    with torch.no_grad():
        model.unembed.W_U -= torch.outer(u, u @ model.unembed.W_U)  # u is now an exact null direction of W_U
        model.blocks[1].mlp.W_out[5] = 40 * u
        model.blocks[1].mlp.b_in[5] = 1.0 if factory is plain_model else 0.0
    table = weight_scores(model, layers=1, config=WeightConfig(null_k=1, frequency_corpus=None))
    assert entropy_candidates(table, 1, k=1) == [(1, 5)]
    tokens = torch.randint(0, model.cfg.d_vocab, (4, 12), generator=g)
    df = entropy_effects(model, tokens, [(1, 5)], n_random=4).set_index("neuron")
    assert df.loc[5, "direct_abs"] < 1e-4 and df.loc[5, "total_abs"] > 1e-3  # all of it through the norm
    rand = df[df.group == "random"]
    assert len(rand) == 4 and (rand.ratio.median() < 5) and df.loc[5, "ratio"] > 20


def test_entropy_and_errors():
    assert float(entropy(torch.zeros(4))) == pytest.approx(float(torch.log(torch.tensor(4.0))))
    with pytest.raises(InputError, match="pos >= 2"):
        entropy_effects(gated_model(), torch.zeros(1, 1, dtype=torch.long), [(1, 0)])
