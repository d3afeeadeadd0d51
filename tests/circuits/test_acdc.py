"""ACDC-style pruning: keeps everything at tau=0, prunes dead heads, respects its own threshold."""

from __future__ import annotations

import pytest
import torch

from circuits.acdc import acdc
from circuits.graph import Graph
from circuits.result import faithfulness
from interp.errors import InputError


def test_tau_zero_keeps_everything_and_is_fully_faithful(attn_only_model, ind_task):
    g = Graph.from_model(attn_only_model)
    kept = acdc(attn_only_model, ind_task, g, tau=0.0)
    assert kept.n_edges == 81
    f = faithfulness(attn_only_model, ind_task, kept)
    assert f.score == pytest.approx(1.0, abs=1e-6)
    assert f.empty == pytest.approx(f.corrupt, abs=1e-6)


def test_dead_heads_are_pruned(make_tiny, ind_task):
    model = make_tiny(attn_only=True, seed=3)
    with torch.no_grad():
        model.blocks[0].attn.W_O[1] = 0  # a0.h1 writes nothing
        model.blocks[1].attn.W_O[2] = 0  # a1.h2 writes nothing
    g = Graph.from_model(model)
    c = acdc(model, ind_task, g, tau=1e-9, objective="metric")
    dead = ("a0.h1", "a1.h2")
    kept = c.edges()
    assert kept, "some edges must matter"
    assert not [e for e in kept if e.split("->")[0] in dead or e.split("->")[1].split("<")[0] in dead]
    f = faithfulness(model, ind_task, c)
    assert f.score == pytest.approx(1.0, abs=1e-6)


def test_threshold_bounds_the_final_kl(mlp_model, ind_task):
    g = Graph.from_model(mlp_model)
    tau = 0.02
    c = acdc(mlp_model, ind_task, g, tau=tau)
    removed = g.n_edges - c.n_edges
    assert 0 < c.n_edges < g.n_edges and removed > 0
    assert c.meta["objective_start"] == pytest.approx(0.0, abs=1e-9)
    assert 0 < c.meta["objective_end"] <= tau * removed
    # every removed edge was tested with a change below tau; every kept one at or above
    tested = c.scores[g.valid & ~c.mask]
    assert (tested < tau).all() and (c.scores[c.mask] >= tau).all()
    with pytest.raises(InputError, match="tau"):
        acdc(mlp_model, ind_task, g, tau=-1.0)
