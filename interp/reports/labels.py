"""The label report: a compact HTML page per layer, per-unit detail in chunk files, plus JSON, CSV and Parquet.

:func:`write_label_report` writes into one directory:

* ``labels.html``: the summary of every unit (label, PMI, held-out AUROC, balanced
  accuracy, correlation, baselines, firing rate) as one JSON blob that inline
  JavaScript renders into a sortable, searchable table. No CDN, no server:
  the page opens from ``file://``.
* ``units/NNNNN.js``: per-unit detail (runner-up labels, histogram, top
  exemplars with their masks, lower-quantile and non-activating samples, output
  tokens, image thumbnails), ``chunk`` units per file, loaded on demand by a
  ``<script>`` tag when a unit is opened (browsers block ``fetch`` of
  ``file://`` URLs, not script tags).
* ``labels.json`` (the whole :class:`~interp.labeling.results.LabelSet`),
  ``labels.csv`` and ``labels.parquet`` (MILAN's ``layer, unit, description,
  score`` then every score and baseline), and ``milan.csv`` with exactly
  MILAN's four columns (``score``: held-out AUROC; empty when unknown).

Size caps: the main page carries ~150–250 bytes per unit and is kept under
``max_main_bytes`` (2 MB, about 8,000 units) by shortening labels to 80
characters and then dropping the search-only output tokens; a unit's detail
keeps at most ``max_exemplars`` exemplars and ``max_samples`` samples of each
kind. Image thumbnails are stored once per chunk file. Dataset text is never
inserted as HTML: the JSON escapes ``<``, ``>`` and ``&``, and the script
writes every string with ``textContent``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from interp.cache import atomic_write, atomic_write_text
from interp.labeling.results import ImageExemplar, LabelSet, Snippet, UnitLabel

__all__ = ["write_label_report", "render_labels_html", "unit_columns", "milan_csv", "MAX_MAIN_BYTES", "MILAN_COLUMNS"]

#: Default cap on the size of ``labels.html``.
MAX_MAIN_BYTES = 2_000_000
#: Columns of ``milan.csv``.
MILAN_COLUMNS = ("layer", "unit", "description", "score")
#: Summary columns of the main page (one array per unit, in this order).
COLUMNS = ("unit", "label", "kind", "pmi", "auroc", "balanced_accuracy", "correlation", "shuffled_auroc",
           "shuffled_balanced_accuracy", "constant_auroc", "frac_positive", "search")  # fmt: skip


def _js_json(x: Any) -> str:
    """JSON safe inside HTML ``<script>`` and JS files: ``<``, ``>``, ``&`` escaped, NaN as null."""
    text = json.dumps(_clean(x), separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _clean(x: Any) -> Any:
    """NaN / inf -> None, floats rounded to 4 significant digits (the page shows 3)."""
    if isinstance(x, float):
        return None if not math.isfinite(x) else float(f"{x:.4g}")
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _summary(u: UnitLabel, max_label: int | None, search: bool) -> list[Any]:
    """One summary row (:data:`COLUMNS`)."""
    s = u.scores
    text = u.text if max_label is None or len(u.text) <= max_label else u.text[: max_label - 1] + "…"
    extra = " ".join(u.output_top[:5] + ([u.label] if u.description else [])) if search else ""
    return [u.unit, text, u.kind, u.pmi, s.get("auroc"), s.get("balanced_accuracy"), s.get("correlation"),
            s.get("shuffled_auroc"), s.get("shuffled_balanced_accuracy"), s.get("constant_auroc"), u.frac_positive,
            extra]  # fmt: skip


def _snip(s: Snippet) -> list[Any]:
    """A text window as ``[tokens, acts, active, centre, value]``."""
    return [s.tokens, s.acts, [int(a) for a in s.active], s.centre, s.value]


def _img(e: ImageExemplar) -> list[Any]:
    """An image exemplar as ``[image, key, value, mask, acts, grid]``."""
    return [e.image, e.key, e.value, e.mask, e.acts, e.grid]


def _detail(u: UnitLabel, max_exemplars: int, max_samples: int) -> dict[str, Any]:
    """Everything the expanded view of one unit shows."""
    return {
        "label": u.label, "description": u.description, "key": u.key, "pmi": u.pmi, "p_given_e": u.p_given_e,
        "p": u.p, "count_e": u.count_e, "n_e": u.n_e, "threshold": u.threshold, "max": u.max,
        "frac_positive": u.frac_positive, "scores": u.scores, "hist": u.histogram,
        "alts": [[a["label"], a.get("pmi"), a.get("p_given_e"), a.get("p")] for a in u.alternatives],
        "out_top": u.output_top, "out_bot": u.output_bottom,
        "ex": [_snip(s) for s in u.exemplars[:max_exemplars]], "low": [_snip(s) for s in u.lower[:max_samples]],
        "idle": [_snip(s) for s in u.inactive[:max_samples]],
        "imgs": [_img(e) for e in u.images[:max_exemplars]],
        "imgs_low": [_img(e) for e in u.images_lower[:max_samples]],
        "imgs_idle": [_img(e) for e in u.images_inactive[:max_samples]],
    }  # fmt: skip


def _chunk_js(labels: LabelSet, start: int, units: list[UnitLabel], max_exemplars: int, max_samples: int) -> str:
    """One ``units/NNNNN.js`` file: the details of ``units`` and the thumbnails they use."""
    details = [_detail(u, max_exemplars, max_samples) for u in units]
    thumbs_all = labels.assets.get("thumbs", {})
    used = {str(e[0]) for d in details for k in ("imgs", "imgs_low", "imgs_idle") for e in d[k]}
    thumbs = {k: thumbs_all[k] for k in sorted(used) if k in thumbs_all}
    return f"UNITS_LOADED({start},{_js_json(details)},{_js_json(thumbs)});\n"


def unit_columns(table: Any, labels: LabelSet) -> dict[str, list[Any]]:
    """Per-unit columns of ``table`` aligned with ``labels.units``, to show beside the labels.

    Args:
        table: a pandas DataFrame indexed by unit, or by ``(layer, unit)`` (e.g. the neuron atlas's
            ``interp.atlas.atlas_columns``), in which case the layer of ``labels.meta["hook"]`` is taken.
        labels: the labels the columns go with.

    Returns:
        ``{column: [value per unit]}`` (``None`` where the table has no row for a unit).

    Raises:
        InputError: a two-level table for labels whose hook has no layer, or a table with none of the units.
    """
    from interp.errors import InputError
    from interp.models.contract import layer_of_hook

    if getattr(table.index, "nlevels", 1) == 2:
        hook = str(labels.meta.get("hook") or "")
        layer = layer_of_hook(hook)
        if layer is None or layer not in table.index.get_level_values(0):
            raise InputError(f"the extra columns are indexed by (layer, unit) but the labels' hook {hook!r} names no "
                             "layer they have. Pass the table of that layer (table.loc[layer]).")  # fmt: skip
        table = table.loc[layer]
    units = [u.unit for u in labels.units]
    if not set(units) & set(table.index):
        raise InputError(f"the extra columns have none of the labelled units ({units[:5]}…). Index them by unit.")
    rows = table.reindex(units)
    return {str(c): [None if v != v else (v.item() if hasattr(v, "item") else v) for v in rows[c].tolist()]
            for c in rows.columns}  # fmt: skip


def render_labels_html(
    labels: LabelSet, title: str = "unit labels", *, chunk: int = 256, max_main_bytes: int = MAX_MAIN_BYTES,
    extra: dict[str, list[Any]] | None = None,
) -> str:
    """The main page as one HTML string (no external resources besides its own ``units/*.js``).

    Args:
        labels: the labels.
        title: page title.
        chunk: units per detail file (the page computes which file holds a unit).
        max_main_bytes: the page's size cap (see the module docstring).
        extra: more columns, one value per unit (:func:`unit_columns`), shown after the scores.
    """
    from interp.reports._page import CSS as css
    from interp.reports._page import JS as js

    page = ""
    for max_label, search in ((None, True), (80, True), (80, False)):
        data = {
            "title": title,
            "meta": {str(k): str(v) for k, v in labels.meta.items()},
            "columns": COLUMNS + tuple(extra or {}),
            "extra": list(extra or {}),
            "chunk": chunk,
            "rows": [_summary(u, max_label, search) + [col[i] for col in (extra or {}).values()]
                     for i, u in enumerate(labels.units)],
        }  # fmt: skip
        page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_esc(title)}</title>"
                f"<style>{css}</style></head><body><div id='app'></div>"
                f"<script id='data' type='application/json'>{_js_json(data)}</script>"
                f"<script>{js}</script></body></html>")  # fmt: skip
        if len(page.encode()) <= max_main_bytes:
            break
    return page


def milan_csv(labels: LabelSet) -> str:
    """MILAN's ``layer, unit, description, score`` table as CSV text (NaN / missing scores as empty cells)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(MILAN_COLUMNS)
    for row in labels.csv_rows()[1:]:  # CSV_COLUMNS start with MILAN's four
        score = row[3] if isinstance(row[3], (int, float)) and math.isfinite(row[3]) else ""
        w.writerow([row[0], row[1], row[2], score])
    return buf.getvalue()


def _esc(text: str) -> str:
    from html import escape

    return escape(text)


def write_label_report(
    labels: LabelSet,
    out: Path | str,
    title: str = "unit labels",
    *,
    chunk: int = 256,
    max_exemplars: int = 15,
    max_samples: int = 5,
    max_main_bytes: int = MAX_MAIN_BYTES,
    extra: Any = None,
) -> dict[str, Path]:
    """Write the report files (see the module docstring) into the directory ``out``.

    Args:
        labels: the labels.
        out: output directory (created).
        title: page title.
        chunk: units per ``units/*.js`` detail file.
        max_exemplars: most exemplars shown per unit.
        max_samples: most lower-quantile and non-activating samples shown per unit.
        max_main_bytes: cap on ``labels.html``.
        extra: a DataFrame of more per-unit columns for the main table (see :func:`unit_columns`),
            e.g. the neuron atlas's ``atlas_columns`` beside neuron labels.

    Returns:
        ``{"html", "json", "csv", "parquet", "milan", "units"}`` paths.
    """
    import pyarrow.parquet as pq

    out = Path(out)
    paths = {"html": out / "labels.html", "json": out / "labels.json", "csv": out / "labels.csv",
             "parquet": out / "labels.parquet", "milan": out / "milan.csv", "units": out / "units"}  # fmt: skip
    for i in range(0, len(labels.units), chunk):
        atomic_write_text(
            paths["units"] / f"{i:05d}.js",
            _chunk_js(labels, i, labels.units[i : i + chunk], max_exemplars, max_samples),
        )
    cols = unit_columns(extra, labels) if extra is not None else None
    atomic_write_text(paths["html"], render_labels_html(labels, title, chunk=chunk, max_main_bytes=max_main_bytes,
                                                        extra=cols))  # fmt: skip
    atomic_write_text(paths["json"], labels.to_json())
    buf = io.StringIO()
    csv.writer(buf).writerows(labels.csv_rows())
    atomic_write_text(paths["csv"], buf.getvalue())
    atomic_write_text(paths["milan"], milan_csv(labels))
    atomic_write(paths["parquet"], lambda f: pq.write_table(labels.table(), f))
    return paths
