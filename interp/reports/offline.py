"""Offline HTML for plotly figures, and a checker that an HTML file loads nothing from the network.

Every HTML file the workbench writes with plotly figures (steering sweeps,
circuits, SAE evaluations, the neuron atlas) goes through
:func:`write_figures_html`: plotly.js is either inlined into the page (one
self-contained file, ~5 MB) or written once as ``plotly.min.js`` beside the
pages and loaded with a relative classic ``<script src>``, which browsers
allow from ``file://``. Never a CDN:

>>> write_figures_html({"loss": fig1, "l0": fig2}, "runs/x/curves.html")                 # doctest: +SKIP
>>> write_figures_html(fig, "runs/x/a.html", plotlyjs="beside")   # + runs/x/plotly.min.js  # doctest: +SKIP

:func:`external_references` lists what a page would fetch from outside
(``http(s)://`` or protocol-relative ``//host`` in ``<script src>``, ``<link
href>``, ``<img>``, ``<iframe>``, media and SVG ``<image>`` tags, CSS
``url()``/``@import``, and JavaScript ``import``/``fetch``/``importScripts``);
:func:`assert_offline_html` raises when there is any. Navigation links
(``<a href>``) are not loads and are allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from interp.cache import atomic_write, atomic_write_text
from interp.errors import InputError

__all__ = ["write_figures_html", "write_plotlyjs_beside", "external_references", "assert_offline_html", "PLOTLYJS_NAME"]

#: File name of the plotly.js bundle written beside the pages with ``plotlyjs="beside"``.
PLOTLYJS_NAME = "plotly.min.js"

_EXTERNAL = r"(?:https?:)?//[^\s'\"`)<>]+"
# Loads from script or style text. Each needs the URL right after the call or keyword, so URLs that
# are merely mentioned in a string (plotly.js carries a few in its defaults) are not counted.
_TEXT_PATTERNS = [
    re.compile(rf"""\bfetch\s*\(\s*['"`]({_EXTERNAL})""", re.I),
    re.compile(rf"""\bimport\s*\(\s*['"`]({_EXTERNAL})""", re.I),
    re.compile(rf"""\bimport\s+(?:[\w*{{}},\s]+\s+from\s+)?['"]({_EXTERNAL})['"]""", re.I),
    re.compile(rf"""\bimportScripts\s*\(\s*['"`]({_EXTERNAL})""", re.I),
    re.compile(rf"""\.open\s*\(\s*['"]GET['"]\s*,\s*['"]({_EXTERNAL})""", re.I),
    re.compile(rf"""@import\s+(?:url\(\s*)?['"]?({_EXTERNAL})""", re.I),
    re.compile(rf"""\burl\(\s*['"]?({_EXTERNAL})""", re.I),
]
_STYLE_URL = _TEXT_PATTERNS[-1]
# Attributes through which a tag loads something (``<a href>`` navigates, it does not load).
_LOADING_ATTRS = {
    "script": ("src",), "link": ("href",), "img": ("src", "srcset"), "iframe": ("src",), "frame": ("src",),
    "source": ("src", "srcset"), "video": ("src", "poster"), "audio": ("src",), "track": ("src",),
    "embed": ("src",), "object": ("data",), "image": ("href", "xlink:href"), "use": ("href", "xlink:href"),
    "input": ("src",), "base": ("href",), "feimage": ("href", "xlink:href"),
}  # fmt: skip


def named_figures(figs: Any, caller: str) -> list[tuple[str, Any]]:
    """``(name, figure)`` pairs from one plotly figure, a ``{name: figure}`` mapping or a sequence.

    Shared by the HTML writer and the static exporter (``caller`` names the function in errors).
    """
    if isinstance(figs, Mapping):
        items = [(str(k), f) for k, f in figs.items()]
    elif hasattr(figs, "to_html"):
        items = [("figure", figs)]
    elif isinstance(figs, Iterable) and not isinstance(figs, (str, bytes)):
        items = [(f"figure-{i}", f) for i, f in enumerate(figs)]
    else:
        raise InputError(f"{caller} needs a plotly Figure, a mapping or a list of them; got {type(figs).__name__}.")
    for name, f in items:
        if not hasattr(f, "to_html"):
            raise InputError(f"figure {name!r} is a {type(f).__name__}, not a plotly Figure.")
    return items


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "figure"


def write_plotlyjs_beside(directory: Path | str) -> Path:
    """Write plotly.py's own ``plotly.min.js`` into ``directory`` once (rewritten only if it differs)."""
    from plotly.offline import get_plotlyjs

    path = Path(directory) / PLOTLYJS_NAME
    js = get_plotlyjs().encode()
    if not (path.is_file() and path.stat().st_size == len(js) and path.read_bytes() == js):
        atomic_write(path, lambda f: f.write(js))
    return path


def write_figures_html(
    figs: Any,
    path: Path | str,
    *,
    plotlyjs: str = "inline",
    title: str = "figures",
    height: str | None = None,
) -> Path:
    """Write one or many plotly figures into one HTML page that opens from ``file://`` with no network.

    Args:
        figs: a plotly ``Figure``, a ``{name: Figure}`` mapping (names become the divs' ids, in order)
            or a list of figures.
        path: the ``.html`` file to write (atomically; parent directories are created).
        plotlyjs: ``"inline"``: plotly.js is embedded once in the page (one portable file);
            ``"beside"``: ``plotly.min.js`` is written once next to the page and loaded with a relative
            ``<script src>`` (many pages in one folder share it; keep it beside them when moving them).
        title: the page title.
        height: CSS height of each figure's div (e.g. ``"600px"``); default plotly's.

    Returns:
        ``path``.

    Raises:
        InputError: an unknown ``plotlyjs`` mode, a path not ending in ``.html``, or no figures.
    """
    if plotlyjs not in ("inline", "beside"):
        raise InputError(f"plotlyjs must be 'inline' or 'beside', not {plotlyjs!r}.")
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"{path} should end in .html (it is an HTML page).")
    items = named_figures(figs, "write_figures_html")
    if not items:
        raise InputError("write_figures_html got no figures. Pass at least one plotly Figure.")
    first = True if plotlyjs == "inline" else PLOTLYJS_NAME  # plotly's own option: a relative <script src>
    parts = []
    for i, (name, fig) in enumerate(items):
        kw: dict[str, Any] = {"default_height": height} if height else {}
        parts.append(fig.to_html(full_html=False, include_plotlyjs=first if i == 0 else False, include_mathjax=False,
                                 div_id=_slug(name) if len(items) > 1 or name != "figure" else None, **kw))  # fmt: skip
    if plotlyjs == "beside":
        write_plotlyjs_beside(path.parent)
    html = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head><body>"
            + "".join(parts) + "</body></html>")  # fmt: skip
    atomic_write_text(path, html)
    return path


class _Scanner(HTMLParser):
    """Collects external URLs from loading attributes, inline styles, and script/style text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        loading = _LOADING_ATTRS.get(tag, ())
        for name, value in attrs:
            value = (value or "").strip()
            if name in loading:
                urls = [u.strip().split(" ")[0] for u in value.split(",")] if name == "srcset" else [value]
                self.found += [u for u in urls if re.match(r"(?:https?:)?//", u, re.I)]
            elif name == "style":
                self.found += _STYLE_URL.findall(value)
        if tag in ("script", "style"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            hits = {m.start(1): m.group(1) for pattern in _TEXT_PATTERNS for m in pattern.finditer(data)}
            self.found += [hits[k] for k in sorted(hits)]  # one URL once, even if two patterns see it


def external_references(html: str) -> list[str]:
    """Every URL outside the page's folder that ``html`` would load (empty for an offline page).

    Args:
        html: the page's text.

    Returns:
        The ``http(s)://`` and protocol-relative ``//host`` URLs, in document order, from
        loading tags (``script``, ``link``, ``img``, ``iframe``, media, SVG ``image``/``use``, ``base``…),
        inline ``style`` attributes, and ``<script>``/``<style>`` text (``fetch``, ``import``,
        ``importScripts``, ``XMLHttpRequest.open``, CSS ``url()`` and ``@import``).
    """
    scanner = _Scanner()
    scanner.feed(html)
    scanner.close()
    return scanner.found


def assert_offline_html(path: Path | str) -> None:
    """Raise if the HTML file at ``path`` loads anything from the network, or a local script that is missing.

    Relative ``<script src>`` files (``plotly.min.js``, ``units/*.js``) are checked to exist beside the
    page, except names computed at run time.

    Raises:
        InputError: the page has external references (listed), or a relative script it loads is missing.
    """
    path = Path(path)
    html = path.read_text(encoding="utf-8", errors="replace")
    found = external_references(html)
    if found:
        raise InputError(f"{path} loads {len(found)} resource(s) from the network: {found[:5]}. Inline them or "
                         "ship them beside the page (interp.reports.offline.write_figures_html).")  # fmt: skip
    for src in re.findall(r"<script[^>]*\ssrc=[\"']([^\"']+)[\"']", html, re.I):
        if not src.startswith(("data:", "blob:")) and not (path.parent / src).is_file():
            raise InputError(f"{path} loads the script {src!r}, which is not beside it ({path.parent / src}). "
                             "Write it there (plotlyjs='beside' does) or inline it.")  # fmt: skip
