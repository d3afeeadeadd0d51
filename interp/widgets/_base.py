"""The base of every interp view: an anywidget whose state lives in synced traits, exportable to one HTML file.

Why anywidget: one ES module renders the view in JupyterLab, Notebook 7, VS Code,
Colab and Voilà alike (the frontends that blank out circuitsvis-style views), and
the view's whole state is in synced traits, so a frontend that connects late (a
Voilà page, a reopened notebook) draws the current state.

Why the export works offline: :meth:`View.export_html` writes the same module
into a standalone page together with the current state and a ~20-line stand-in
for the widget model (``get``/``set``/``on``/``save_changes``). Nothing is loaded
from a CDN or a server; the page opens from ``file://``. What needs Python (a
fresh generation in the steering playground, a unit's detail not yet computed)
is frozen at the state it had when exported; everything computed in the browser
(selectors, sliders over data already in the state, hover) keeps working.

Rules for a view's ``_esm`` (checked by :func:`standalone_script`): one
``export default { render({model, el}) {...} }`` and no ``import`` statements, so
the module also runs as a classic inline script.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anywidget

from interp.cache import atomic_write_text
from interp.errors import InputError

__all__ = ["View", "standalone_html", "standalone_script", "widget_state", "MODEL_SHIM"]

#: Traits of every ipywidget that describe the widget machinery, not the view.
_MACHINERY = {"layout", "tabbable", "tooltip", "_dom_classes", "_esm", "_css", "_anywidget_id"}

#: A stand-in for the widget model in a standalone page: the same calls the views make in a notebook.
MODEL_SHIM = r"""
(function(){
const S=JSON.parse(document.getElementById('interp-state').textContent),L={};
function fire(e,v){(L[e]||[]).slice().forEach(f=>f({new:v}))}
const model={get:k=>S[k],set:(k,v)=>{S[k]=v;fire('change:'+k,v)},
 on:(e,f)=>{String(e).split(' ').forEach(x=>{(L[x]=L[x]||[]).push(f)})},
 off:(e,f)=>{if(!e){for(const k in L)delete L[k];return}if(!f){delete L[e];return}L[e]=(L[e]||[]).filter(g=>g!==f)},
 save_changes(){fire('change',null)},send(){},standalone:true};
window.INTERP_MODEL=model;
const w=window.__interpWidget,root=document.getElementById('interp-root');
(typeof w==='function'?w:w.render)({model,el:root});
root.setAttribute('data-rendered','1');
})();
"""


def widget_state(widget: Any) -> dict[str, Any]:
    """The view's own synced state (no ipywidgets machinery), as JSON-ready values."""
    state = widget.get_state()
    return {k: v for k, v in state.items() if k not in _MACHINERY and not k.startswith(("_model_", "_view_"))}


def standalone_script(esm: str, name: str = "view") -> str:
    """Turn a view's ES module into a classic script that sets ``window.__interpWidget``.

    Raises InputError when the module imports anything or lacks one ``export default``
    (such a module could not run from ``file://`` without a network or a server).
    """
    if re.search(r"^\s*import\s", esm, flags=re.M) or re.search(r"\bimport\s*\(", esm):
        raise InputError(f"the {name} view's module imports other modules; a standalone export can only inline "
                         "a module without imports. Fix: bundle the dependency into the view's _esm.")  # fmt: skip
    if len(re.findall(r"\bexport\s+default\b", esm)) != 1:
        raise InputError(f"the {name} view's module needs exactly one 'export default {{ render }}'; "
                         "fix the view's _esm.")  # fmt: skip
    return re.sub(r"\bexport\s+default\b", "window.__interpWidget =", esm)


def _json_for_script(x: Any) -> str:
    # Inside <script>, '</' or '<!--' in dataset text would end or confuse the tag.
    return json.dumps(x, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e")


def standalone_html(esm: str, state: dict[str, Any], *, css: str = "", title: str = "interp view") -> str:
    """A complete HTML page that renders ``esm`` with ``state`` from ``file://``, without a network."""
    try:
        blob = _json_for_script(state)
    except ValueError as e:
        raise InputError(f"the view's state for {title!r} holds NaN or Inf ({e}); views store finite numbers or "
                         "None. Fix: replace non-finite values before building the view.") from e  # fmt: skip
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{safe_title}</title>"
        f"<style>body{{margin:1em;font:14px system-ui,sans-serif}}{css}</style></head>\n<body>"
        "<div id='interp-root' class='interp-standalone'></div>\n"
        f"<script id='interp-state' type='application/json'>{blob}</script>\n"
        f"<script>\n{standalone_script(esm, title)}\n</script>\n<script>{MODEL_SHIM}</script>\n</body></html>\n"
    )


class View(anywidget.AnyWidget):
    """Base class of the interp views: an ``anywidget.AnyWidget`` plus :meth:`export_html`.

    Subclasses set ``_esm`` (and optionally ``_css``) and declare their state as
    traits tagged ``sync=True``. Display it in a notebook as the cell's last
    value, or ``IPython.display.display(view)``.
    """

    def state(self) -> dict[str, Any]:
        """The view's current synced state (what a late-connecting frontend or an export draws)."""
        return widget_state(self)

    def export_html(self, path: str | Path, *, title: str | None = None) -> Path:
        """Write the view, in its current state, to one self-contained HTML file (atomically).

        The file has no external references: it opens from ``file://`` with the
        network off. Returns the path written.
        """
        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise InputError(f"export path {str(path)!r} should end in .html; fix: pass e.g. 'view.html'.")
        esm = self._esm if isinstance(self._esm, str) else Path(self._esm).read_text()
        css = getattr(self, "_css", "") or ""
        css = css if isinstance(css, str) else Path(css).read_text()
        html = standalone_html(esm, self.state(), css=css, title=title or type(self).__name__)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, html)
        return path
