"""Reports: self-contained files (HTML, JSON, CSV, images, exports) written from result types.

Reports read the result types of the stages (``interp.labeling.results``) and
nothing else, open from ``file://`` without a server, and load nothing from the
network. :mod:`~interp.reports.offline` writes plotly pages with plotly.js
inlined or beside them and checks pages for network loads;
:mod:`~interp.reports.static` renders PNG/SVG/PDF in one Chromium session;
:mod:`~interp.reports.neuronpedia` writes Neuronpedia feature batches.
"""

from __future__ import annotations

_WHERE = {
    "write_label_report": "labels", "render_labels_html": "labels", "milan_csv": "labels",
    "write_figures_html": "offline", "external_references": "offline", "assert_offline_html": "offline",
    "export_figures": "static", "find_chromium": "static",
    "write_neuronpedia": "neuronpedia", "read_neuronpedia": "neuronpedia", "neuronpedia_records": "neuronpedia",
}  # fmt: skip

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"interp.reports.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'interp.reports' has no attribute {name!r}")
