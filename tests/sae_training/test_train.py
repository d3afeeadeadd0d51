"""Training runs: evaluation output, several hooks at once (hook_z included), bad input, checkpoints."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from interp.errors import InputError
from sae_training import train_sae
from sae_training.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from sae_training.evaluate import evaluate_sae
from sae_training.saelens_io import load_sae

from .conftest import HOOK, HOOK_Z


def _cfg(store, out, **kw):
    return {"from_store": str(store.path), "hook": [HOOK], "arch": "topk", "d_sae": 256, "k": 8,
            "tokens": 4096, "batch_size": 256, "out": str(out), "progress": False, "eval": False} | kw  # fmt: skip


def test_topk_run_evaluates_with_splice(tiny_model, tiny_store, heldout_tokens, tmp_path):
    res = train_sae(_cfg(tiny_store, tmp_path / "run", eval=True, eval_tokens=256), eval_model=tiny_model,
                    eval_data=heldout_tokens)  # fmt: skip
    m = res.eval[HOOK]
    assert m["l0"] == pytest.approx(8.0)
    assert 0 < m["fvu"] < 1 and m["explained_variance"] == pytest.approx(1 - m["fvu"])
    assert {"ce_loss_recovered", "kl_div", "dead_fraction", "dense_fraction", "mse"} <= set(m)
    assert m["kl_div"] >= 0
    assert json.loads((tmp_path / "run" / "eval.json").read_text())[HOOK]["l0"] == pytest.approx(8.0)
    html = (tmp_path / "run" / "eval.html").read_text()
    assert "plotly" in html and len(html) > 1_000_000  # plotly.js inlined: renders offline
    assert json.loads((tmp_path / "run" / "config.json").read_text())["sae"]["k"] == 8


def test_fvu_is_computed_over_the_whole_set(tiny_store, tmp_path):
    """FVU = Σ‖x - x̂‖² / Σ‖x - μ‖² over all tokens, checked against a direct computation."""
    res = train_sae(_cfg(tiny_store, tmp_path / "run"))
    sae = res.load()
    x = tiny_store.get(slice(0, 1024), HOOK).float()
    got = evaluate_sae(sae, store=tiny_store, n_tokens=1024)[HOOK]
    with torch.no_grad():
        err = (sae(x) - x).pow(2).sum()
    assert got["fvu"] == pytest.approx(float(err / (x - x.mean(0)).pow(2).sum()), rel=1e-4)


def test_several_hooks_from_one_pass_including_hook_z(tiny_model, tiny_store, tmp_path):
    res = train_sae(_cfg(tiny_store, tmp_path / "run", hook=[HOOK, HOOK_Z]))
    assert set(res.saes) == {HOOK, HOOK_Z}
    z = load_sae(res.saes[HOOK_Z])
    assert z.cfg.d_in == 64 and z.cfg.reshape_activations == "hook_z"
    acts = tiny_store.get(slice(0, 50), HOOK_Z)  # [50, n_heads, d_head]
    with torch.no_grad():  # SAELens reshapes the heads itself and gives our outputs
        theirs = z(acts)
        scale = z.cfg.metadata.norm_scaling_factor
        ours = res.trained[HOOK_Z](acts.reshape(50, -1) * scale) / scale
    assert theirs.shape == acts.shape
    torch.testing.assert_close(theirs.reshape(50, -1), ours, rtol=1e-4, atol=1e-4)


def test_nonfinite_batch_is_named_or_skipped(tiny_store, tmp_path, monkeypatch):
    import sae_training.trainer as trainer

    real = trainer.stream

    def poisoned(*a, **k):
        for step, batch in real(*a, **k):
            if step == 3:
                batch[HOOK][0, 0] = float("nan")
            yield step, batch

    monkeypatch.setattr(trainer, "stream", poisoned)
    with pytest.raises(InputError, match=rf"batch 3 of hook {HOOK}.*--on-nonfinite skip"):
        train_sae(_cfg(tiny_store, tmp_path / "a"))
    res = train_sae(_cfg(tiny_store, tmp_path / "b", on_nonfinite="skip"))
    assert torch.isfinite(res.trained[HOOK].W_dec).all()


def test_sae_of_another_width_is_refused(tiny_store, tmp_path):
    from sae_training.archs import get_arch
    from sae_training.config import SAESpec
    from sae_training.saelens_io import save_sae

    narrow = save_sae(get_arch("topk")(32, 64, SAESpec(k=4)), tmp_path / "narrow", {"hook_name": HOOK})
    with pytest.raises(InputError, match=rf"d_in 32, but {HOOK} has 64"):
        evaluate_sae(narrow, store=tiny_store)


def test_resume_with_changed_config_names_the_fields(tiny_store, tmp_path):
    train_sae(_cfg(tiny_store, tmp_path / "run"))
    with pytest.raises(InputError, match=r"sae\.k: 8 -> 16.*optim\.lr"):
        train_sae(_cfg(tiny_store, tmp_path / "run", k=16, lr=1e-3), resume=True)


def test_full_disk_during_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    import sae_training.checkpoint as ck

    save_checkpoint(tmp_path, 10, {"step": 10, "w": torch.ones(3)})

    def full_disk(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", full_disk)
    with pytest.raises(CheckpointError, match="disk is full.*step-00000010.pt.*intact"):
        save_checkpoint(tmp_path, 20, {"step": 20})
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path).name == "step-00000010.pt"
    assert load_checkpoint(latest_checkpoint(tmp_path))["step"] == 10
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-00000010.pt"]  # no temp file left


def test_kill_9_then_resume_ends_like_an_uninterrupted_run(tiny_store, tmp_path):
    kw = {"d_sae": 2048, "batch_size": 512, "tokens": 60 * 512, "checkpoint_every": 10}
    args = ["--from-store", str(tiny_store.path), "--hook", HOOK, "--arch", "topk", "--k", "8", "--no-progress",
            "--no-eval", "--out", str(tmp_path / "killed")]  # fmt: skip
    args += [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "sae_training", "train", *args], env=env)
    first = tmp_path / "killed" / "checkpoints" / "step-00000010.pt"
    deadline = time.time() + 120
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.exists() and not (tmp_path / "killed" / HOOK).exists(), "the run was not killed mid-way"
    resumed = subprocess.run([sys.executable, "-m", "sae_training", "resume", "--out", str(tmp_path / "killed")],
                             env=env, capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    straight = train_sae(_cfg(tiny_store, tmp_path / "straight", **kw))
    a = load_file(tmp_path / "killed" / HOOK / "sae_weights.safetensors")
    b = load_file(straight.saes[HOOK] / "sae_weights.safetensors")
    for name in b:
        assert torch.equal(a[name], b[name]), name
    ta = json.loads((tmp_path / "killed" / "train.json").read_text())["final"][HOOK]
    assert ta == straight.final[HOOK]
