"""``interp circuits``: a method on a factory model and a named task writes JSON, HTML and a summary."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from circuits.cli import TASK_NAMES
from circuits.result import Circuit
from circuits.tasks import TASKS
from interp.cli import main

TINY = "tests/capture/tiny.py:tiny_model"


def test_task_names_match_the_registry():
    assert set(TASK_NAMES) == set(TASKS)


@pytest.mark.parametrize("method", ["eap", "acdc"])
def test_cli_writes_circuit_json_and_html(tmp_path, method, capsys):
    out = tmp_path / method
    argv = ["circuits", "--model", TINY, "--task", "induction", "--method", method, "--n", "4", "--seq-len", "12",
            "--top-k", "15", "--tau", "0.05", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    circuit = Circuit.from_json(out / "circuit.json")
    summary = json.loads((out / "summary.json").read_text())
    assert circuit.method == method and circuit.graph.n_edges == summary["n_graph_edges"] == 110
    assert summary["n_edges"] == circuit.n_edges and (
        circuit.n_edges == 15 if method == "eap" else circuit.n_edges < 110
    )
    assert 0 <= summary["faithfulness"]["score"] or method == "acdc"
    assert (out / "circuit.html").stat().st_size > 1_000_000  # plotly inlined: opens offline
    assert "faithfulness" in capsys.readouterr().out


def test_cli_help_is_light_and_errors_are_friendly(tmp_path, capsys):
    code = "import sys, circuits.cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    argv = ["circuits", "--model", TINY, "--task", "ioi", "--out", str(tmp_path)]
    assert main(argv) == 1  # the tiny model has no tokenizer: an InterpError, reported, exit code 1
    assert "tokenizer" in capsys.readouterr().err
