"""``interp atlas`` on the shipped Bible LMs: tables, figures, activation stats and correlation; reruns resume."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from interp.atlas.bible_lms import load_bible_lm
from interp.atlas.tables import atlas_columns, load_atlas, load_tables
from interp.cli import main
from interp.errors import InputError


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store of bible-lm-s0's MLP activations on 8 random contexts of compact ids."""
    from interp.capture import TokenSource, capture_to_store

    path = tmp_path_factory.mktemp("atlas") / "store"
    model = load_bible_lm("bible-lm-s0")
    tokens = torch.randint(2, 2048, (8, 32), generator=torch.Generator().manual_seed(0))
    capture_to_store(model, TokenSource(tokens, name="t", bos=False), ["blocks.0.mlp.hook_post",
                     "blocks.1.mlp.hook_post"], path, progress=False)  # fmt: skip
    return path


def test_cli_writes_every_stage_and_resumes(tmp_path, store, capsys):
    argv = ["atlas", "--model", "bible-lm-s0", "--compare", "bible-lm-s1", "--tokens", "512", "--store", str(store),
            "--name", "bible", "--root", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    run = tmp_path / "bible"
    assert str(run / "weights") in out and str(run / "figures.html") in out
    weights = load_tables(run / "weights")
    assert len(weights) == 2 * 512 and weights.top_tokens[0][0] != weights.top_tokens[1][0]
    assert isinstance(weights.top_tokens[0][0], str)
    html = (run / "figures.html").read_text()
    assert html.count("plotly.js v") == 1 and "kurtosis" in html  # plotly.js inlined once: opens offline
    acts = load_tables(run / "activations")
    assert len(acts) == 1024 and acts.act_frequency.between(0, 1).all()
    corr = pd.read_parquet(run / "correlation" / "layer_00.parquet")
    assert set(corr.side) == {"a", "b"} and corr.max_corr.between(-1.01, 1.01).all()
    summary = json.loads((run / "correlation" / "done.json").read_text())
    assert summary["n_tokens"] >= 512 and 0 <= summary["a.L1"]["universal"] <= 1
    merged = atlas_columns(load_atlas(run))
    assert {"act_frequency", "max_corr", "vocab_kurtosis"} <= set(merged.columns) and len(merged) == 1024
    stamp = (run / "weights" / "layer_00.parquet").stat().st_mtime_ns
    assert main(argv) == 0  # rerun: finished stages are skipped
    assert (run / "weights" / "layer_00.parquet").stat().st_mtime_ns == stamp


def test_atlas_columns_picks_report_columns(tmp_path):
    from interp.atlas.weights import weight_scores

    table = weight_scores(load_bible_lm("bible-lm-s1"), layers=1)
    cols = atlas_columns(table)
    assert cols.index.names == ["layer", "neuron"] and len(cols) == 512
    assert list(cols.columns) == ["io_class", "cos_in_out", "vocab_kurtosis", "vocab_skew", "null_frac"]
    with pytest.raises(InputError, match="atlas table"):
        atlas_columns(pd.DataFrame({"x": [1]}))


def test_cli_errors_name_the_fix(tmp_path, capsys):
    assert main(["atlas", "--model", "bible-lm-s7", "--root", str(tmp_path), "--name", "x"]) == 1
    assert "bible-lm-s0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # an unknown model fails before the run directory is made
    with pytest.raises(InputError, match="--layers"):
        from interp.atlas.cli import parse_layers

        parse_layers("a:b")


def test_report_shows_atlas_columns_beside_labels(tmp_path, capsys):
    """``interp report --atlas RUN``: the atlas's per-neuron columns join the labels' table."""
    from interp.labeling.results import LabelSet, UnitLabel

    assert main(["atlas", "--model", "bible-lm-s0", "--layers", "1", "--name", "a", "--root", str(tmp_path)]) == 0
    labels = LabelSet([UnitLabel(i, f"unit {i}", f"tok:{i}", 1.0, 0.5, 0.1, 1, 2) for i in (3, 5)],
                      {"hook": "blocks.1.mlp.hook_post"})  # fmt: skip
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "labels.json").write_text(labels.to_json())
    capsys.readouterr()
    assert main(["report", str(tmp_path / "labels"), "--atlas", str(tmp_path / "a")]) == 0
    html = (tmp_path / "labels" / "labels.html").read_text()
    expected = atlas_columns(load_atlas(tmp_path / "a")).loc[(1, 5), "vocab_kurtosis"]
    assert '"extra":["io_class","cos_in_out","vocab_kurtosis"' in html and str(round(float(expected), 3)) in html
