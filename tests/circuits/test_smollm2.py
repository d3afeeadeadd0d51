"""The real model: SmolLM2-135M (grouped-query attention) — induction heads, and memory at 16 x 128 tokens."""

from __future__ import annotations

import os

import pytest
import torch

from circuits.attribution import eap
from circuits.graph import Graph
from circuits.heads import ablate_heads, head_scores, top_heads
from circuits.patching import patch_edges
from circuits.tasks import induction_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol():
    from interp.models.registry import load_model

    return load_model("smollm2-135m")


def test_gqa_graph(smol):
    g = Graph.from_model(smol)
    assert (g.n_layers, g.n_heads, g.n_kv_heads, g.has_mlp) == (30, 9, 3, True)
    assert len(g.receivers) == 30 * (9 + 3 + 3 + 1) + 1
    assert g.receivers[9:15] == ("a0.kv0<k>", "a0.kv1<k>", "a0.kv2<k>", "a0.kv0<v>", "a0.kv1<v>", "a0.kv2<v>")


def test_induction_heads_found_and_confirmed_by_ablation(smol):
    scores = head_scores(smol, n=4, seq_len=33, seed=0)
    heads = top_heads(scores, 4)
    assert float(scores[heads[0]]) > 0.5 and all(layer >= 10 for layer, _ in heads)  # induction needs depth
    task = induction_task(smol, n=4, seq_len=33, min_repeat=16, max_repeat=16, seed=1)  # fresh tokens
    loss = task.metric.with_kind("loss")
    base = ablate_heads(smol, task.clean, loss, [])
    rise = ablate_heads(smol, task.clean, loss, heads) - base
    g = torch.Generator().manual_seed(0)
    others = [i for i in range(30 * 9) if (i // 9, i % 9) not in heads]
    random_rises = []
    for _ in range(3):
        pick = [others[int(i)] for i in torch.randperm(len(others), generator=g)[:4]]
        random_rises.append(ablate_heads(smol, task.clean, loss, [(i // 9, i % 9) for i in pick]) - base)
    assert rise > 1.0  # nats per repeated token
    assert rise > 5 * max(random_rises)


def _peak_rss_gb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux peak-RSS reset")
def test_eap_and_edge_patching_fit_in_8_gb(smol):
    """One batch of 4 x 128 tokens: the peak of EAP / patching on 16 x 128 tokens run with batch_size=4."""
    task = induction_task(smol, n=4, seq_len=128, seed=2)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS counter: measure from here
    scores = eap(smol, task, batch_size=4)
    top = list(scores.top_k(2).edges())
    exact = patch_edges(smol, task, edges=top, batch_size=4, edges_per_pass=2)
    peak = _peak_rss_gb()
    assert peak < 8.0, f"peak RSS {peak:.2f} GB"
    assert torch.isfinite(scores.scores).all() and scores.scores.abs().max() > 0
    assert exact.n_edges == 2 and all(v == v and v != 0 for v in exact.edges().values())  # finite, non-zero
