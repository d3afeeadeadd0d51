"""Resume and scale-out: a capture killed with SIGKILL, rerun, equals an uninterrupted one
byte for byte; two worker processes produce the same store as one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from interp.capture.cli import main
from interp.store import Manifest, open_store

TINY = Path(__file__).with_name("tiny.py")
HOOKS = "blocks.0.hook_resid_post,blocks.1.attn.hook_z"


def _argv(out: Path) -> list[str]:
    # 1 batch (4 contexts x 16 positions) per shard: 24 shards
    return ["--model", f"{TINY}:tiny_model", "--dataset", f"{TINY}:token_source", "--hooks", HOOKS, "--out", str(out),
            "--batch-size", "4", "--memory-budget", "512KiB", "--threads", "1", "--no-progress"]  # fmt: skip


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.fixture
def one_thread():
    """Run in-process captures on one thread, as the subprocesses do (same float results)."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _shards_listed(out: Path) -> int:
    try:
        return len(Manifest.load(out).shards)
    except Exception:  # not written yet, or caught between writes
        return 0


def test_resume_after_kill_is_byte_identical(tmp_path, one_thread):
    killed = tmp_path / "killed"
    env = dict(os.environ, TINY_DELAY="0.25")
    proc = subprocess.Popen([sys.executable, "-m", "interp.capture.cli", *_argv(killed)], env=env)
    try:
        assert main(_argv(tmp_path / "reference")) == 0  # meanwhile, the uninterrupted run
        deadline = time.monotonic() + 120
        while _shards_listed(killed) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the capture finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    partial = Manifest.load(killed)
    assert 3 <= len(partial.shards) < 24 and not partial.complete
    assert main(_argv(killed)) == 0  # the same command resumes
    assert _files(killed) == _files(tmp_path / "reference")
    open_store(killed).verify()


def test_two_workers_equal_one_process(tmp_path, one_thread):
    assert main([*_argv(tmp_path / "parallel"), "--workers", "2"]) == 0
    assert main(_argv(tmp_path / "single")) == 0
    assert _files(tmp_path / "parallel") == _files(tmp_path / "single")
    store = open_store(tmp_path / "parallel")
    assert store.complete and len(store.manifest.shards) == 24
