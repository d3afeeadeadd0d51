"""Exact edge patching and activation/path patching agree with plain runs and with each other."""

from __future__ import annotations

import pytest
import torch

from circuits.graph import Graph
from circuits.patching import (
    edge_metric,
    node_outputs,
    patch_edges,
    patch_heads,
    patch_mlps,
    patch_resid,
    path_patch,
    run_with_edges,
    source_outputs,
)
from interp.interventions import Patch, intervene
from interp.interventions.apply import capture_activations


@pytest.mark.parametrize("which", ["attn_only_model", "mlp_model", "gqa_model"])
def test_no_edges_is_clean_all_edges_is_corrupt(which, request, ind_task):
    model = request.getfixturevalue(which)
    g = Graph.from_model(model)
    src = source_outputs(model, g, ind_task)
    with torch.no_grad():
        clean, corrupt = model(ind_task.clean), model(ind_task.corrupt)
        none = run_with_edges(model, g, ind_task.clean, src, torch.zeros_like(g.valid))
        every = run_with_edges(model, g, ind_task.clean, src, g.valid)
    torch.testing.assert_close(none, clean)
    torch.testing.assert_close(every, corrupt)
    assert (clean - corrupt).abs().max() > 1e-2  # the check above is not vacuous


def test_node_outputs_sum_to_residual_stream(mlp_model, ind_task):
    g = Graph.from_model(mlp_model)
    out = node_outputs(mlp_model, g, ind_task.clean)
    _, cache = mlp_model.run_with_cache(ind_task.clean)
    b_o = sum(mlp_model.blocks[i].attn.b_O for i in range(2))
    torch.testing.assert_close(out.sum(0) + b_o, cache["blocks.1.hook_resid_post"])


@pytest.mark.parametrize("which", ["mlp_model", "gqa_model"])
def test_all_edges_into_a_receiver_equals_activation_patch(which, request, ind_task):
    """Patching every edge into m1 / a1's KV group 1 key input = replacing that input with its corrupt value."""
    model = request.getfixturevalue(which)
    g = Graph.from_model(model)
    src = source_outputs(model, g, ind_task)
    for recv, hook, head in [
        ("m1", "blocks.1.hook_mlp_in", None),
        ("a1.kv1<k>" if g.gqa else "a1.h2<k>", "blocks.1.hook_k_input", 1 if g.gqa else 2),
    ]:
        j = g.receiver_index(recv)
        mask = torch.zeros_like(g.valid)
        mask[:, j] = g.valid[:, j]
        with torch.no_grad():
            edges = run_with_edges(model, g, ind_task.clean, src, mask)
            mlp_model_cfg = model.cfg
            old = (mlp_model_cfg.use_split_qkv_input, mlp_model_cfg.use_hook_mlp_in)
            mlp_model_cfg.use_split_qkv_input = mlp_model_cfg.use_hook_mlp_in = True
            try:
                corrupt_in = capture_activations(model, ind_task.corrupt, [hook], stop_at_layer=None)[hook]
                heads = None if head is None else [head]
                with intervene(model, Patch(hook, corrupt_in, heads=heads)):
                    act = model(ind_task.clean)
            finally:
                mlp_model_cfg.use_split_qkv_input, mlp_model_cfg.use_hook_mlp_in = old
        torch.testing.assert_close(edges, act)


def test_patch_edges_matches_single_edge_runs_and_batching(mlp_model, ind_task):
    g = Graph.from_model(mlp_model)
    chosen = ["a0.h1->a1.h0<v>", "input->m1", "m0->logits", "a1.h3->m1"]
    full = patch_edges(mlp_model, ind_task, g, chosen, edges_per_pass=3)
    batched = patch_edges(mlp_model, ind_task, g, chosen, batch_size=4, edges_per_pass=1)
    assert full.n_edges == 4
    src = source_outputs(mlp_model, g, ind_task)
    base = edge_metric(mlp_model, g, ind_task, torch.zeros_like(g.valid), src)
    for e, v in full.edges().items():
        one = edge_metric(mlp_model, g, ind_task, g.edge_mask([e]), src) - base
        assert v == pytest.approx(float(one), abs=1e-6)
        assert batched.edges()[e] == pytest.approx(v, abs=1e-6)
    assert max(abs(v) for v in full.edges().values()) > 1e-4
    # mean ablation averages over the whole task, batched or not
    mean_all = patch_edges(mlp_model, ind_task, g, chosen, ablation="mean")
    mean_batched = patch_edges(mlp_model, ind_task, g, chosen, ablation="mean", batch_size=4)
    torch.testing.assert_close(mean_batched.scores, mean_all.scores, atol=1e-6, rtol=0)
    assert not torch.allclose(mean_all.scores, full.scores)


def test_activation_patching_agrees_with_edges(attn_only_model, ind_task):
    """In a 2-layer attention-only model, patching head a1.hH = patching its only out-edge a1.hH->logits."""
    g = Graph.from_model(attn_only_model)
    heads = patch_heads(attn_only_model, ind_task)
    out_edges = patch_edges(attn_only_model, ind_task, g, [f"a1.h{h}->logits" for h in range(4)])
    torch.testing.assert_close(heads[1], torch.tensor([out_edges.edges()[f"a1.h{h}->logits"] for h in range(4)],
                                                      dtype=heads.dtype))  # fmt: skip
    resid = patch_resid(attn_only_model, ind_task)
    assert resid.shape == (2, ind_task.clean.shape[1])
    # patching the whole residual stream at layer 0, all positions at once, would be the corrupt run; one
    # position of the first layer changes only that token's contribution, and the early positions, which
    # are identical in clean and corrupt, have no effect
    same = (ind_task.clean == ind_task.corrupt).all(0)
    assert resid[0, same].abs().max() < 1e-9 and resid[0, ~same].abs().max() > 1e-4


def test_patch_mlps_and_path_patch(mlp_model, attn_only_model, ind_task):
    g = Graph.from_model(mlp_model)
    mlps = patch_mlps(mlp_model, ind_task)
    assert mlps.shape == (2,)
    # m1's only reader is logits: its activation patch equals the edge m1->logits and path_patch(m1, logits)
    edge = patch_edges(mlp_model, ind_task, g, ["m1->logits"]).edges()["m1->logits"]
    assert float(mlps[1]) == pytest.approx(edge, abs=1e-6)
    assert path_patch(mlp_model, ind_task, "m1", ["logits"]) == pytest.approx(edge, abs=1e-6)
    # without MLPs to mediate, the path a0.h2 -> a1.h1<q> is exactly the edge
    g = Graph.from_model(attn_only_model)
    direct = patch_edges(attn_only_model, ind_task, g, ["a0.h2->a1.h1<q>"]).edges()["a0.h2->a1.h1<q>"]
    assert path_patch(attn_only_model, ind_task, "a0.h2", ["a1.h1<q>"]) == pytest.approx(direct, abs=1e-6)
    # with MLPs, the path through m0 counts too: it differs from the direct edge
    direct = patch_edges(mlp_model, ind_task, None, ["a0.h2->a1.h1<q>"]).edges()["a0.h2->a1.h1<q>"]
    assert abs(path_patch(mlp_model, ind_task, "a0.h2", ["a1.h1<q>"]) - direct) > 1e-4
