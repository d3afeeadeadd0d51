"""SAE training dashboard: loss, L0 and dead-fraction curves, live while :mod:`sae_training` trains.

It follows the metrics file that training writes, ``<run>/metrics.jsonl`` (one
JSON line per hook every few steps; format in :mod:`sae_training.trainer`).
:meth:`TrainingDashboard.refresh` reads only what was appended since the last
read (it remembers the file offset, leaves a partly written last line for the
next read, and starts over when a resume rewrites the file);
:meth:`TrainingDashboard.follow` does so every ``interval`` seconds in a daemon
thread until :meth:`TrainingDashboard.stop` (or until the run finishes). The
rows are a synced trait, so the charts redraw live in the notebook, and a view
that connects late draws the whole run.

>>> from sae_training import train_sae                              # doctest: +SKIP
>>> dash = TrainingDashboard("runs/sae").follow(interval=1.0)        # a cell of its own  # doctest: +SKIP
>>> train_sae(cfg)                  # in another cell, or in a terminal                     # doctest: +SKIP
>>> dash.stop(); dash.export_html("training.html")                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from pathlib import Path
from typing import Any

import traitlets

from interp.errors import InputError
from interp.widgets._base import View

__all__ = ["TrainingDashboard", "METRICS_FILE"]

log = logging.getLogger(__name__)
#: The file name ``sae_training`` writes in a run directory (``sae_training.trainer.METRICS_FILE``).
METRICS_FILE = "metrics.jsonl"
_DONE_MARKER = "train.json"  # written by sae_training when a run has finished

_ESM = r"""export default {
  render({ model, el }) {
    const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
    const PANELS = [["loss", "loss", "chart-loss"], ["l0", "L0 (active latents per token)", "chart-l0"],
                    ["dead_fraction", "dead fraction", "chart-dead"]];
    const ENT = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
    const esc = (t) => String(t).replace(/[&<>"]/g, (c) => ENT[c]);
    const num = (x) => (x == null ? "–" : Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0)
      ? x.toExponential(2) : +x.toPrecision(4) + "");
    const big = (x) => (x >= 1e9 ? (x / 1e9).toFixed(2) + "G" : x >= 1e6 ? (x / 1e6).toFixed(2) + "M"
      : x >= 1e3 ? (x / 1e3).toFixed(1) + "k" : String(Math.round(x)));
    el.classList.add("interp-training");
    el.innerHTML = `<div class="td-head"><b>SAE training</b> <span data-role="source"></span></div>
      <div data-role="last-step" class="td-last"></div><div data-role="legend" class="td-legend"></div>
      <div class="td-panels">${PANELS.map((p) => `<div class="td-panel"><div class="td-title">${p[1]}</div>
        <div data-role="${p[2]}"></div><div class="td-hover" data-hover="${p[0]}"></div></div>`).join("")}</div>`;
    const q = (r) => el.querySelector(`[data-role="${r}"]`);
    const W = 340, H = 200, L = 52, R = 10, T = 8, B = 26;

    function ticks(lo, hi, n) {
      if (!(hi > lo)) return [lo];
      const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
      const out = [];
      for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
      return out;
    }
    function chart(key, series, hooks) {
      const pts = series.flatMap((s) => s.pts.filter((p) => p[1] != null));
      if (!pts.length) return { svg: `<svg width="${W}" height="${H}"><text x="${W / 2}" y="${H / 2}" ` +
        `text-anchor="middle" fill="#999">no data yet</text></svg>`, sx: null };
      const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
      let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
      const logy = key === "loss" && y0 > 0 && y1 / y0 > 20;
      const f = logy ? Math.log10 : (v) => v;
      if (!logy) { y0 = Math.min(y0, 0); }
      let fy0 = f(y0), fy1 = f(y1);
      if (fy1 === fy0) { fy1 += 1; fy0 -= logy ? 1 : 0; }
      if (x1 === x0) x1 = x0 + 1;
      const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
      const sy = (y) => T + (1 - (f(y) - fy0) / (fy1 - fy0)) * (H - T - B);
      let svg = `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`;
      const logTicks = () => [...Array(Math.ceil(fy1) - Math.floor(fy0) + 1).keys()]
        .flatMap((i) => [1, 2, 5].map((m) => m * Math.pow(10, Math.floor(fy0) + i))).filter((v) => v >= y0 && v <= y1);
      const yt = logy ? logTicks() : ticks(fy0, fy1, 4);
      for (const v of yt) {
        const y = sy(v).toFixed(1);
        svg += `<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#eee"/>` +
          `<text x="${L - 4}" y="${+y + 3}" text-anchor="end" font-size="10" fill="#666">${num(v)}</text>`;
      }
      for (const v of ticks(x0, x1, 4)) {
        svg += `<text x="${sx(v).toFixed(1)}" y="${H - 8}" text-anchor="middle" font-size="10" fill="#666">` +
          `${big(v)}</text>`;
      }
      svg += `<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#999"/>` +
        `<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#999"/>`;
      series.forEach((s) => {
        const d = s.pts.filter((p) => p[1] != null).map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},` +
          `${sy(p[1]).toFixed(1)}`).join("");
        svg += `<path d="${d}" fill="none" stroke="${COLORS[hooks.indexOf(s.hook) % COLORS.length]}" ` +
          `stroke-width="1.5" data-hook="${esc(s.hook)}"/>`;
      });
      svg += `<line class="td-cursor" x1="0" x2="0" y1="${T}" y2="${H - B}" stroke="#555" stroke-dasharray="2 2" ` +
        `visibility="hidden"/></svg>`;
      return { svg, sx, x0, x1 };
    }
    function draw() {
      const rows = model.get("rows") || [];
      const hooks = [...new Set(rows.map((r) => r.hook || ""))];
      const status = model.standalone ? "exported snapshot (following needs a running kernel)" : model.get("status");
      q("source").textContent = `${model.get("source") || ""} · ${status || ""}`;
      const last = rows.length ? rows[rows.length - 1] : null;
      const ls = q("last-step");
      ls.setAttribute("data-step", String(model.get("last_step")));
      ls.textContent = last ? `step ${last.step} · ${big(last.tokens || 0)} tokens · ` +
        `${big(last.tokens_per_s || 0)} tokens/s · lr ${num(last.lr)} · loss ${num(last.loss)} · ` +
        `L0 ${num(last.l0)} · dead ${num(last.dead_fraction)}` : "waiting for the first metrics…";
      q("legend").innerHTML = hooks.length > 1 ? hooks.map((h, i) =>
        `<span style="color:${COLORS[i % COLORS.length]}">━ ${esc(h)}</span>`).join(" ") : esc(hooks[0] || "");
      for (const [key, , role] of PANELS) {
        const series = hooks.map((h) => ({ hook: h, pts: rows.filter((r) => (r.hook || "") === h)
          .map((r) => [r.step, r[key]]) }));
        const c = chart(key, series, hooks), box = q(role);
        box.innerHTML = c.svg;
        box.setAttribute("data-points", String(series.reduce((n, s) => n + s.pts.length, 0)));
        const svg = box.querySelector("svg"), cur = box.querySelector(".td-cursor");
        const hover = el.querySelector(`[data-hover="${key}"]`);
        if (!c.sx) { hover.textContent = ""; continue; }
        svg.addEventListener("mousemove", (ev) => {
          const r = svg.getBoundingClientRect(), px = ((ev.clientX - r.left) / r.width) * W;
          const step = c.x0 + ((px - L) / (W - L - R)) * (c.x1 - c.x0);
          const parts = series.map((s) => {
            let best = null;
            for (const p of s.pts) if (best === null || Math.abs(p[0] - step) < Math.abs(best[0] - step)) best = p;
            return best ? `${hooks.length > 1 ? s.hook + ": " : ""}step ${best[0]} → ${num(best[1])}` : "";
          });
          hover.textContent = parts.filter(Boolean).join(" · ");
          cur.setAttribute("x1", px); cur.setAttribute("x2", px); cur.setAttribute("visibility", "visible");
        });
        svg.addEventListener("mouseleave", () => cur.setAttribute("visibility", "hidden"));
      }
    }
    for (const k of ["rows", "status", "source", "last_step"]) model.on(`change:${k}`, draw);
    draw();
  },
};
"""

_CSS = """
.interp-training{font:13px system-ui,sans-serif}
.interp-training .td-head span{color:#666}
.interp-training .td-last{margin:.3em 0;font-family:ui-monospace,monospace}
.interp-training .td-panels{display:flex;flex-wrap:wrap;gap:1em}
.interp-training .td-title{font-weight:600}
.interp-training .td-hover{min-height:1.2em;color:#444;font-size:12px}
"""


def _metrics_path(path: str | Path) -> Path:
    """The metrics file of a run directory, or ``path`` itself when it names a ``.jsonl`` file."""
    p = Path(path)
    if p.is_file() or p.suffix == ".jsonl":
        if p.suffix != ".jsonl":
            raise InputError(f"{str(p)!r} is not a metrics file; TrainingDashboard reads a run directory or its "
                             f"{METRICS_FILE}. Fix: pass the run directory (sae_training's --out).")  # fmt: skip
        file = p
    else:
        file = p / METRICS_FILE
    if not file.parent.exists() and not file.parent.parent.exists():
        raise InputError(f"neither {str(file.parent)!r} nor its parent exists; expected a training run directory "
                         f"(sae_training's --out) or its {METRICS_FILE}. Fix the path.")  # fmt: skip
    return file


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """The row with NaN/Inf replaced by None (views hold finite numbers)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


class TrainingDashboard(View):
    """Loss, L0 and dead-fraction curves of a :mod:`sae_training` run, read from its ``metrics.jsonl``.

    Args:
        path: the run directory (``--out``) or its ``metrics.jsonl``; the file may not exist yet
            (a run about to start): the dashboard waits for it.
        max_points: most points per hook sent to the view (long runs are thinned evenly; the last
            point always stays).

    Synced traits: ``rows`` (``{step, tokens, hook, loss, mse, l0, dead_fraction, lr, tokens_per_s, time}``),
    ``last_step``, ``source``, ``status``, ``n_bad_lines`` (lines that were not JSON).

    Raises:
        InputError: a path that is neither a run directory nor a ``.jsonl`` file, or ``max_points < 2``.

    Example::

        dash = TrainingDashboard("runs/sae").follow(interval=1.0)   # display it; it redraws live
        ...                                                          # training runs elsewhere
        dash.stop()
        dash.refresh()                                               # or read new lines by hand
    """

    _esm = _ESM
    _css = _CSS
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    last_step = traitlets.Int(0).tag(sync=True)
    source = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    n_bad_lines = traitlets.Int(0).tag(sync=True)

    def __init__(self, path: str | Path, *, max_points: int = 2000, **kwargs: Any) -> None:
        if max_points < 2:
            raise InputError(f"max_points must be >= 2, got {max_points}.")
        self.path = _metrics_path(path)
        self.max_points = max_points
        self._all: list[dict[str, Any]] = []
        self._offset, self._inode = 0, None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        super().__init__(source=str(self.path), **kwargs)
        self.refresh()

    @property
    def all_rows(self) -> list[dict[str, Any]]:
        """Every row read so far (``rows`` holds at most ``max_points`` per hook)."""
        return list(self._all)

    @property
    def finished(self) -> bool:
        """Whether the run has finished (``sae_training`` wrote ``train.json`` beside the metrics file)."""
        return (self.path.parent / _DONE_MARKER).is_file()

    def _read_new(self) -> tuple[list[dict[str, Any]], bool]:
        """Rows of the complete lines appended since the last read, and whether the file was read anew."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return [], False
        replaced = st.st_ino != self._inode or st.st_size < self._offset  # a resume rewrote it, or it was emptied
        if replaced:
            self._offset, self._inode, self._all, self.n_bad_lines = 0, st.st_ino, [], 0
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n")
        if end < 0:
            return [], replaced  # nothing, or only a line still being written
        self._offset += end + 1
        rows = []
        for line in data[: end + 1].splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                self.n_bad_lines += 1
                continue
            rows.append(_finite(row))
        return rows, replaced

    def _add(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            hook = row.get("hook", "")
            if any(r.get("hook", "") == hook and r["step"] >= row["step"] for r in self._all[-64:]):
                # a restart from an earlier step without a rewrite: the newer lines replace the older ones
                self._all = [r for r in self._all if r.get("hook", "") != hook or r["step"] < row["step"]]
            self._all.append(row)

    def _thinned(self) -> list[dict[str, Any]]:
        hooks = dict.fromkeys(r.get("hook", "") for r in self._all)
        if len(self._all) <= self.max_points * max(len(hooks), 1):
            return list(self._all)
        out = []
        for hook in hooks:
            mine = [r for r in self._all if r.get("hook", "") == hook]
            stride = math.ceil(len(mine) / self.max_points)
            out += mine[::stride] + ([mine[-1]] if (len(mine) - 1) % stride else [])
        return sorted(out, key=lambda r: r["step"])

    def refresh(self) -> int:
        """Read the lines appended since the last call and update the view; returns how many rows were new.

        A partly written last line is left for the next call; a file that was rewritten (a resumed run
        drops the lines past its checkpoint) or emptied is read again from the start.
        """
        with self._lock:
            new, reread = self._read_new()
            if not new and not reread:
                self._set_status()
                return 0
            self._add(new)
            with self.hold_sync():
                self.rows = self._thinned()
                self.last_step = max((r["step"] for r in self._all), default=0)
                self._set_status()
            return len(new)

    def _set_status(self) -> None:
        if not self.path.exists():
            status = "waiting for the run to write its metrics"
        elif self.finished:
            status = "finished"
        else:
            status = "following" if self._thread is not None and self._thread.is_alive() else "not followed"
        if status != self.status:
            self.status = status

    def follow(self, interval: float | int = 1.0, *, stop_when_done: bool = True) -> TrainingDashboard:
        """Read new lines every ``interval`` seconds in a daemon thread; returns the dashboard (display it).

        Args:
            interval: seconds between reads.
            stop_when_done: stop once the run has finished (``train.json`` written) and everything is read.
        """
        if not interval > 0:
            raise InputError(f"interval must be > 0 seconds, got {interval}.")
        self.stop()
        stop = self._stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                try:
                    self.refresh()
                except Exception:  # noqa: BLE001 - a thread must not die silently: log and show it
                    log.exception("training dashboard: reading %s failed", self.path)
                    self.status = f"stopped: reading {self.path} failed (see the log)"
                    return
                if stop_when_done and self.finished:
                    self.refresh()
                    self.status = "finished"
                    return
                stop.wait(interval)

        self._thread = threading.Thread(target=poll, name=f"interp-dashboard:{self.path}", daemon=True)
        self._thread.start()
        self._set_status()
        return self

    def stop(self, timeout: float | int = 5.0) -> None:
        """Stop following (waits up to ``timeout`` seconds for the reading thread to end)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None
        self._set_status()
