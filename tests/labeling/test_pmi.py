"""The PMI estimator: λ trades fit against specificity; compositions must earn their place."""

from __future__ import annotations

import math

import pytest
import torch

from interp.errors import InputError
from interp.labeling.candidates import atom
from interp.labeling.pmi import ALPHA, Grounder, rank
from interp.labeling.probe import probe_from_contexts

VOCAB = ["the", "cat", "dog", "a", "Zebra"]


def _probe():
    """1000 contexts of 10 tokens: mostly 'the'/'a'/'dog', 'cat' rare."""
    g = torch.Generator().manual_seed(0)
    ids = torch.multinomial(torch.tensor([0.5, 0.01, 0.29, 0.15, 0.05]), 10_000, replacement=True, generator=g)
    return probe_from_contexts(ids.reshape(1000, 10), VOCAB)


def test_lambda_prefers_the_specific_candidate():
    probe = _probe()
    cat = (probe.token == 1).nonzero().flatten()[:18]
    lower = ((probe.token == 0) | (probe.token == 2)).nonzero().flatten()[:2]
    rows = torch.cat([cat, lower]).sort().values  # E: 18 'cat' + 2 other lower-case words
    grounder = Grounder(probe)
    atoms = [atom("tok", 1, VOCAB), atom("class", "lowercase")]
    best = rank(grounder, atoms, rows, lam=0.2, n_compose=0)[0]
    assert best.candidate.key == "tok:1"
    best0 = rank(grounder, atoms, rows, lam=0.0, n_compose=0)[0]
    assert best0.candidate.key == "class:lowercase"  # fit alone: the frequent class covers every exemplar


def test_estimator_matches_the_documented_formula():
    probe = _probe()
    rows = (probe.token == 1).nonzero().flatten()[:10]
    g = Grounder(probe).ground([atom("tok", 1, VOCAB)], rows, lam=0.2)[0]
    c = int((probe.token == 1).sum())
    assert g.p_given_e == pytest.approx((10 + ALPHA) / (10 + 2 * ALPHA))
    assert g.p == pytest.approx((c + ALPHA) / (len(probe) + 2 * ALPHA))
    assert g.score == pytest.approx(math.log(g.p_given_e) - 0.2 * math.log(g.p))


def test_useless_compositions_are_dropped():
    probe = _probe()
    rows = (probe.token == 1).nonzero().flatten()[:20]
    ranked = rank(Grounder(probe), [atom("tok", 1, VOCAB), atom("class", "lowercase"), atom("pos", "pos>=16")], rows)
    keys = [g.candidate.key for g in ranked]
    assert keys[0] == "tok:1"
    assert "and(class:lowercase,tok:1)" not in keys  # 'cat' is always lower-case: the 'and' changes nothing


def test_lambda_is_validated():
    probe = _probe()
    with pytest.raises(InputError, match="lambda"):
        rank(Grounder(probe), [atom("tok", 1, VOCAB)], torch.tensor([0]), lam=2.0)
