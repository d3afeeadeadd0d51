"""Circuit graph explorer: a circuit's scored edges drawn layer by layer, filtered by a threshold slider.

It renders a :class:`circuits.result.Circuit` (from :func:`circuits.attribution.eap`,
:func:`circuits.acdc.acdc`, :func:`circuits.patching.patch_edges`, or a saved
``circuit.json``) as SVG: one row per layer (``input`` at the bottom, ``logits``
on top, an MLP half a row above its layer's heads), heads along the row, placed
by :func:`circuits.figure.node_positions` (the plotly figure's layout, turned a
quarter so that layers are rows). Each edge is one line, blue when patching it
raises the metric and red when it lowers it, as wide as its ``|score|``; a
receiver's query, key and value inputs enter its node left, centre and right.

The slider steps through the edges' ``|score|`` values in order, so each step
hides about one edge, and filters in the browser (it also works in an exported
page). The threshold is a synced trait: ``view.threshold = 0.1`` moves the
slider. With a known circuit (``truth=``), true positives are green, false
positives orange, and missed true edges dashed grey; the header shows precision
and recall at the current threshold.

>>> from circuits.models import load_circuit_model, induction_task, circuit_truth   # doctest: +SKIP
>>> from circuits.attribution import eap                                              # doctest: +SKIP
>>> model, _ = load_circuit_model("induction-2l")                                     # doctest: +SKIP
>>> view = CircuitExplorer(eap(model, induction_task("induction-2l")),              # doctest: +SKIP
...                        truth=circuit_truth("induction-2l"), threshold=0.05)
>>> view                               # in a notebook: drag the slider, hover edges  # doctest: +SKIP
>>> view.export_html("circuit.html")   # the same view, offline                       # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import traitlets

from interp.errors import InputError
from interp.widgets._base import View

__all__ = ["CircuitExplorer"]

_SLOTS = {"q": 0, "k": 1, "v": 2}  # which side of its node a receiver's input enters

# The view: SVG built once per data change; the threshold only toggles visibility (thousands of edges stay fast).
_ESM = r"""export default {
  render({ model, el }) {
    const POS = "#2166ac", NEG = "#b2182b", TP = "#1a9850", FP = "#f46d43", MISS = "#9e9e9e";
    const ENT = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
    const esc = (t) => String(t).replace(/[&<>"]/g, (c) => ENT[c]);
    const fmt = (x) => (Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(4).replace(/\.?0+$/, "") : x.toExponential(2));
    el.classList.add("interp-circuit");
    el.innerHTML = `<div class="ic-head"><b data-role="title"></b></div>
      <div class="ic-controls"><label>threshold |score| ≥ <input type="range" data-role="threshold" min="0" step="1">
      <span data-role="threshold-value"></span></label> <span data-role="edge-count"></span>
      <span data-role="truth"></span></div>
      <div data-role="graph" class="ic-graph"></div>
      <div data-role="info" class="ic-info">hover an edge or a node</div>`;
    const q = (r) => el.querySelector(`[data-role="${r}"]`);
    const slider = q("threshold"), graph = q("graph"), info = q("info");
    let edges = [], nodes = [], sortedAbs = [], paths = [], circles = [], widths = [];
    const colour = (e) => (model.get("has_truth") ? (e.true ? TP : FP) : e.score >= 0 ? POS : NEG);

    function draw() {
      nodes = model.get("nodes") || []; edges = model.get("edges") || [];
      q("title").textContent = model.get("title") || "";
      sortedAbs = edges.map((e) => Math.abs(e.score)).sort((a, b) => a - b);
      slider.max = String(sortedAbs.length);
      const rows = nodes.map((n) => n.row), cols = nodes.map((n) => n.col);
      const r0 = Math.min(...rows), r1 = Math.max(...rows), c0 = Math.min(...cols), c1 = Math.max(...cols);
      const colW = 70, rowH = 110, pad = 30, R = 12;
      const X = (n) => pad + (n.col - c0) * colW + colW / 2, Y = (n) => pad + (r1 - n.row) * rowH + 10;
      const W = 2 * pad + (c1 - c0 + 1) * colW, H = 2 * pad + (r1 - r0) * rowH + 20;
      const top = Math.max(...sortedAbs, 1e-30);
      widths = edges.map((e) => (0.6 + (5 * Math.abs(e.score)) / top).toFixed(2));
      let svg = `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" style="max-width:100%;height:auto">`;
      edges.forEach((e, i) => {
        const a = nodes[e.u], b = nodes[e.v];
        const x0 = X(a), y0 = Y(a) - R, x1 = X(b) + (e.slot - 1) * R * 0.7, y1 = Y(b) + R, my = (y0 + y1) / 2;
        svg += `<path data-e="${i}" d="M${x0},${y0} C${x0},${my} ${x1},${my} ${x1},${y1}" fill="none" ` +
          `stroke="${colour(e)}" stroke-width="${widths[i]}" stroke-opacity="0.7">` +
          `<title>${esc(e.name)}: ${fmt(e.score)}</title></path>`;
      });
      nodes.forEach((n, i) => {
        svg += `<g data-n="${i}"><circle cx="${X(n)}" cy="${Y(n)}" r="${R}" fill="#fff" stroke="#444"/>` +
          `<text x="${X(n)}" y="${Y(n) + 3.5}" text-anchor="middle" font-size="9" pointer-events="none">` +
          `${esc(n.name)}</text>` +
          `<title>${esc(n.name)}</title></g>`;
      });
      graph.innerHTML = svg + "</svg>";
      paths = Array.from(graph.querySelectorAll("path[data-e]"));
      circles = Array.from(graph.querySelectorAll("g[data-n]"));
      update();
    }

    function shownMask() {
      const t = model.get("threshold") || 0;
      return edges.map((e) => Math.abs(e.score) >= t);
    }

    function update() {
      const t = model.get("threshold") || 0, shown = shownMask(), truth = model.get("has_truth");
      let k = 0; while (k < sortedAbs.length && sortedAbs[k] < t) k++;
      slider.value = String(k);
      q("threshold-value").textContent = fmt(t);
      const active = new Set();
      let n = 0, tp = 0, nTrue = 0;
      edges.forEach((e, i) => {
        const p = paths[i]; if (!p) return;
        if (shown[i]) { n++; active.add(e.u); active.add(e.v); if (e.true) tp++; }
        if (e.true) nTrue++;
        const missed = truth && e.true && !shown[i];
        p.style.display = shown[i] || missed ? "" : "none";
        p.setAttribute("stroke-dasharray", missed ? "3 3" : "none");
        p.setAttribute("stroke", missed ? MISS : colour(e));
        p.setAttribute("stroke-width", missed ? "1" : widths[i]);
      });
      circles.forEach((g, i) => { g.style.opacity = active.has(i) ? "1" : "0.3"; });
      const ec = q("edge-count"), dropped = model.get("n_dropped") || 0;
      ec.setAttribute("data-count", String(n));
      ec.textContent = `${n} of ${edges.length + dropped} edges shown` +
        (dropped ? ` (${dropped} smallest not loaded)` : "");
      const tr = q("truth");
      if (truth) {
        const prec = n ? tp / n : 0, rec = nTrue ? tp / nTrue : 0;
        tr.innerHTML = ` · <span style="color:${TP}">true positives ${tp}</span>` +
          ` · <span style="color:${FP}">false positives ${n - tp}</span>` +
          ` · <span style="color:${MISS}">missed ${nTrue - tp}</span>` +
          ` · precision ${prec.toFixed(2)} · recall ${rec.toFixed(2)}`;
        tr.setAttribute("data-precision", prec.toFixed(4)); tr.setAttribute("data-recall", rec.toFixed(4));
      } else tr.textContent = "";
    }

    function nodeInfo(i) {
      const shown = shownMask(); let nin = 0, nout = 0, sin = 0, sout = 0;
      edges.forEach((e, j) => {
        if (!shown[j]) return;
        if (e.v === i) { nin++; sin += e.score; }
        if (e.u === i) { nout++; sout += e.score; }
      });
      return `${nodes[i].name} · ${nin} edges in (Σ ${fmt(sin)}) · ${nout} edges out (Σ ${fmt(sout)})`;
    }
    graph.addEventListener("mouseover", (ev) => {
      const p = ev.target.closest("[data-e]"), g = ev.target.closest("[data-n]");
      if (p) {
        const e = edges[+p.getAttribute("data-e")];
        const tag = e.true ? " · in the true circuit" : " · not in the true circuit";
        info.textContent = `${e.name}: score ${fmt(e.score)}` + (model.get("has_truth") ? tag : "");
        p.setAttribute("stroke-opacity", "1");
      } else if (g) info.textContent = nodeInfo(+g.getAttribute("data-n"));
    });
    graph.addEventListener("mouseout", (ev) => {
      const p = ev.target.closest("[data-e]");
      if (p) p.setAttribute("stroke-opacity", "0.7");
    });
    slider.addEventListener("input", () => {
      const k = +slider.value, N = sortedAbs.length;
      const t = k < N ? sortedAbs[k] : (N ? sortedAbs[N - 1] * (1 + 1e-9) + 1e-12 : 0);
      model.set("threshold", t); model.save_changes(); update();
    });
    model.on("change:threshold", update);
    for (const k of ["edges", "nodes", "title", "has_truth", "n_dropped"]) model.on(`change:${k}`, draw);
    draw();
  },
};
"""

_CSS = """
.interp-circuit{font:13px system-ui,sans-serif}
.interp-circuit .ic-controls{margin:.4em 0}
.interp-circuit input[type=range]{width:16em;vertical-align:middle}
.interp-circuit .ic-info{min-height:1.4em;color:#333;font-family:ui-monospace,monospace}
.interp-circuit path:hover{stroke-opacity:1}
"""


def _truth_edges(circuit: Any, truth: Any) -> set[str] | None:
    """Names of the true edges from ``circuit_truth(...)``'s dict, edge names, pairs or a ``[up, recv]`` mask."""
    if truth is None:
        return None
    if isinstance(truth, dict):
        if "circuit_edges" not in truth:
            raise InputError(f"truth dict has keys {sorted(truth)[:8]} but no 'circuit_edges'; pass "
                             "circuits.models.circuit_truth(name), or the true edge names as a list.")  # fmt: skip
        truth = truth["circuit_edges"]
    g = circuit.graph
    mask = truth if isinstance(truth, torch.Tensor) else g.edge_mask(truth)  # names checked, nearest names on typos
    if mask.shape != g.valid.shape:
        raise InputError(f"truth mask has shape {tuple(mask.shape)}, the circuit's graph {tuple(g.valid.shape)} "
                         "[up, recv]. Build it with circuit.graph.edge_mask(edge_names).")  # fmt: skip
    rows, cols = (mask.bool() & g.valid).nonzero().T.tolist()
    return {f"{g.upstream[i]}->{g.receivers[j]}" for i, j in zip(rows, cols, strict=True)}


def _layout(circuit: Any) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Nodes ``{name, col, row}`` (``row``: layer, ``col``: head) and their indices, in topological order."""
    from circuits.figure import node_positions
    from circuits.result import node_order

    pos = node_positions(circuit)  # {node: (layer, head)}
    names = sorted(pos, key=node_order)
    nodes = [{"name": n, "row": pos[n][0], "col": pos[n][1]} for n in names]
    return nodes, {n: i for i, n in enumerate(names)}


def _edge_rows(circuit: Any, index: dict[str, int], true: set[str] | None, max_edges: int) -> list[dict[str, Any]]:
    """Every valid edge (the ``max_edges`` largest by ``|score|``), as ``{name, u, v, slot, score, true}``."""
    g = circuit.graph
    values = circuit.scores.T[g.valid.T]  # every valid edge, receiver-major like g.edges(), not only the selection
    n_bad = int((~values.isfinite()).sum())
    if n_bad:
        raise InputError(f"the {circuit.method or 'circuit'} scores hold NaN or Inf on {n_bad} edges; "
                         "the explorer draws finite scores. Fix: recompute the scores (a smaller batch, "
                         "float32), or replace them with torch.nan_to_num(circuit.scores).")  # fmt: skip
    scored = zip((f"{u}->{r}" for u, r in g.edges()), values.tolist(), strict=True)
    items = sorted(scored, key=lambda kv: -abs(kv[1]))[:max_edges]
    rows = []
    for name, score in items:
        u, r = name.split("->")
        slot = _SLOTS.get(r[-2], 1) if r.endswith(">") else 1
        row = {"name": name, "u": index[u], "v": index[g.receiver_node(r)], "slot": slot, "score": float(score)}
        if true is not None:
            row["true"] = name in true
        rows.append(row)
    return rows


def _default_threshold(circuit: Any, edges: list[dict[str, Any]]) -> float:
    """The smallest ``|score|`` of the circuit's own selection when it selects, else of the 50 largest edges."""
    if 0 < circuit.n_edges < circuit.graph.n_edges:
        return float(circuit.scores.abs()[circuit.mask].min())
    return abs(edges[min(49, len(edges) - 1)]["score"]) if edges else 0.0


class CircuitExplorer(View):
    """A circuit graph with a threshold slider, hover details and (optionally) agreement with a known circuit.

    Args:
        circuit: a :class:`circuits.result.Circuit`. All its valid edges are sent to the view (the
            ``max_edges`` largest by ``|score|`` for big graphs); the slider selects which are shown.
        truth: the known circuit, to colour true and false positives: ``circuit_truth(name)``'s dict,
            edge names (``"a0.h1->a1.h2<k>"``), ``(upstream, receiver)`` pairs or a ``[up, recv]`` mask.
        threshold: edges with ``|score| >= threshold`` are shown (default: the smallest ``|score|`` in the
            circuit's own selection, e.g. ``circuit.top_k(20)``; with everything selected, the 50 largest).
        max_edges: most edges sent to the view (the rest, all smaller, are dropped and counted).
        title: the header (default: the method and the graph's size).

    Synced traits: ``threshold`` (set it from Python or drag the slider), ``nodes``, ``edges``,
    ``title``, ``has_truth``, ``n_dropped``.

    Raises:
        InputError: ``circuit`` is not a Circuit, a bad ``truth``, a negative ``threshold`` or ``max_edges < 1``.

    Example::

        view = CircuitExplorer(circuit, truth=circuit_truth("induction-2l"), threshold=0.05)
        view.threshold = 0.2             # the slider follows
        view.shown_edges()               # what the view shows now: {"u->r": score}
        view.export_html("circuit.html")
    """

    _esm = _ESM
    _css = _CSS
    title = traitlets.Unicode("").tag(sync=True)
    nodes = traitlets.List().tag(sync=True)
    edges = traitlets.List().tag(sync=True)
    threshold = traitlets.Float(0.0).tag(sync=True)
    has_truth = traitlets.Bool(False).tag(sync=True)
    n_dropped = traitlets.Int(0).tag(sync=True)

    def __init__(self, circuit: Any, *, truth: Any = None, threshold: float | None = None, max_edges: int = 3000,
                 title: str | None = None, **kwargs: Any) -> None:  # fmt: skip
        from circuits.result import Circuit

        if not isinstance(circuit, Circuit):
            raise InputError(f"CircuitExplorer needs a circuits.result.Circuit, got {type(circuit).__name__}. "
                             "Fix: pass eap(model, task) or Circuit.from_json(path), or use "
                             "CircuitExplorer.from_json(path).")  # fmt: skip
        if max_edges < 1:
            raise InputError(f"max_edges must be >= 1, got {max_edges}.")
        nodes, index = _layout(circuit)
        true = _truth_edges(circuit, truth)
        edges = _edge_rows(circuit, index, true, max_edges)
        if threshold is None:
            threshold = _default_threshold(circuit, edges)
        if threshold < 0:
            raise InputError(f"threshold is compared with |score| and must be >= 0, got {threshold}.")
        g = circuit.graph
        default = f"{circuit.method or 'circuit'} · {g.n_layers} layers × {g.n_heads} heads · {g.n_edges} edges"
        super().__init__(title=title or default, nodes=nodes, edges=edges, threshold=float(threshold),
                         has_truth=true is not None, n_dropped=g.n_edges - len(edges), **kwargs)  # fmt: skip

    @classmethod
    def from_json(cls, path: str | Path, **kwargs: Any) -> CircuitExplorer:
        """The explorer of a circuit saved with ``Circuit.to_json(path)`` (or ``interp circuits --out``)."""
        from circuits.result import Circuit

        p = Path(path)
        if p.is_dir():
            p = p / "circuit.json"
        if not p.is_file():
            raise InputError(f"no circuit file at {str(p)!r}. Expected a JSON file written by Circuit.to_json(path) "
                             "(interp circuits --out DIR writes DIR/circuit.json); fix the path.")  # fmt: skip
        return cls(Circuit.from_json(p), **kwargs)

    @traitlets.validate("threshold")
    def _check_threshold(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if not value >= 0:
            raise InputError(f"threshold is compared with |score| and must be >= 0, got {value}.")
        return value

    def shown_edges(self) -> dict[str, float]:
        """``{"u->r": score}`` of the edges the view shows at the current threshold (``|score| >= threshold``)."""
        return {e["name"]: e["score"] for e in self.edges if abs(e["score"]) >= self.threshold}
