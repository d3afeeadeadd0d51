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
    """The main job's every stage, at a small scale (the shipped defaults run in `make demo`)."""
    from interp.demo import STAGES, DemoConfig, run_demo

    cfg = DemoConfig(name="t", runs_dir=str(tmp_path), n_digits=32, train_tokens=12_800, heldout_tokens=2_560,
                     sae_tokens=12_800, d_sae=256, k=8, label_units=32, vit_label_images=30)
    path = run_demo(cfg)
    run = tmp_path / "t"
    res = json.loads((run / "models" / "results.json").read_text())
    assert "Paris" in res["lm"]["answer"]
    assert res["encoder"]["cos_paraphrase"] > res["encoder"]["cos_unrelated"]
    assert res["vit"]["probe_accuracy"] > 0.5
    data = json.loads((run / "datasets" / "results.json").read_text())
    assert data["text"]["bible"]["train_docs"] > data["text"]["bible"]["heldout_docs"] > 0
    assert data["packed_bible"]["context_size"] == 128
    cap = json.loads((run / "capture" / "results.json").read_text())
    assert cap["train"]["tokens"] >= 12_000 and cap["heldout"]["tokens"] >= 2_400
    assert set(cap["train"]["hooks"]) == {"blocks.6.hook_resid_post", "blocks.6.mlp.hook_post"}
    sae = json.loads((run / "sae" / "results.json").read_text())
    assert 0 < sae["eval"]["fvu"] < 1 and sae["eval"]["l0"] <= 8 + 1e-6
    labels = json.loads((run / "labels" / "results.json").read_text())
    for what in ("sae_latents", "mlp_neurons"):
        assert labels[what]["units"] == 32
        html = (run / "labels" / what / "labels.html").read_text()
        assert "<html" in html.lower() and "https://" not in html
        dash = (run / "labels" / what / "dashboard.html").read_text()
        assert "interp-root" in dash and "https://" not in dash
        assert list((run / "labels" / what / "neuronpedia").glob("batch-*.jsonl.gz"))
    vit = labels["vit_neurons"]
    assert vit["units"] == 32 and vit["images"] > 100 and 0 <= vit["median_auroc"] <= 1
    assert (run / "labels" / "vit_neurons" / "units" / "00000.js").is_file()
    steer = json.loads((run / "steering" / "results.json").read_text())
    methods = {row["method"] for row in steer["rows"]}
    assert {"vector", "random", "prompting"} <= methods
    assert all(row["kl_mean"] >= 0 for row in steer["rows"])
    assert steer["generation"]["steered"] and steer["generation"]["unsteered"]
    out = capsys.readouterr().out
    assert f"Results: {run.resolve()}" in out
    run_demo(cfg)  # second run: every stage skipped
    assert capsys.readouterr().out.count("already done") == len(STAGES)
    assert path == str(run)
