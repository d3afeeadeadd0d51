"""The ``interp capture`` and ``interp store`` commands."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from interp.capture.cli import main
from interp.capture.cli import register as register_capture
from interp.store.cli import register as register_store

TINY = Path(__file__).with_name("tiny.py")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="interp")
    sub = p.add_subparsers(dest="command")
    register_capture(sub)
    register_store(sub)
    return p


def _argv(out, hooks="blocks.0.hook_resid_post"):
    return ["--model", f"{TINY}:tiny_model", "--dataset", f"{TINY}:token_source", "--hooks", hooks,
            "--out", str(out), "--batch-size", "8", "--no-progress"]  # fmt: skip


def test_capture_then_store_commands(tmp_path, capsys):
    p = _parser()
    args = p.parse_args(["capture", *_argv(tmp_path / "s")])
    assert args.func(args) == 0
    assert "1,440" in capsys.readouterr().out
    args = p.parse_args(["store", "info", str(tmp_path / "s"), "--show", "0", "15"])
    assert args.func(args) == 0
    assert '"context": 1' in capsys.readouterr().out
    args = p.parse_args(["store", "verify", str(tmp_path / "s")])
    assert args.func(args) == 0
    assert "shards match their SHA-256" in capsys.readouterr().out
    shard = sorted((tmp_path / "s").glob("shard-*.safetensors"))[0]
    with open(shard, "r+b") as f:  # truncate one shard: verify names it
        f.truncate(shard.stat().st_size // 2)
    from interp.cli import main as interp_main

    assert interp_main(["store", "verify", str(tmp_path / "s")]) == 1
    assert shard.name in capsys.readouterr().err


def test_capture_errors_name_the_fix(tmp_path, capsys):
    assert main(_argv(tmp_path / "s", hooks="blocks.0.hook_resid_pots")) == 1
    err = capsys.readouterr().err
    assert "unknown hook name" in err and "blocks.0.hook_resid_post" in err
    assert main(_argv(tmp_path / "s")) == 0
    assert main(_argv(tmp_path / "s", hooks="blocks.1.hook_resid_post")) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_help_lists_examples(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["capture", "--help"])
    text = capsys.readouterr().out
    assert "--hooks" in text and "examples:" in text and "--workers" in text
