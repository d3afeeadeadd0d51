"""Static figures (PNG, SVG, PDF, JPEG, WebP) from plotly figures, many per browser session, offline.

Kaleido 1.x renders through a headless Chromium driven by choreographer. This
module finds the system's Chromium (Debian's ``/usr/bin/chromium``; never a
download), opens ONE browser for a whole batch of figures and formats, and
writes each image atomically:

>>> export_figures({"loss": fig1, "l0": fig2}, "runs/x/figures", formats=("png", "svg", "pdf"))  # doctest: +SKIP
[PosixPath('runs/x/figures/loss.png'), PosixPath('runs/x/figures/loss.svg'), ...]

Rendering loads only local files: plotly.js from the plotly package and no
MathJax (kaleido would fetch MathJax from a CDN by default). Chromium runs with
``--no-sandbox`` (choreographer's default), which it needs when run as root,
as in containers and CI.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interp.cache import atomic_write
from interp.errors import InputError, InterpError

__all__ = ["export_figures", "find_chromium", "FORMATS", "CHROMIUM_NAMES"]

#: Image formats kaleido writes.
FORMATS = ("png", "svg", "pdf", "jpeg", "webp")
#: Executable names searched on ``PATH``, in order.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_TYPICAL = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium", "/snap/bin/chromium",
            "/usr/bin/google-chrome")  # fmt: skip


def find_chromium(path: Path | str | None = None) -> Path:
    """The Chromium executable to render with.

    Looks, in order, at ``path``, ``$BROWSER_PATH`` (the variable kaleido and choreographer read),
    each of :data:`CHROMIUM_NAMES` on ``PATH``, then the usual install locations.

    Raises:
        InputError: none found (the message lists where it looked and how to install one).
    """
    searched: list[str] = []
    explicit = [("path argument", path), ("$BROWSER_PATH", os.environ.get("BROWSER_PATH"))]
    for what, p in explicit:
        if p:
            if Path(p).is_file() and os.access(p, os.X_OK):
                return Path(p)
            searched.append(f"{what} {p}")
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return Path(found)
    searched.append("PATH for " + ", ".join(CHROMIUM_NAMES))
    for p in _TYPICAL:
        if os.access(p, os.X_OK):
            return Path(p)
    searched.append(", ".join(_TYPICAL))
    raise InputError("no Chromium found to render static figures (looked at: " + "; ".join(searched) + "). "
                     "Install the system's: `apt-get install chromium` (Debian/Ubuntu), or set BROWSER_PATH to a "
                     "Chromium or Chrome executable. The workbench never downloads a browser.")  # fmt: skip


def _named(figs: Any) -> list[tuple[str, Any]]:
    """``(file stem, figure)`` pairs (:func:`~interp.reports.offline.named_figures`, names made file-safe)."""
    from interp.reports.offline import named_figures

    items = named_figures(figs, "export_figures")
    stems = [re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "figure" for name, _ in items]
    if len(set(stems)) < len(stems):
        raise InputError(f"figure names {[n for n, _ in items]} give clashing file names {stems}. Use distinct names.")
    return [(s, f) for s, (_, f) in zip(stems, items, strict=True)]


async def _render_all(exe: Path, jobs: list[tuple[Any, dict[str, Any]]], timeout: float | int) -> list[bytes]:
    """Render every ``(figure, opts)`` job in one Kaleido (one Chromium process), in order."""
    import kaleido

    out = []
    async with kaleido.Kaleido(path=str(exe), n=1, timeout=timeout, mathjax=False) as k:
        for fig, opts in jobs:
            out.append(await k.calc_fig(fig, opts=opts))
    return out


def _run_in_thread(coro_fn: Any, *args: Any) -> Any:
    """Run ``asyncio.run(coro_fn(*args))`` in a fresh thread (a notebook's event loop may be running here)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro_fn(*args))
        except BaseException as e:  # noqa: BLE001 -- re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target, name="interp-kaleido")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def export_figures(
    figs: Any,
    out_dir: Path | str,
    formats: Sequence[str] | str = ("png", "svg"),
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float | int = 1.0,
    browser: Path | str | None = None,
    timeout: float | int = 90.0,
) -> list[Path]:
    """Write every figure in every format with one Chromium session.

    Args:
        figs: a plotly ``Figure``, a ``{name: Figure}`` mapping (names become file stems) or a list
            (``figure-0``, ``figure-1``, …).
        out_dir: output directory (created); files are ``{name}.{format}``, written atomically.
        formats: some of :data:`FORMATS`, as a sequence or a comma-separated string (``"png,svg"``).
        width / height: image size in CSS pixels (default: the figure's layout size, else kaleido's 700×500).
        scale: pixel density multiplier for raster formats (2 for sharp PNGs on slides).
        browser: a Chromium executable (default :func:`find_chromium`).
        timeout: seconds allowed per image.

    Returns:
        The written paths, figure by figure, each in the order of ``formats``.

    Raises:
        InputError: an unknown format, clashing names, or no Chromium found.
        InterpError: Chromium failed to start or to render (the message names the executable).
    """
    fmts = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    fmts = ["jpeg" if f == "jpg" else f for f in fmts]
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise InputError(f"unknown static format(s) {bad or formats!r}. Choose from {', '.join(FORMATS)}.")
    items = _named(figs)
    exe = find_chromium(browser)
    opts = {k: v for k, v in (("width", width), ("height", height), ("scale", scale)) if v is not None}
    jobs = [(fig, {**opts, "format": f}) for _, fig in items for f in fmts]
    try:
        images = _run_in_thread(_render_all, exe, jobs, timeout)
    except InputError:
        raise
    except Exception as e:
        raise InterpError(f"rendering static figures with {exe} failed: {type(e).__name__}: {e}. Check that "
                          f"`{exe} --headless --no-sandbox --dump-dom about:blank` runs.") from e  # fmt: skip
    out = Path(out_dir)
    paths = []
    for (stem, _), group in zip(items, _chunks(images, len(fmts)), strict=True):
        for f, data in zip(fmts, group, strict=True):
            path = out / f"{stem}.{f}"
            atomic_write(path, lambda fh, data=data: fh.write(data))
            paths.append(path)
    return paths


def _chunks(xs: list[bytes], n: int) -> list[list[bytes]]:
    return [xs[i : i + n] for i in range(0, len(xs), n)]
