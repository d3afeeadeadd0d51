"""The label report: one self-contained HTML page, plus JSON and CSV.

:func:`write_label_report` writes ``labels.html``, ``labels.json`` and
``labels.csv`` for a :class:`~interp.labeling.results.LabelSet`. The page
needs no server and no network: CSS and the small sorting / search script are
inline, histograms are inline SVG, and every piece of dataset text goes
through :func:`html.escape`, so a token ``<script>`` shows as text. Per unit it
shows the label, its PMI, held-out scores beside their constant and shuffled
baselines, the runner-up candidates, the top exemplars with the active tokens
highlighted, lower-quantile and non-activating samples, an activation
histogram and the top output tokens.
"""

from __future__ import annotations

import csv
import io
import math
from html import escape
from pathlib import Path

from interp.cache import atomic_write_text
from interp.labeling.results import LabelSet, Snippet, UnitLabel

__all__ = ["write_label_report", "render_labels_html"]

_CSS = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;
vertical-align:top}th{cursor:pointer;background:#f4f4f4;position:sticky;top:0}th:after{content:" \\2195";color:#aaa}
td.num{text-align:right;font-variant-numeric:tabular-nums}.base{color:#888;font-size:12px}
.snip{font-family:ui-monospace,monospace;white-space:pre-wrap;margin:2px 0}.tok{padding:0 1px;border-radius:2px}
.act{outline:1px solid #c00}details{margin:2px 0}#q{width:30em;padding:4px;margin-bottom:8px}
.muted{color:#888}
"""
_JS = """
const q=document.getElementById('q'),tb=document.querySelector('#units tbody');
q.addEventListener('input',()=>{const s=q.value.toLowerCase();
 for(const r of tb.rows){r.style.display=r.dataset.search.includes(s)?'':'none'}});
document.querySelectorAll('#units th').forEach((th,i)=>th.addEventListener('click',()=>{
 const rows=[...tb.rows],asc=th.dataset.dir!=='asc';th.dataset.dir=asc?'asc':'desc';
 const key=r=>{const c=r.cells[i],v=c.dataset.v;return v!==undefined?parseFloat(v):c.textContent.toLowerCase()};
 rows.sort((a,b)=>{const x=key(a),y=key(b);const o=(typeof x==='number'&&typeof y==='number')?
  (isNaN(x)?1:isNaN(y)?-1:x-y):String(x).localeCompare(String(y));return asc?o:-o});
 rows.forEach(r=>tb.appendChild(r))}));
"""


def _num(x: object, digits: int = 3) -> str:
    """A table cell with a sortable value (``data-v``)."""
    v = float(x) if isinstance(x, (int, float)) else float("nan")
    text = _f(v, f".{digits}f")
    return f'<td class="num" data-v="{"NaN" if math.isnan(v) else v}">{text}</td>'


def _f(x: object, spec: str = ".3f") -> str:
    """Format a number, ``–`` for ``None`` / NaN (values reloaded from JSON may be null)."""
    return "–" if not isinstance(x, (int, float)) or x != x else format(x, spec)


def _snippet(s: Snippet, peak: float) -> str:
    """Tokens of a window, shaded by activation, active (masked) tokens outlined."""
    parts = []
    for tok, a, on in zip(s.tokens, s.acts, s.active, strict=True):
        alpha = 0.0 if a is None or peak <= 0 else max(0.0, min(1.0, a / peak))
        title = "low" if a is None else f"{a:.3f}"
        cls = "tok act" if on else "tok"
        parts.append(f'<span class="{cls}" style="background:rgba(255,80,0,{alpha:.2f})" '
                     f'title="{escape(title)}">{escape(tok)}</span>')
    return f'<div class="snip">{" ".join(parts)} <span class="muted">({_f(s.value)})</span></div>'


def _histogram_svg(hist: dict, threshold: float, width: int = 320, height: int = 80) -> str:
    """An inline SVG bar chart of activation counts (log scale), the threshold as a red line."""
    counts, edges = hist.get("counts") or [], hist.get("edges") or []
    if not counts or len(edges) != len(counts) + 1:
        return ""
    top = max(math.log1p(c) for c in counts) or 1.0
    bw = width / len(counts)
    bars = "".join(f'<rect x="{i * bw:.1f}" y="{height - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" fill="#4a7"/>'
                   for i, h in enumerate(height * math.log1p(c) / top for c in counts))  # fmt: skip
    lo, hi = edges[0], edges[-1]
    x = width * (threshold - lo) / (hi - lo) if hi > lo else 0
    line = f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" stroke="#c00"/>' if 0 <= x <= width else ""
    return (f'<svg width="{width}" height="{height + 14}" role="img"><title>activation histogram (log counts)'
            f'</title>{bars}{line}<text x="0" y="{height + 12}" font-size="10">{lo:.2f}</text>'
            f'<text x="{width - 40}" y="{height + 12}" font-size="10">{hi:.2f}</text></svg>')


def _details(u: UnitLabel) -> str:
    """The expandable per-unit panel."""
    peak = u.max if isinstance(u.max, (int, float)) and u.max > 0 else 1.0
    alts = "".join(f"<li>{escape(a['label'])} <span class='muted'>pmi {_f(a['pmi'])}, "
                   f"p(d|E) {_f(a['p_given_e'], '.2f')}, "
                   f"p(d) {_f(a['p'], '.4f')}</span></li>" for a in u.alternatives)  # fmt: skip
    out_tok = ", ".join(escape(repr(t)) for t in u.output_top) or "–"
    out_bot = ", ".join(escape(repr(t)) for t in u.output_bottom) or "–"
    ex = "".join(_snippet(s, peak) for s in u.exemplars) or "<p class=muted>no exemplars</p>"
    low = "".join(_snippet(s, peak) for s in u.lower) or "<p class=muted>none</p>"
    idle = "".join(_snippet(s, peak) for s in u.inactive) or "<p class=muted>none</p>"
    return (f"<details><summary>exemplars, histogram, output tokens</summary>"
            f"<p>grounding: {u.count_e}/{u.n_e} exemplar tokens match; "
            f"p(d|E) {_f(u.p_given_e)}, p(d) {_f(u.p, '.5f')}; "
            f"threshold {_f(u.threshold)}; fires on {_f(u.frac_positive, '.2%')} of tokens</p>"
            f"{_histogram_svg(u.histogram, u.threshold)}<p>promotes: {out_tok}<br>suppresses: {out_bot}</p>"
            f"<b>runner-up labels</b><ol>{alts}</ol><b>top exemplars</b>{ex}"
            f"<details><summary>lower-quantile samples</summary>{low}</details>"
            f"<details><summary>non-activating samples</summary>{idle}</details></details>")


def _row(u: UnitLabel) -> str:
    """One table row."""
    s = u.scores
    search = escape(f"{u.unit} {u.label} {' '.join(u.output_top)}".lower(), quote=True)
    base = (f"<div class=base>const {_f(s.get('constant_auroc'), '.2f')} · "
            f"shuffled {_f(s.get('shuffled_auroc'), '.2f')}</div>") if s else ""
    return (f'<tr data-search="{search}"><td class="num" data-v="{u.unit}">{u.unit}</td>'
            f"<td>{escape(u.label)}{_details(u)}</td>{_num(u.pmi)}"
            f"{_num(s.get('auroc')).replace('</td>', base + '</td>')}"
            f"{_num(s.get('balanced_accuracy'))}{_num(s.get('correlation'))}"
            f"{_num(s.get('shuffled_balanced_accuracy'))}{_num(u.frac_positive, 4)}</tr>")


def render_labels_html(labels: LabelSet, title: str = "unit labels") -> str:
    """The report page as one HTML string (no external resources)."""
    meta = "".join(f"<li>{escape(str(k))}: {escape(str(v))}</li>" for k, v in labels.meta.items())
    head = ("<tr><th>unit</th><th>label</th><th>PMI</th><th>AUROC (held-out)</th><th>bal. acc.</th>"
            "<th>corr.</th><th>shuffled bal. acc.</th><th>firing rate</th></tr>")
    rows = "".join(_row(u) for u in labels.units)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1><ul>{meta}</ul>"
            "<p>AUROC: does the activation rank tokens that match the label above those that do not (held-out "
            "documents; 0.5 is chance). Baselines below each: a constant label and the label shuffled over tokens."
            "</p><input id='q' placeholder='search labels, units, output tokens'>"
            f"<table id='units'><thead>{head}</thead><tbody>{rows}</tbody></table>"
            f"<script>{_JS}</script></body></html>")


def write_label_report(labels: LabelSet, out: Path | str, title: str = "unit labels") -> dict[str, Path]:
    """Write ``labels.html``, ``labels.json`` and ``labels.csv`` into the directory ``out``; return their paths."""
    out = Path(out)
    paths = {"html": out / "labels.html", "json": out / "labels.json", "csv": out / "labels.csv"}
    atomic_write_text(paths["html"], render_labels_html(labels, title))
    atomic_write_text(paths["json"], labels.to_json())
    buf = io.StringIO()
    csv.writer(buf).writerows(labels.csv_rows())
    atomic_write_text(paths["csv"], buf.getvalue())
    return paths
