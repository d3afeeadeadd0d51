"""Atomic cache entries: complete or absent, never half-written."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from interp.cache import atomic_write_text, cached_dir, entry_is_complete


def _build(out):
    (out / "weights.bin").write_bytes(b"x" * 1000)
    (out / "config.json").write_text(json.dumps({"a": 1}))


def test_builds_once_and_reuses(tmp_path):
    calls = []

    def build(out):
        calls.append(out)
        _build(out)

    p1 = cached_dir("entry", build, key={"v": 1}, root=tmp_path)
    p2 = cached_dir("entry", build, key={"v": 1}, root=tmp_path)
    assert p1 == p2 and len(calls) == 1 and entry_is_complete(p1, {"v": 1})
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_damaged_or_stale_entries_are_rebuilt(tmp_path):
    calls = []

    def build(out):
        calls.append(1)
        _build(out)

    path = cached_dir("entry", build, key={"v": 1}, root=tmp_path)
    (path / "weights.bin").write_bytes(b"x" * 10)  # truncated file
    cached_dir("entry", build, key={"v": 1}, root=tmp_path)
    (path / "config.json").unlink()  # missing file
    cached_dir("entry", build, key={"v": 1}, root=tmp_path)
    cached_dir("entry", build, key={"v": 2}, root=tmp_path)  # new conversion version
    assert len(calls) == 4 and (path / "weights.bin").stat().st_size == 1000


def test_failed_build_leaves_nothing(tmp_path):
    def build(out):
        (out / "weights.bin").write_bytes(b"partial")
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        cached_dir("entry", build, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_killed_build_is_detected_and_rebuilt(tmp_path):
    script = (
        "import time, pathlib\n"
        "from interp.cache import cached_dir\n"
        "def build(out):\n"
        "    (out / 'weights.bin').write_bytes(b'partial')\n"
        f"    (pathlib.Path(r'{tmp_path}') / 'started').touch()\n"
        "    time.sleep(60)\n"
        f"cached_dir('entry', build, root=pathlib.Path(r'{tmp_path / 'cache'}'))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while not (tmp_path / "started").exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.kill()  # kill -9 mid-conversion
    proc.wait()
    root = tmp_path / "cache"
    assert not (root / "entry").exists()  # only a temp dir is left behind
    path = cached_dir("entry", _build, root=root)
    assert entry_is_complete(path) and (path / "weights.bin").stat().st_size == 1000


def test_atomic_write_text(tmp_path):
    target = tmp_path / "sub" / "f.json"
    atomic_write_text(target, "hello")
    atomic_write_text(target, "world")
    assert target.read_text() == "world"
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


def test_atomic_write_respects_umask(tmp_path):
    import os

    target = tmp_path / "g.json"
    old = os.umask(0o022)
    try:
        atomic_write_text(target, "x")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o644
