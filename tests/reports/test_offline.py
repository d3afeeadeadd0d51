"""Offline HTML: plotly.js inlined or shipped once beside the pages, and no page the workbench writes loads the web."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from interp.errors import InputError
from interp.reports.offline import PLOTLYJS_NAME, assert_offline_html, external_references, write_figures_html


def _figs() -> dict[str, go.Figure]:
    return {"loss curve": go.Figure(go.Scatter(y=[3, 2, 1])), "l0": go.Figure(go.Bar(y=[5, 9]))}


def test_inline_one_bundle_many_figures(tmp_path):
    path = write_figures_html(_figs(), tmp_path / "a.html", title="curves <1>")
    html = path.read_text()
    assert html.count("plotly.js v") == 1 and html.count("Plotly.newPlot") == 2
    assert 'id="loss-curve"' in html and 'id="l0"' in html and "<title>curves &lt;1&gt;</title>" in html
    assert external_references(html) == [] and "<script src" not in html and "cdn.plot.ly/plotly" not in html
    assert_offline_html(path)
    assert not (tmp_path / PLOTLYJS_NAME).exists()


def test_beside_ships_plotlyjs_once(tmp_path):
    a = write_figures_html(_figs(), tmp_path / "a.html", plotlyjs="beside")
    js = tmp_path / PLOTLYJS_NAME
    stamp = js.stat().st_mtime_ns
    b = write_figures_html(go.Figure(go.Scatter(y=[1])), tmp_path / "b.html", plotlyjs="beside")
    assert js.stat().st_mtime_ns == stamp and js.stat().st_size > 1_000_000  # written once, shared
    for page in (a, b):
        html = page.read_text()
        assert '<script charset="utf-8" src="plotly.min.js"></script>' in html and len(html) < 50_000
        assert_offline_html(page)
    js.unlink()
    with pytest.raises(InputError, match="not beside it"):
        assert_offline_html(a)


def test_bad_arguments():
    with pytest.raises(InputError, match="'inline' or 'beside'"):
        write_figures_html(go.Figure(), "/tmp/x.html", plotlyjs="cdn")
    with pytest.raises(InputError, match="should end in .html"):
        write_figures_html(go.Figure(), "/tmp/x.png")
    with pytest.raises(InputError, match="no figures"):
        write_figures_html([], "/tmp/x.html")


def test_external_references_finds_every_kind_of_load():
    html = (
        '<script src="https://cdn.plot.ly/plotly-2.js"></script><link rel="stylesheet" href="//fonts.example/a.css">'
        '<img srcset="a.png 1x, http://x.example/b.png 2x"><iframe src="https://y.example/"></iframe>'
        '<svg><image href="https://z.example/i.png"/></svg><div style="background:url(https://w.example/bg.png)">'
        "</div><script>fetch('https://api.example/data'); import('https://esm.example/m.js');\n"
        'import x from "https://esm.example/y.js"; importScripts("https://w.example/worker.js")</script>'
        "<style>@import url(https://fonts.example/b.css); .a{background:url('//img.example/c.png')}</style>"
    )
    found = external_references(html)
    assert found == ["https://cdn.plot.ly/plotly-2.js", "//fonts.example/a.css", "http://x.example/b.png",
                     "https://y.example/", "https://z.example/i.png", "https://w.example/bg.png",
                     "https://api.example/data", "https://esm.example/m.js", "https://esm.example/y.js",
                     "https://w.example/worker.js", "https://fonts.example/b.css", "//img.example/c.png"]  # fmt: skip
    allowed = ('<a href="https://example.org">docs</a><script src="units/00000.js"></script>'
               '<script>const u = "https://cdn.plot.ly/"; // a mention, not a load\n</script>')  # fmt: skip
    assert external_references(allowed) == []


# Every writer of an HTML page in the workbench, on tiny inputs.


def _label_report(out):
    from interp.labeling.results import LabelSet, Snippet, UnitLabel
    from interp.reports.labels import write_label_report

    snip = Snippet(["a", "https://evil.example/x.js", "b"], [0.1, 2.0, None], [False, True, False], 1, 2.0, 0)
    hist = {"counts": [1, 2], "edges": [0.0, 1.0, 2.0]}
    u = UnitLabel(0, "token 'b'", "tok:b", 1.0, 0.5, 0.1, 3, 4, exemplars=[snip], lower=[snip], histogram=hist,
                  threshold=1.0, frac_positive=0.1, max=2.0)  # fmt: skip
    return write_label_report(LabelSet([u], {"hook": "blocks.0.mlp.hook_post"}), out)["html"]


def _sweep(out):
    from interp.steering.evaluate import SweepResult, SweepRow

    rows = [SweepRow(m, "blocks.0.hook_resid_post", c, effect=[c, c + 1], target_prob=[0.1, 0.2], kl=[0.01 * c],
                     loss_delta=[0.02 * c]) for m in ("vector", "random") for c in (0.0, 2.0)]  # fmt: skip
    rows.append(SweepRow("prompting", None, None, effect=[0.5], target_prob=[0.2], kl=[0.1], loss_delta=[0.1]))
    return SweepResult(rows, {"targets": [7]}).save(out)["html"]


def _circuit(out):
    from circuits.figure import circuit_figure
    from circuits.graph import Graph
    from circuits.result import Circuit

    g = Graph(2, 2, 2, True, False)  # n_layers, n_heads, n_kv_heads, has_mlp, parallel_attn_mlp
    scores = torch.linspace(-1, 1, g.valid.numel()).reshape(g.valid.shape)
    return write_figures_html(circuit_figure(Circuit(g, scores, g.valid.clone()).top_k(5)), out / "circuit.html")


def _sae_eval(out):
    from sae_training.plots import write_eval_html

    results = {"blocks.0.hook_resid_post": {"l0": 12.0, "fvu": 0.1, "dead_fraction": 0.0}}
    return write_eval_html(results, {"blocks.0.hook_resid_post": torch.rand(64)}, out / "eval.html")


def _atlas(out):
    from interp.atlas.figures import write_figures

    t = pd.DataFrame({"layer": [0, 0, 1, 1], "neuron": [0, 1, 0, 1], "null_frac": [0.1, 0.5, 0.2, 0.9],
                      "w_out_norm": [1.0, 2.0, 1.5, 3.0], "cos_in_out": [0.3, -0.2, 0.1, 0.0],
                      "io_class": ["enrichment", "depletion", "other", "other"], "vocab_skew": [1.0, -1.0, 0.2, 0.1],
                      "vocab_kurtosis": [10.0, 20.0, 3.0, 4.0]})  # fmt: skip
    return write_figures(t, out / "figures.html")


@pytest.mark.parametrize("writer", [_label_report, _sweep, _circuit, _sae_eval, _atlas])
def test_every_html_writer_is_offline(writer, tmp_path):
    path = writer(tmp_path)
    assert_offline_html(path)
    html = path.read_text()
    assert ("Plotly.newPlot" in html and html.count("plotly.js v") == 1) or writer is _label_report
    for js in tmp_path.rglob("*.js"):  # the label report's detail chunks too
        assert external_references(f"<script>{js.read_text()}</script>") == []


@pytest.mark.timeout(90, method="thread")
def test_pages_render_from_file_urls_with_the_network_off(tmp_path):
    """Both modes in a real Chromium (the system one, never a download): plots drawn, no request leaves file://."""
    import os

    from interp.reports.static import find_chromium

    try:
        exe = find_chromium()
        from playwright.sync_api import sync_playwright
    except (InputError, ImportError) as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser check: {e}")
        pytest.skip(str(e))
    beside = write_figures_html(_figs(), tmp_path / "beside.html", plotlyjs="beside")
    inline = write_figures_html(go.Figure(go.Scatter(y=[1, 3, 2])), tmp_path / "inline.html")
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(exe), args=["--no-sandbox"])
        try:
            ctx = browser.new_context(offline=True)
            ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else
                      (outside.append(r.request.url), r.abort()))  # fmt: skip
            page = ctx.new_page()
            page.on("requestfailed", lambda r: outside.append(r.url))
            for path, n in ((beside, 2), (inline, 1)):
                page.goto(path.as_uri())
                page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n}")
                assert page.evaluate("document.querySelectorAll('.js-plotly-plot').length") == n
                page.screenshot(path=tmp_path / f"{path.stem}.png")
        finally:
            browser.close()
    assert outside == []


def test_package_facade_resolves_lazily():
    import interp.reports as reports

    assert reports.write_figures_html is write_figures_html and callable(reports.export_figures)
    assert callable(reports.write_neuronpedia) and callable(reports.milan_csv)
    with pytest.raises(AttributeError):
        reports.nothing_here  # noqa: B018
