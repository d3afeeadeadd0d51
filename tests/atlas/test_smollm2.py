"""The atlas on the packaged SmolLM2: last-layer weight scores and the entropy-neuron signature (slow)."""

from __future__ import annotations

import pytest

import interp
from interp.atlas.entropy import entropy_candidates, entropy_effects
from interp.atlas.weights import WeightConfig, weight_scores
from interp.datasets.text import load_texts, pack_contexts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    return interp.load_model("smollm2-135m")


def test_last_layer_scores_and_entropy_signature(smollm2, tmp_path, monkeypatch):
    table = weight_scores(smollm2, layers=[29], config=WeightConfig(frequency_corpus=None))
    assert len(table) == 1536 and table.vocab_kurtosis.min() > 1 and table.null_frac.between(0, 1).all()
    assert set(table.io_class) <= {"enrichment", "depletion", "conditional enrichment", "conditional depletion",
                                   "orthogonal output"} and (table.io_class != "orthogonal output").any()  # fmt: skip
    top = table.nlargest(5, "vocab_kurtosis")
    assert (top.vocab_kurtosis > 20).all()  # prediction / suppression neurons exist in the last layer
    tokens = pack_contexts(load_texts("bible", "heldout"), smollm2, 32, max_tokens=128).tokens  # [4, 32]
    df = entropy_effects(smollm2, tokens, entropy_candidates(table, 29, k=2), n_random=3)
    cand, rand = df[df.group == "candidate"], df[df.group == "random"]
    # an entropy neuron moves entropy several times more than its direct logit effect; ordinary ones about 1x
    assert cand.ratio.max() > 2 and cand.ratio.max() > 1.5 * rand.ratio.max()
