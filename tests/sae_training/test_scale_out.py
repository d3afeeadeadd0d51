"""Data-parallel training under torchrun (2 CPU processes, gloo on loopback) and finished-run reuse."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from sae_training import train_sae
from sae_training.cli import main

from .conftest import HOOK, HOOK_Z

_KW = {"arch": "topk", "d_sae": 256, "k": 8, "tokens": 16 * 256, "batch_size": 256, "checkpoint_every": 8,
       "eval_tokens": 2048}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _flags(kw: dict) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]


def test_two_processes_train_like_one(tiny_store, tmp_path):
    """torchrun --nproc_per_node 2: each rank trains on half of every global batch; metrics match one process."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "sae_training", "train", "--from-store", str(tiny_store.path),
           "--hook", HOOK, HOOK_Z, "--no-progress", "--threads", "1", "--out", str(out), *_flags(_KW)]  # fmt: skip
    env = dict(os.environ, PYTHONWARNINGS="ignore", GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    ddp = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("trained 2 SAE(s)") == 1  # rank 0 alone reports
    one = train_sae({"from_store": str(tiny_store.path), "hook": [HOOK, HOOK_Z], "out": str(tmp_path / "one"),
                     "progress": False} | _KW)  # fmt: skip
    summary = json.loads((out / "train.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == one.steps == 16
    for hook in (HOOK, HOOK_Z):
        a, b = summary["eval"][hook], one.eval[hook]
        assert a["tokens"] == b["tokens"] and a["l0"] == pytest.approx(b["l0"])
        assert a["fvu"] == pytest.approx(b["fvu"], rel=0.02, abs=1e-3)
        assert a["dead_fraction"] == pytest.approx(b["dead_fraction"], abs=0.02)
        assert summary["final"][hook]["mse"] == pytest.approx(one.final[hook]["mse"], rel=0.02)
        wa = load_file(out / hook / "sae_weights.safetensors")
        wb = load_file(one.saes[hook] / "sae_weights.safetensors")
        for name in wb:  # the same data per step, gradients averaged: the same weights up to float rounding
            torch.testing.assert_close(wa[name], wb[name], rtol=1e-3, atol=1e-3, msg=f"{hook} {name}")
    # rank 0 alone wrote: one checkpoint series (atomic, no temp files) and one set of outputs
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000008.pt"]
    written = {"config.json", "env.json", "checkpoints", "train.json", "eval.json", "eval.html", "metrics.jsonl", HOOK,
               HOOK_Z}  # fmt: skip
    assert {p.name for p in out.iterdir()} == written
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["hook"]) for r in rows] == [(s, h) for s in range(1, 17) for h in (HOOK, HOOK_Z)]


def test_finished_run_returns_at_once_and_overwrite_retrains(tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--from-store", str(tiny_store.path), "--hook", HOOK, "--out", str(out), "--no-progress",
            "--no-eval", *_flags(_KW)]  # fmt: skip
    assert main(args) == 0
    weights = out / HOOK / "sae_weights.safetensors"
    first = weights.stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "already trained" in said and "--overwrite" in said
    assert weights.stat().st_mtime_ns == first
    assert main(["resume", "--out", str(out)]) == 0 and "already trained" in capsys.readouterr().out
    with pytest.raises(Exception, match="--overwrite"):
        train_sae({"from_store": str(tiny_store.path), "hook": [HOOK], "out": str(out), "progress": False,
                   "eval": False} | _KW | {"k": 4})  # fmt: skip
    res = train_sae({"from_store": str(tiny_store.path), "hook": [HOOK], "out": str(out), "progress": False,
                     "eval": False} | _KW | {"k": 4}, overwrite=True)  # fmt: skip
    assert not res.reused and weights.stat().st_mtime_ns != first
    assert json.loads((out / "config.json").read_text())["sae"]["k"] == 4
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000008.pt"]  # the old series is gone
