"""The shipped ground-truth models: they load, they learned what they claim, their truth is reproducible."""

from __future__ import annotations

import pytest
import torch

from circuits.graph import Graph
from circuits.models import (
    MODEL_NAMES,
    circuit_truth,
    induction_task,
    load_circuit_model,
    mixture_batch,
    repeat_batch,
)
from circuits.patching import patch_edges
from interp.errors import InputError, UnknownNameError


@pytest.fixture(scope="module")
def models():
    return {name: load_circuit_model(name) for name in MODEL_NAMES}


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="induction-2l"):
        load_circuit_model("induction-2")
    with pytest.raises(UnknownNameError, match="planted-4x8"):
        circuit_truth("planted-4x")


def test_graph_sizes(models):
    assert Graph.from_model(models["induction-2l"][0]).n_edges == 81
    assert Graph.from_model(models["planted-4x8"][0]).n_edges == 1281
    for name in MODEL_NAMES:
        assert circuit_truth(name)["n_edges"] == Graph.from_model(models[name][0]).n_edges


@torch.no_grad()
def test_induction_model_has_an_induction_circuit(models):
    model, meta = models["induction-2l"]
    toks, mask = repeat_batch(128, model.cfg.n_ctx, model.cfg.d_vocab, torch.Generator().manual_seed(7))
    loss = model(toks, return_type="loss", loss_per_token=True)  # [batch, pos - 1]
    repeated, other = float(loss[mask[:, :-1]].mean()), float(loss[~mask[:, :-1]].mean())
    assert repeated < 0.5 * other  # the second copy is predicted far better than fresh tokens
    assert other > 0.9 * torch.log(torch.tensor(float(model.cfg.d_vocab)))  # fresh tokens stay unpredictable
    # head scores on a random sequence repeated once: attention to t-1 (layer 0) and to t-half+1 (layer 1)
    half = 16
    x = torch.randint(0, model.cfg.d_vocab, (32, half), generator=torch.Generator().manual_seed(8))
    _, cache = model.run_with_cache(torch.cat([x, x], 1), names_filter=lambda n: n.endswith("hook_pattern"))
    q = torch.arange(half, 2 * half)
    prev = cache["blocks.0.attn.hook_pattern"][:, :, q, q - 1].mean((0, 2))  # [head]
    ind = cache["blocks.1.attn.hook_pattern"][:, :, q, q - half + 1].mean((0, 2))  # [head]
    uniform = float((1 / (q + 1).float()).mean())  # attention an unspecialised head would put on one key
    assert float(ind.min()) > 0.5  # every layer-1 head is an induction head
    assert float(prev.max()) > 3 * uniform  # a layer-0 head attends to the previous token
    assert float(cache["blocks.1.attn.hook_pattern"][:, :, q, q - half + 3].mean()) < uniform
    assert meta["loss_repeated"] < 0.5 * meta["loss_other"]


@torch.no_grad()
def test_planted_model_learned_its_mixture(models):
    model, meta = models["planted-4x8"]
    toks = mixture_batch(64, model.cfg.n_ctx, model.cfg.d_vocab, torch.Generator().manual_seed(3))
    loss = float(model(toks, return_type="loss"))
    assert loss < 0.85 * meta["loss_uniform"]
    assert meta["loss_repeated"] < 0.5 * meta["loss_other"]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_truth_is_self_consistent(name):
    truth = circuit_truth(name)
    tau = truth["threshold_value"]
    above = {e for e, v in truth["edges"].items() if abs(v) >= tau}
    assert set(truth["circuit_edges"]) == above
    nodes = {n for e in above for n in (e.split("->")[0], e.split("->")[1].split("<")[0])}
    assert set(truth["circuit_nodes"]) == {n for n in nodes if n.startswith("a")}
    assert truth["metric_clean"] - truth["metric_corrupt"] > 1.0
    assert truth["circuit_faithfulness"] > 0.7  # the thresholded circuit alone recovers most of the gap
    assert 0 < len(truth["circuit_edges"]) < truth["n_edges"]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_truth_matches_recomputed_patching(models, name):
    """Exact patching of the strongest edges and a few random ones reproduces the shipped effects."""
    model, _ = models[name]
    truth = circuit_truth(name)
    task = induction_task(name, n=truth["task_n"], seed=truth["task_seed"])
    ranked = sorted(truth["edges"], key=lambda e: -abs(truth["edges"][e]))
    g = torch.Generator().manual_seed(0)
    pick = ranked[:4] + [ranked[i] for i in torch.randperm(len(ranked), generator=g)[:4].tolist()]
    got = patch_edges(model, task, edges=pick, edges_per_pass=8).edges()
    for e in pick:
        assert got[e] == pytest.approx(truth["edges"][e], abs=1e-3, rel=1e-3)


def test_induction_task_is_seeded_and_validated():
    a, b = induction_task("induction-2l", n=4, seed=1), induction_task("induction-2l", n=4, seed=1)
    assert torch.equal(a.clean, b.clean) and torch.equal(a.corrupt, b.corrupt)
    assert (a.clean != a.corrupt).any(1).all() and torch.equal(a.clean[:, -3:], a.corrupt[:, -3:])
    with pytest.raises(InputError, match="n_pos"):
        induction_task("induction-2l", n_pos=4)
