"""The command line: help from field docstrings, config files, the resolved config saved, eval."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from sae_training.cli import build_parser, main
from sae_training.config import DataSpec, OptimSpec, RunSpec, SAESpec, TrainConfig, field_docs

from .conftest import HOOK


def test_every_field_is_a_documented_flag():
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    for cls in (SAESpec, DataSpec, OptimSpec, RunSpec):
        docs = field_docs(cls)
        for name in cls.__dataclass_fields__:
            assert f"--{name.replace('_', '-')}" in help_text
            assert docs.get(name), f"{cls.__name__}.{name} has no docstring"
            assert " ".join(docs[name].split())[:40] in help_text


def test_help_imports_no_torch():
    code = "import sys; from sae_training.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_config_round_trips_flat_and_sectioned():
    cfg = TrainConfig.from_dict({"from_store": "s", "hook": ["h"], "k": 16, "lr": 1e-3})
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(KeyError, match="nearest|Nearest"):
        TrainConfig.from_dict({"from_store": "s", "lr_warmpu": 1})


def test_train_from_yaml_config_then_eval(tiny_store, tmp_path, capsys):
    conf = {"data": {"from_store": str(tiny_store.path), "hook": [HOOK], "tokens": 2048},
            "sae": {"arch": "standard", "d_sae": 128}, "optim": {"batch_size": 256}}  # fmt: skip
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(conf))
    out = tmp_path / "run"
    rc = main(["train", "--config", str(tmp_path / "c.yaml"), "--l1-coefficient", "2", "--out", str(out),
               "--no-progress", "--no-eval"])  # fmt: skip
    assert rc == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["sae"]["arch"] == "standard" and saved["sae"]["l1_coefficient"] == 2.0
    assert saved["data"]["tokens"] == 2048
    rc = main(["eval", "--sae", str(out / HOOK), "--from-store", str(tiny_store.path), "--tokens", "512"])
    assert rc == 0
    assert json.loads((out / HOOK / "eval.json").read_text())[HOOK]["tokens"] >= 512


def test_cli_errors_are_one_line_with_the_fix(tmp_path, capsys):
    assert main(["train", "--from-store", str(tmp_path / "nope"), "--hook", HOOK, "--out", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["resume", "--out", str(tmp_path / "none")]) == 2
