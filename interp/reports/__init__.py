"""Reports: self-contained files (HTML, JSON, CSV) written from result types.

Reports read the result types of the stages (``interp.labeling.results``) and
nothing else, open from ``file://`` without a server, and load nothing from the
network.
"""

from __future__ import annotations

__all__ = ["write_label_report", "render_labels_html"]


def __getattr__(name: str):
    if name in __all__:
        from interp.reports import labels

        return getattr(labels, name)
    raise AttributeError(f"module 'interp.reports' has no attribute {name!r}")
