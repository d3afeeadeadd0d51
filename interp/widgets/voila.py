"""Serving notebooks of views with Voilà, offline: the ``interp-offline`` page template.

Voilà's stock "lab" template links Font Awesome's stylesheets from a CDN, so a
Voilà page of our views would reach for the internet. The package ships a
template that extends "lab" without those links
(``interp/data/voila/templates/interp-offline``); Voilà finds it through
``JUPYTER_PATH``::

    JUPYTER_PATH=$(python -c "import interp.widgets as w; print(w.jupyter_path())") \\
        voila --template=interp-offline notebook.ipynb
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["jupyter_path", "VOILA_TEMPLATE"]

#: Name of the shipped offline Voilà template (``voila --template=interp-offline``).
VOILA_TEMPLATE = "interp-offline"


def jupyter_path() -> str:
    """The folder to put on ``JUPYTER_PATH`` so that Voilà finds the ``interp-offline`` template."""
    return str(Path(__file__).resolve().parents[1] / "data")
