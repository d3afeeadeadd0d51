"""Run directories, the ``interp`` CLI and the main job."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from interp.cli import main
from interp.errors import InputError
from interp.runs import RunDir


def test_run_dir_records_config_env_and_resumes(tmp_path):
    run = RunDir("r1", {"seed": 1}, root=tmp_path)
    assert json.loads((run.path / "config.json").read_text()) == {"seed": 1}
    env = json.loads((run.path / "env.json").read_text())
    assert env["packages"]["torch"].startswith("2.13.0") and env["packages"]["transformer-lens"].startswith("3.9")
    assert not run.is_done("capture")
    run.mark_done("capture", {"tokens": 10})
    again = RunDir("r1", {"seed": 1}, root=tmp_path)
    assert again.is_done("capture")
    with pytest.raises(InputError, match="another configuration"):
        RunDir("r1", {"seed": 2}, root=tmp_path)
    fresh = RunDir("r1", {"seed": 2}, root=tmp_path, overwrite=True)
    assert not fresh.is_done("capture")
    with pytest.raises(InputError, match="plain directory name"):
        RunDir("../escape", {}, root=tmp_path)


def test_help_is_fast_and_lists_stages():
    out = subprocess.run([sys.executable, "-m", "interp.cli", "--help"], capture_output=True, text=True, check=True)
    assert "models" in out.stdout and "demo" in out.stdout
    # --help must not pay for torch or TransformerLens
    code = "import sys, interp.cli; interp.cli.build_parser(); print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


def test_models_command(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("smollm2-135m", "minilm-l6", "dinov2-s14"):
        assert name in out
    assert "install:" not in out  # all three available offline here


def test_cli_reports_user_errors(capsys):
    assert main(["demo", "--stages", "nonsense", "--runs-dir", "/tmp/unused"]) == 1
    assert "unknown demo stage" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_end_to_end_and_resumes(tmp_path, capsys):
    from interp.demo import DemoConfig, run_demo

    cfg = DemoConfig(name="t", runs_dir=str(tmp_path), n_digits=32)
    path = run_demo(cfg)
    res = json.loads((tmp_path / "t" / "models" / "results.json").read_text())
    assert "Paris" in res["lm"]["answer"]
    assert res["encoder"]["cos_paraphrase"] > res["encoder"]["cos_unrelated"]
    assert res["vit"]["probe_accuracy"] > 0.5
    data = json.loads((tmp_path / "t" / "datasets" / "results.json").read_text())
    assert data["text"]["bible"]["train_docs"] > data["text"]["bible"]["heldout_docs"] > 0
    assert data["packed_bible"]["context_size"] == 128
    out = capsys.readouterr().out
    assert f"Results: {(tmp_path / 't').resolve()}" in out
    run_demo(cfg)  # second run: every stage skipped
    assert out.count("already done") == 0 and capsys.readouterr().out.count("already done") == 2
    assert path == str(tmp_path / "t")
