"""TrainingDashboard: incremental reads of metrics.jsonl, live following, and a real sae_training run's file."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import torch

from interp.cache import atomic_write_text
from interp.errors import InputError
from interp.widgets.training import METRICS_FILE, TrainingDashboard

HOOK = "blocks.1.hook_resid_post"


def _line(step: int, hook: str = HOOK, **kw) -> str:
    row = {"step": step, "tokens": step * 256, "hook": hook, "loss": 10.0 / step, "mse": 9.0 / step, "l0": 8.0,
           "dead_fraction": 0.01 * step, "lr": 1e-3, "tokens_per_s": 5000.0} | kw  # fmt: skip
    return json.dumps(row) + "\n"


def _append(path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def test_refresh_reads_only_new_complete_lines(tmp_path):
    dash = TrainingDashboard(tmp_path)  # the run has not written its metrics yet
    assert dash.rows == [] and dash.status.startswith("waiting") and dash.refresh() == 0
    path = tmp_path / METRICS_FILE
    _append(path, _line(1) + _line(2))
    assert dash.refresh() == 2 and [r["step"] for r in dash.rows] == [1, 2]
    # An incremental reader never looks at old bytes again: change line 1 in place (same size, same file).
    with open(path, "r+b") as f:
        edited = f.read().replace(b'"loss": 10.0', b'"loss": 77.0', 1)
        f.seek(0)
        f.write(edited)
    _append(path, _line(3) + '{"step": 4, "tokens": 10')  # line 4 is still being written
    assert dash.refresh() == 1
    assert [r["step"] for r in dash.rows] == [1, 2, 3] and dash.rows[0]["loss"] == 10.0 and dash.last_step == 3
    _append(path, '24, "hook": "' + HOOK + '", "loss": NaN}\nnot json\n')
    assert dash.refresh() == 1 and dash.rows[-1] == {"step": 4, "tokens": 1024, "hook": HOOK, "loss": None}
    assert dash.n_bad_lines == 1 and dash.last_step == 4
    assert dash.refresh() == 0


def test_a_rewritten_file_is_read_again(tmp_path):
    path = tmp_path / METRICS_FILE
    path.write_text("".join(_line(s) for s in range(1, 9)))
    dash = TrainingDashboard(path)
    assert dash.last_step == 8
    atomic_write_text(path, "".join(_line(s, loss=1.0) for s in range(1, 5)))  # what a resume from step 4 does
    assert dash.refresh() == 4
    assert [r["step"] for r in dash.rows] == [1, 2, 3, 4] and {r["loss"] for r in dash.rows} == {1.0}
    _append(path, _line(5))
    assert dash.refresh() == 1 and dash.last_step == 5


def test_follow_redraws_live_and_stops(tmp_path):
    path = tmp_path / METRICS_FILE
    dash = TrainingDashboard(tmp_path).follow(interval=0.02)
    seen = []
    dash.observe(lambda change: seen.append(len(change["new"])), names="rows")
    try:
        for step in range(1, 4):
            _append(path, _line(step))
            deadline = time.monotonic() + 10
            while dash.last_step < step and time.monotonic() < deadline:
                time.sleep(0.01)
            assert dash.last_step == step
        assert dash.status == "following" and seen[-1] == 3
    finally:
        dash.stop()
    assert dash.status == "not followed" and dash._thread is None
    (tmp_path / "train.json").write_text("{}")  # the run finished: following ends by itself
    dash.follow(interval=0.02)
    dash._thread.join(10)
    assert not dash._thread.is_alive() and dash.status == "finished"


def test_long_runs_are_thinned_keeping_the_last_point(tmp_path):
    path = tmp_path / METRICS_FILE
    path.write_text("".join(_line(s, hook=h) for s in range(1, 101) for h in ("a", "b")))
    dash = TrainingDashboard(path, max_points=10)
    assert len(dash.all_rows) == 200
    for hook in ("a", "b"):
        steps = [r["step"] for r in dash.rows if r["hook"] == hook]
        assert len(steps) <= 11 and steps[0] == 1 and steps[-1] == 100 and steps == sorted(steps)


def test_bad_paths_and_options_are_named(tmp_path):
    (tmp_path / "train.json").write_text("{}")
    with pytest.raises(InputError, match="not a metrics file.*run directory"):
        TrainingDashboard(tmp_path / "train.json")
    with pytest.raises(InputError, match="nor its parent exists"):
        TrainingDashboard(tmp_path / "no" / "such" / "run")
    with pytest.raises(InputError, match="max_points"):
        TrainingDashboard(tmp_path, max_points=1)
    with pytest.raises(InputError, match="interval"):
        TrainingDashboard(tmp_path).follow(interval=0)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """3,200 tokens of a tiny seeded model's residual stream."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from interp.capture import capture_to_store

    cfg = HookedTransformerConfig(n_layers=2, d_model=32, n_ctx=16, d_head=8, n_heads=4, d_mlp=64, d_vocab=100,
                                  act_fn="gelu", normalization_type="LN", device="cpu", seed=0)  # fmt: skip
    tokens = torch.randint(0, 100, (200, 16), generator=torch.Generator().manual_seed(1))
    out = tmp_path_factory.mktemp("store") / "store"
    return capture_to_store(HookedTransformer(cfg).eval(), tokens, [HOOK], out, positions="all", progress=False)


def _train(store, out):
    from sae_training import train_sae

    return train_sae({"from_store": str(store.path), "hook": [HOOK], "arch": "topk", "d_sae": 64, "k": 4,
                      "tokens": 16 * 128, "batch_size": 128, "checkpoint_every": 4, "out": str(out),
                      "progress": False, "eval": False})  # fmt: skip


def test_a_real_training_run_writes_the_metrics_the_dashboard_reads(store, tmp_path):
    from sae_training.trainer import METRICS_FILE as WRITTEN

    assert WRITTEN == METRICS_FILE
    dash = TrainingDashboard(tmp_path / "run")
    _train(store, tmp_path / "run")
    assert dash.refresh() == 16 and dash.last_step == 16 and dash.status == "finished"
    rows = dash.rows
    assert [r["step"] for r in rows] == list(range(1, 17))
    assert [r["tokens"] for r in rows] == [128 * s for s in range(1, 17)]
    assert {r["hook"] for r in rows} == {HOOK} and all(r["l0"] == pytest.approx(4.0, abs=1e-6) for r in rows)
    assert all(r["loss"] > 0 and 0 <= r["dead_fraction"] <= 1 and r["lr"] > 0 and r["tokens_per_s"] > 0
               for r in rows)  # fmt: skip
    assert rows[-1]["loss"] < rows[0]["loss"]


def test_resume_continues_the_metrics_without_repeating_steps(store, tmp_path):
    out = tmp_path / "run"
    _train(store, out)
    first = [json.loads(x) for x in (out / METRICS_FILE).read_text().splitlines()]
    dash = TrainingDashboard(out)
    # As after a crash past the checkpoint of step 12: no done marker, a half-written line at the end.
    (out / "train.json").unlink()
    shutil.rmtree(out / HOOK)
    _append(out / METRICS_FILE, '{"step": 17, "lo')
    _train(store, out)
    again = [json.loads(x) for x in (out / METRICS_FILE).read_text().splitlines()]
    assert [r["step"] for r in again] == list(range(1, 17))
    assert [r["loss"] for r in again] == [r["loss"] for r in first]  # resumed bit for bit from step 12
    assert dash.refresh() == 16 and [r["step"] for r in dash.rows] == list(range(1, 17))



def test_exported_dashboard_renders_the_curves_in_chromium(tmp_path, render_dom):
    path = tmp_path / METRICS_FILE
    path.write_text("".join(_line(s, hook=h) for s in range(1, 13) for h in ("a", "b")))
    dom = render_dom(TrainingDashboard(path).export_html(tmp_path / "dash.html"))
    assert 'data-rendered="1"' in dom and "exported snapshot (following needs a running kernel)" in dom
    assert 'data-role="last-step" class="td-last" data-step="12"' in dom and "step 12 · 3.1k tokens" in dom
    for role in ("chart-loss", "chart-l0", "chart-dead"):
        assert f'data-role="{role}" data-points="24"><svg' in dom
    assert dom.count('<path d="M') == 6  # three panels × two hooks
