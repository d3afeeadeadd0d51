"""Static figures through kaleido and the system Chromium: many figures and formats in ONE browser session."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import plotly.graph_objects as go
import pytest

from interp.errors import InputError
from interp.reports import static
from interp.reports.static import export_figures, find_chromium

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-"}


def _chromium():
    try:
        return find_chromium()
    except InputError as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must render static figures: {e}")
        pytest.skip(str(e))


def test_three_figures_three_formats_one_browser(tmp_path, monkeypatch):
    exe = _chromium()
    launched: list[subprocess.Popen] = []

    class CountingPopen(subprocess.Popen):  # every process choreographer starts goes through here
        def __init__(self, args, *a, **kw):
            super().__init__(args, *a, **kw)
            if any(str(exe) in str(x) for x in args):
                launched.append(self)

    monkeypatch.setattr(subprocess, "Popen", CountingPopen)
    figs = {"line": go.Figure(go.Scatter(y=[1, 3, 2])), "bars": go.Figure(go.Bar(y=[2, 1])),
            "heat map": go.Figure(go.Heatmap(z=[[1, 2], [3, 4]]))}  # fmt: skip

    async def in_a_running_loop():  # as in a notebook, where an event loop is already running
        return export_figures(figs, tmp_path / "out", "png,svg,pdf", width=320, height=240, scale=2)

    paths = asyncio.run(in_a_running_loop())
    assert [p.name for p in paths] == [f"{n}.{f}" for n in ("line", "bars", "heat-map") for f in ("png", "svg", "pdf")]
    for p in paths:
        data = p.read_bytes()
        if p.suffix == ".svg":
            assert data.lstrip().startswith(b"<svg") and b"</svg>" in data
        else:
            assert data.startswith(MAGIC[p.suffix[1:]]) and len(data) > 1000
    png = paths[0].read_bytes()
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (640, 480)  # size × scale
    assert len(launched) == 1  # one Chromium for nine images
    deadline = time.monotonic() + 10
    while launched[0].poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert launched[0].poll() is not None  # and it was closed
    assert not list((tmp_path / "out").glob(".*.tmp"))  # atomic writes leave no temporaries


def test_missing_chromium_names_what_was_searched(monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chrome")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(static, "_TYPICAL", ("/nonexistent/chromium",))
    with pytest.raises(InputError, match=r"BROWSER_PATH /nonexistent/chrome.*apt-get install chromium"):
        export_figures(go.Figure(), "/tmp/unused", "png")


def test_bad_formats_and_names():
    with pytest.raises(InputError, match="unknown static format"):
        export_figures(go.Figure(), "/tmp/unused", ("png", "gif"))
    with pytest.raises(InputError, match="clashing file names"):
        export_figures({"a b": go.Figure(), "a-b": go.Figure()}, "/tmp/unused", "png")
