"""The edge graph convention: node and receiver names, edge counts, GQA receivers, flags restored."""

from __future__ import annotations

import pytest
import torch

from circuits.graph import Graph, edge_hooks, parse_edge
from interp.errors import InputError, UnknownNameError


def test_two_layer_four_head_attention_only_has_81_edges(attn_only_model):
    g = Graph.from_model(attn_only_model)
    assert g.n_edges == 81
    edges = g.edges()
    into_l0 = [e for e in edges if e[1].startswith("a0.")]
    into_l1 = [e for e in edges if e[1].startswith("a1.")]
    into_logits = [e for e in edges if e[1] == "logits"]
    assert (len(into_l0), len(into_l1), len(into_logits)) == (12, 60, 9)
    assert {u for u, _ in into_l0} == {"input"}
    assert {u for u, _ in into_l1} == {"input", "a0.h0", "a0.h1", "a0.h2", "a0.h3"}


def test_mlp_reads_same_layer_heads_and_counts(mlp_model):
    g = Graph.from_model(mlp_model)
    assert g.upstream == ("input", "a0.h0", "a0.h1", "a0.h2", "a0.h3", "m0",
                          "a1.h0", "a1.h1", "a1.h2", "a1.h3", "m1")  # fmt: skip
    ups_m0 = {u for u, r in g.edges() if r == "m0"}
    assert ups_m0 == {"input", "a0.h0", "a0.h1", "a0.h2", "a0.h3"}
    # layer 0: 12 qkv x 1 + m0 x 5; layer 1: 12 x 6 + m1 x 10; logits 11
    assert g.n_edges == 12 + 5 + 72 + 10 + 11
    par = Graph(2, 4, 4, has_mlp=True, parallel_attn_mlp=True)
    assert {u for u, r in par.edges() if r == "m0"} == {"input"}


def test_gqa_key_value_receivers_are_per_group(gqa_model):
    g = Graph.from_model(gqa_model)
    assert (g.n_heads, g.n_kv_heads, g.gqa) == (6, 2, True)
    l1 = [r for r in g.receivers if r.startswith("a1.")]
    assert l1 == [f"a1.h{h}<q>" for h in range(6)] + ["a1.kv0<k>", "a1.kv1<k>", "a1.kv0<v>", "a1.kv1<v>"]
    # hook shapes agree: q inputs carry 6 heads, k/v inputs 2 groups
    shapes = {}
    with edge_hooks(gqa_model, g):
        gqa_model.run_with_hooks(
            torch.zeros(1, 3, dtype=torch.long),
            fwd_hooks=[
                (f"blocks.1.hook_{x}_input", lambda a, hook: shapes.__setitem__(hook.name, a.shape[2])) for x in "qkv"
            ],
        )
    assert shapes == {"blocks.1.hook_q_input": 6, "blocks.1.hook_k_input": 2, "blocks.1.hook_v_input": 2}


def test_edge_hooks_restores_flags(mlp_model):
    cfg = mlp_model.cfg
    before = (cfg.use_split_qkv_input, cfg.use_hook_mlp_in)
    with pytest.raises(RuntimeError), edge_hooks(mlp_model, Graph.from_model(mlp_model)):
        assert cfg.use_split_qkv_input and cfg.use_hook_mlp_in
        raise RuntimeError("boom")
    assert (cfg.use_split_qkv_input, cfg.use_hook_mlp_in) == before


def test_names_and_masks(attn_only_model, make_tiny):
    g = Graph.from_model(attn_only_model)
    m = g.edge_mask(["input->a0.h1<k>", ("a0.h2", "logits")])
    assert m.sum() == 2 and m[g.upstream_index("a0.h2"), g.receiver_index("logits")]
    assert parse_edge("a0.h1->a1.h0<q>") == ("a0.h1", "a1.h0<q>")
    with pytest.raises(InputError, match="not an edge"):
        g.edge_mask(["a1.h0->a0.h0<q>"])
    with pytest.raises(UnknownNameError, match="a0.h1"):
        g.upstream_index("a0.h11")
    with pytest.raises(InputError, match="non-additive"):
        cfg = make_tiny().cfg
        Graph.from_model(cfg.__class__(**{**cfg.to_dict(), "use_normalization_before_and_after": True}))


# --- results on the graph: selection, JSON, faithfulness, truth comparison, figure ---------------------------


@pytest.fixture(scope="module")
def scored(attn_only_model, ind_task):
    from circuits.patching import patch_edges

    return patch_edges(attn_only_model, ind_task, edges_per_pass=27)


def test_circuit_selection_and_json_round_trip(scored, tmp_path):
    from circuits.result import Circuit

    top = scored.top_k(10)
    assert top.n_edges == 10
    kept = torch.tensor(list(top.edges().values())).abs()
    rest = scored.scores.abs()[scored.graph.valid & ~top.mask]
    assert kept.min() >= rest.max()
    thr = scored.threshold(float(kept.min()))
    assert thr.edges().keys() == top.edges().keys()
    assert set(top.nodes()) >= {u for e in top.edges() for u in [e.split("->")[0]]}
    back = Circuit.from_json(top.to_json(tmp_path / "c.json"))
    assert torch.equal(back.scores, top.scores) and torch.equal(back.mask, top.mask)
    assert back.graph == top.graph and back.method == "exact" and back.meta == top.meta
    assert Circuit.from_json(str(tmp_path / "c.json")).edges() == top.edges()


@pytest.mark.parametrize("ablation", ["corrupt", "mean", "zero", "resample"])
def test_faithfulness_full_empty_and_partial(attn_only_model, ind_task, scored, ablation):
    from circuits.result import faithfulness

    full = faithfulness(attn_only_model, ind_task, scored, ablation)
    assert full.score == pytest.approx(1.0, abs=1e-9)
    with torch.no_grad():
        assert full.full == pytest.approx(float(ind_task.metric(attn_only_model(ind_task.clean)).mean()), abs=1e-9)
    empty = faithfulness(attn_only_model, ind_task, scored.top_k(0), ablation)
    assert empty.score == pytest.approx(0.0, abs=1e-9) and empty.circuit == pytest.approx(empty.empty, abs=1e-9)
    if ablation == "corrupt":
        assert empty.empty == pytest.approx(empty.corrupt, abs=1e-9)  # everything patched = the corrupt run
    part = faithfulness(attn_only_model, ind_task, scored.top_k(20), ablation)
    assert part.circuit not in (pytest.approx(part.full, abs=1e-9), pytest.approx(part.empty, abs=1e-9))


def test_compare_to_truth(scored):
    from circuits.result import compare_to_truth

    truth = list(scored.top_k(5).edges())
    perfect = compare_to_truth(scored.top_k(5), truth)
    assert perfect == {"roc_auc": 1.0, "precision": 1.0, "recall": 1.0, "n_true": 5, "n_selected": 5}
    flipped = scored.__class__(scored.graph, -scored.scores.abs() + 10, scored.mask, "x")
    assert compare_to_truth(flipped, truth)["roc_auc"] < 0.1
    half = compare_to_truth(scored.top_k(10), truth)
    assert (half["precision"], half["recall"]) == (0.5, 1.0)


def test_figure_draws_edges_and_writes_offline_html(scored, gqa_model, tmp_path):
    from circuits.figure import circuit_figure, node_positions
    from circuits.result import Circuit

    top = scored.top_k(12)
    fig = circuit_figure(top)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert sum(len(t.x) // 3 for t in lines) == len({(e.split("->")[0], e.split("->")[1].split("<")[0])
                                                     for e in top.edges()})  # fmt: skip
    colors = {t.line.color for t in lines}
    signs = {v >= 0 for v in top.edges().values()}
    assert len(colors) == len(signs)
    fig.write_html(tmp_path / "c.html", include_plotlyjs=True)
    html = (tmp_path / "c.html").read_text()
    assert 'src="https://cdn.plot.ly' not in html and len(html) > 1_000_000  # the library is inlined
    g = Graph.from_model(gqa_model)
    assert "a1.kv1" in node_positions(Circuit(g, torch.ones(g.valid.shape), g.valid.clone()))
