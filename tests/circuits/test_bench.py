"""The circuit benchmark's scoring helpers (the full run is ``python bench/circuits.py``; minutes, not a test)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from circuits.graph import Graph

BENCH = Path(__file__).resolve().parents[2] / "bench" / "circuits.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_circuits", BENCH)  # not "circuits": that is the package
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_node_circuit_keeps_edges_among_selected_heads(bench):
    g = Graph(n_layers=2, n_heads=4, n_kv_heads=4, has_mlp=False)
    c = bench._node_circuit(g, {"a0.h2", "a1.h0"})
    assert set(c.edges()) == {
        "input->a0.h2<q>", "input->a0.h2<k>", "input->a0.h2<v>",
        "input->a1.h0<q>", "input->a1.h0<k>", "input->a1.h0<v>",
        "a0.h2->a1.h0<q>", "a0.h2->a1.h0<k>", "a0.h2->a1.h0<v>",
        "input->logits", "a0.h2->logits", "a1.h0->logits",
    }  # fmt: skip


def test_targets_and_auc(bench):
    assert bench._auc({"a": 0.9, "b": -0.8, "c": 0.1}, {"a", "b"}) == 1.0  # |score| ranks
    rows = {
        "induction-2l": {"EAP-IG": {"roc_auc": 0.97}, "SAE-code heads": {"roc_auc": float("nan")}},
        "planted-4x8": {"EAP": {"roc_auc": 0.90, "seconds": 1.0}, "ACDC": {"roc_auc": 0.97, "seconds": 150.0},
                        "SAE-code heads": {"roc_auc": 0.80}},
    }  # fmt: skip
    met = bench.targets(rows)
    assert met["EAP-IG ROC-AUC on induction-2l >= 0.95"]["met"]
    assert "SAE-code head ROC-AUC on induction-2l >= 0.85" not in met  # no ranking when every head is true
    assert not met["SAE-code head ROC-AUC on planted-4x8 >= 0.85"]["met"]
    assert met["EAP speed-up over ACDC on planted-4x8 >= 100x"]["value"] == 150.0
    assert not met["EAP ROC-AUC within 0.05 of ACDC on planted-4x8"]["met"]
