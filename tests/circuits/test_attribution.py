"""EAP and EAP-IG against exact edge patching."""

from __future__ import annotations

import pytest
import torch

from circuits.attribution import eap, eap_ig, edge_gradients_dot
from circuits.graph import Graph
from circuits.patching import edge_metric, node_outputs, patch_edges
from circuits.tasks import AnswerMetric, Task


def _corr(a, b, valid):
    return float(torch.corrcoef(torch.stack([a[valid].double(), b[valid].double()]))[0, 1])


@pytest.fixture(scope="module")
def smooth(make_tiny):
    """Default-init attention-only model: close enough to linear that EAP should track exact patching."""
    return make_tiny(attn_only=True, qk_scale=1.0)


def test_eap_correlates_with_exact_patching(smooth, ind_task):
    g = Graph.from_model(smooth)
    exact = patch_edges(smooth, ind_task, g, edges_per_pass=27)
    approx = eap(smooth, ind_task, g)
    assert approx.n_edges == g.n_edges == 81
    assert _corr(approx.scores, exact.scores, g.valid) > 0.9
    assert _corr(eap(smooth, ind_task, g, batch_size=4).scores, approx.scores, g.valid) > 0.999999


def test_eap_is_exact_for_linear_metric_on_attention_free_path(make_tiny, ind_task):
    """No LayerNorm, logit difference: logits are linear in each node's direct contribution."""
    model = make_tiny(norm=None)
    g = Graph.from_model(model)
    n = len(ind_task)
    metric = AnswerMetric(torch.arange(n)[:, None], torch.arange(n)[:, None] + 7, torch.full((n,), -1))
    task = Task("linear", ind_task.clean, ind_task.corrupt, metric)
    into_logits = [(u, "logits") for u in g.upstream]
    exact = patch_edges(model, task, g, into_logits).edges()
    approx = eap(model, task, g)
    for u, r in into_logits:
        assert approx.edges()[f"{u}->{r}"] == pytest.approx(exact[f"{u}->{r}"], abs=1e-5)
    assert max(abs(v) for v in exact.values()) > 1e-3


def test_eap_is_the_first_order_limit(gqa_model, ind_task):
    """Shrinking the patch by eps: exact effect / eps -> EAP score, every edge (GQA, RMSNorm, MLPs)."""
    g = Graph.from_model(gqa_model)
    clean = node_outputs(gqa_model, g, ind_task.clean)
    delta = 1e-4 * (node_outputs(gqa_model, g, ind_task.corrupt) - clean)
    grad = edge_gradients_dot(gqa_model, g, ind_task, delta, [0.0], 1 / len(ind_task))
    idx = g.valid.nonzero()[::5].tolist()
    masks = torch.zeros(len(idx), *g.valid.shape, dtype=torch.bool)
    for c, (u, r) in enumerate(idx):
        masks[c, u, r] = True
    base = edge_metric(gqa_model, g, ind_task, torch.zeros_like(g.valid), clean + delta)
    exact = edge_metric(gqa_model, g, ind_task, masks, clean + delta) - base
    first = torch.stack([grad[u, r] for u, r in idx]).double()
    assert float((exact - first).abs().max()) < 0.01 * float(first.abs().max())


def test_eap_ig_completeness_beats_eap(make_tiny, ind_task):
    """Edges out of the input node: IG's sum is the full corrupt-minus-clean change; EAP's is only linear."""
    model = make_tiny(qk_scale=1.0)
    g = Graph.from_model(model)
    with torch.no_grad():
        clean, corrupt = (ind_task.metric(model(t)).mean() for t in (ind_task.clean, ind_task.corrupt))
    total = float(corrupt - clean)
    ig = eap_ig(model, ind_task, g, steps=16).scores[0].sum()
    lin = eap(model, ind_task, g).scores[0].sum()
    err_ig, err_eap = abs(float(ig) - total), abs(float(lin) - total)
    assert err_ig < 0.01 * abs(total)
    assert err_ig < 0.2 * err_eap
