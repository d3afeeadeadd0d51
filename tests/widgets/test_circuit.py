"""CircuitExplorer: EAP on the shipped induction-2l model, scored against its measured circuit, drawn offline."""

from __future__ import annotations

import html
import re

import pytest
import torch

from circuits.graph import Graph
from circuits.models import circuit_truth, induction_task, load_circuit_model
from circuits.result import Circuit, compare_to_truth
from interp.errors import InputError, UnknownNameError
from interp.widgets.circuit import CircuitExplorer

TRUTH = circuit_truth("induction-2l")


@pytest.fixture(scope="module")
def eap_circuit() -> Circuit:
    from circuits.attribution import eap

    torch.set_num_threads(1)
    model, _ = load_circuit_model("induction-2l")
    return eap(model, induction_task("induction-2l", n=16))


@pytest.fixture(scope="module")
def exact() -> Circuit:
    """The shipped exact patching effects as a circuit (every edge in)."""
    g = Graph(2, 4, 4, has_mlp=False)
    scores = torch.zeros(g.valid.shape)
    for name, value in TRUTH["edges"].items():
        u, r = name.split("->")
        scores[g.upstream_index(u), g.receiver_index(r)] = value
    return Circuit(g, scores, g.valid.clone(), "exact")


def test_layout_edges_and_threshold_of_an_eap_circuit(eap_circuit):
    view = CircuitExplorer(eap_circuit.top_k(5), truth=TRUTH, threshold=0.1)
    names = [n["name"] for n in view.nodes]
    assert names[0] == "input" and names[-1] == "logits" and len(names) == 10  # 8 heads, attention-only
    node = {n["name"]: n for n in view.nodes}
    assert (node["a1.h2"]["row"], node["a1.h2"]["col"]) == (1, 2) and node["logits"]["row"] == 2  # layers are rows
    assert len(view.edges) == 81 and view.n_dropped == 0  # every edge, not only the top-5 selection
    scores = eap_circuit.edges()
    for e in view.edges:
        u, r = e["name"].split("->")
        assert (
            names[e["u"]] == u and names[e["v"]] == r.split("<")[0] and e["score"] == pytest.approx(scores[e["name"]])
        )
        assert e["slot"] == {"q": 0, "k": 1, "v": 2}.get(r[-2], 1) and e["true"] == (
            e["name"] in TRUTH["circuit_edges"]
        )
    assert view.shown_edges() == {k: v for k, v in scores.items() if abs(v) >= 0.1}
    view.threshold = 0.5  # Python moves the slider
    assert view.shown_edges() == {k: v for k, v in scores.items() if abs(v) >= 0.5} and 0 < len(view.shown_edges()) < 81
    with pytest.raises(InputError, match="must be >= 0"):
        view.threshold = -1.0
    assert set(CircuitExplorer(eap_circuit.top_k(5)).shown_edges()) == set(eap_circuit.top_k(5).edges())
    small = CircuitExplorer(eap_circuit, max_edges=10)
    assert len(small.edges) == 10 and small.n_dropped == 71 and not small.has_truth
    assert min(abs(e["score"]) for e in small.edges) >= sorted(abs(v) for v in scores.values())[-10]
    assert len(small.shown_edges()) == 10  # default threshold: the 50 largest, capped by what was sent


def test_from_json_and_bad_inputs(exact, tmp_path):
    path = tmp_path / "out" / "circuit.json"
    path.parent.mkdir()
    exact.to_json(path)
    a, b = CircuitExplorer(exact), CircuitExplorer.from_json(path.parent)
    assert a.edges == b.edges and a.nodes == b.nodes and CircuitExplorer.from_json(path).threshold == a.threshold
    with pytest.raises(InputError, match="no circuit file at .*Circuit.to_json"):
        CircuitExplorer.from_json(tmp_path / "missing.json")
    with pytest.raises(InputError, match="needs a circuits.result.Circuit, got dict"):
        CircuitExplorer(exact.to_dict())
    with pytest.raises(InputError, match="no 'circuit_edges'"):
        CircuitExplorer(exact, truth={"edges": {}})
    with pytest.raises(UnknownNameError, match="a0.h9"):
        CircuitExplorer(exact, truth=["a0.h9->logits"])
    nan = Circuit(exact.graph, torch.full(exact.graph.valid.shape, float("nan")), exact.mask, "eap")
    with pytest.raises(InputError, match="NaN or Inf on 81 edges"):
        CircuitExplorer(nan)



def test_exported_explorer_filters_in_chromium(exact, tmp_path, render_dom):
    """At the truth's own threshold the shown edges are the true circuit; dragging the slider hides edges."""
    view = CircuitExplorer(exact, truth=TRUTH, threshold=TRUTH["threshold_value"])
    n = len(view.shown_edges())
    assert set(view.shown_edges()) == set(TRUTH["circuit_edges"])
    metrics = compare_to_truth(exact.threshold(view.threshold), TRUTH["circuit_edges"])
    dom = render_dom(view.export_html(tmp_path / "c.html"))
    assert 'data-rendered="1"' in dom and len(re.findall(r'<path data-e="\d+"', dom)) == 81
    assert f'data-count="{n}">{n} of 81 edges shown' in dom
    assert f'data-precision="{metrics["precision"]:.4f}" data-recall="{metrics["recall"]:.4f}"' in dom
    drag = ("const s = document.querySelector('[data-role=threshold]'); s.value = String(s.max - 3);"
            "s.dispatchEvent(new Event('input'));"
            "const e = document.querySelector('path[data-e=\"0\"]');"
            "e.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));")  # fmt: skip
    dom = render_dom(view.export_html(tmp_path / "dragged.html"), drag)
    assert 'data-count="3">3 of 81 edges shown' in dom and "precision 1.00" in dom
    top = max(view.edges, key=lambda e: abs(e["score"]))  # edges are sent largest first; hovering shows it
    hover = re.search(
        r'class="ic-info">' + re.escape(html.escape(top["name"], quote=False)) + r": score (\S+) · in the true", dom
    )
    assert hover and float(hover.group(1)) == pytest.approx(top["score"], abs=1e-4)
    assert dom.count('stroke-dasharray="3 3"') == n - 3  # the true edges now below the threshold, drawn as missed
