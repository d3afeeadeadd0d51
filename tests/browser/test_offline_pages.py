"""Reports and exports opened from ``file://`` in chromium with the network off.

Each page is loaded in an offline browser context whose every non-file request is
aborted and recorded: the tests assert that none was attempted, that no request
failed and that the console stayed free of errors, and then use the page (search,
sort, open a unit's detail, pick a unit, move a slider) as a reader would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(90, method="thread")


def _open(open_page, path: Path):
    page, watch = open_page(loopback=False)
    page.goto(path.resolve().as_uri())
    return page, watch


def _rows(page) -> list[str]:
    """The unit ids of the label report's table, top to bottom."""
    return page.locator("#tb tr.unit td:first-child").all_inner_texts()


def test_label_report_searches_sorts_and_opens_a_unit(open_page, shot, small_labels, tmp_path):
    from playwright.sync_api import expect

    from interp.reports.labels import write_label_report

    paths = write_label_report(small_labels, tmp_path / "report", chunk=5)  # three units/*.js chunks
    page, watch = _open(open_page, paths["html"])
    expect(page.locator("#tb tr.unit")).to_have_count(12)
    assert _rows(page)[:3] == ["0", "1", "2"]
    shot(page, "1-loaded")

    page.fill("#q", "comma")  # the search box filters rows as one types
    expect(page.locator("#tb tr.unit")).to_have_count(1)
    assert _rows(page) == ["3"] and "1 of 12 units" in page.inner_text("#n")
    page.fill("#q", "")
    expect(page.locator("#tb tr.unit")).to_have_count(12)

    header = page.locator("#units th", has_text="AUROC")
    header.click()  # scores sort high to low first (unit i has AUROC 0.5 + 0.04 i)
    assert _rows(page)[:3] == ["11", "10", "9"]
    header.click()
    assert _rows(page)[:3] == ["0", "1", "2"]
    shot(page, "2-sorted")

    page.locator("#tb tr.unit", has_text="past tense").click()  # unit 8: its detail comes from units/00005.js
    detail = page.locator("tr.detail")
    expect(detail).to_contain_text("grounding: 8/10")
    expect(detail.locator(".snip").first).to_contain_text("<past tense>")  # dataset text shown as text
    expect(detail.locator("svg rect")).to_have_count(3)  # the activation histogram's bars
    shot(page, "3-detail")
    watch.assert_clean()


def _feature(small_labels, tmp_path: Path):
    from interp.widgets.feature import FeatureDashboard

    return FeatureDashboard(small_labels, unit=0)


def _feature_use(page) -> None:
    from playwright.sync_api import expect

    detail = page.locator(".interp-feature [data-role=detail]")
    expect(detail).to_have_attribute("data-unit", "0")
    pick = page.locator("[data-role=unit-select]")
    pick.fill("5")
    pick.dispatch_event("change")
    expect(detail).to_have_attribute("data-unit", "5")
    expect(detail.locator("[data-role=score]")).to_contain_text("AUROC 0.700")
    page.fill("[data-role=search]", "bracket")
    hit = page.locator("[data-role=search-hit]")
    expect(hit).to_have_count(1)
    hit.click()
    expect(detail).to_have_attribute("data-unit", "6")


def _tiny_circuit():
    """Every edge of a random-scored two-layer attention-only graph (no model weights needed)."""
    import torch
    from transformer_lens import HookedTransformerConfig

    from circuits.graph import Graph
    from circuits.result import Circuit

    cfg = HookedTransformerConfig(n_layers=2, d_model=16, n_ctx=8, d_head=4, n_heads=2, d_vocab=10, attn_only=True)
    graph = Graph.from_model(cfg)
    scores = torch.randn(graph.valid.shape, generator=torch.Generator().manual_seed(0))
    return Circuit(graph, scores, graph.valid.clone(), "test")


def _circuit(small_labels, tmp_path: Path):
    from interp.widgets.circuit import CircuitExplorer

    return CircuitExplorer(_tiny_circuit(), threshold=0.0)


def _circuit_use(page) -> None:
    from playwright.sync_api import expect

    count = page.locator("[data-role=edge-count]")
    expect(count).not_to_have_attribute("data-count", "0")
    before = int(count.get_attribute("data-count"))
    slider = page.locator("[data-role=threshold]")
    slider.fill(str(int(slider.get_attribute("max")) // 2))  # fires input, as a drag does
    expect(count).not_to_have_attribute("data-count", str(before))
    assert 0 < int(count.get_attribute("data-count")) < before


def _tokens(small_labels, tmp_path: Path):
    from interp.widgets.heatmap import TokenHeatmap

    return TokenHeatmap(["The", " cat", " sat"], [[0.5, -2.0], [3.0, 0.0], [0.0, 1.0]], names=["n5", "n9"])


def _tokens_use(page) -> None:
    from playwright.sync_api import expect

    first = page.locator("[data-role=token]").first
    expect(first).to_have_attribute("title", re.compile(r"^0\.50*$"))  # hover shows the value
    page.select_option("[data-role=channel]", index=1)  # channel n9: the first token's value is -2
    expect(first).to_have_attribute("title", re.compile(r"^-2(\.0*)?$"))


def _image(small_labels, tmp_path: Path):
    import numpy as np

    from interp.widgets.heatmap import ImageHeatmap

    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[:16] = (200, 40, 40)  # red top half
    values = np.stack([np.arange(16.0).reshape(4, 4), -np.arange(16.0).reshape(4, 4)])  # [k=2, g=4, g=4]
    return ImageHeatmap(image, values, names=["up", "down"])


def _image_use(page) -> None:
    from playwright.sync_api import expect

    patches = page.locator("[data-role=patch]")
    expect(patches).to_have_count(16)
    expect(page.locator("[data-role=image]")).to_have_js_property("complete", True)
    patches.nth(5).hover()  # hover shows the patch's value
    expect(page.locator(".interp-image-heatmap")).to_contain_text("patch 5 (row 1, col 1)")
    expect(patches.nth(5)).to_have_attribute("title", re.compile(r"^5(\.0*)?$"))
    page.select_option("[data-role=channel]", index=1)
    expect(patches.nth(5)).to_have_attribute("title", re.compile(r"^-5(\.0*)?$"))


def _attention(small_labels, tmp_path: Path):
    import numpy as np

    from interp.widgets.attention import AttentionViewer

    first = np.zeros((3, 3))
    first[:, 0] = 1.0  # head 0: every query attends to the first token
    patterns = np.stack([first, np.eye(3)])[None]  # [layer=1, head=2, q=3, k=3]; head 1 attends to itself
    return AttentionViewer(["A", "B", "C"], patterns)


def _attention_use(page) -> None:
    from playwright.sync_api import expect

    tokens = page.locator(".interp-attention [data-role=token]")
    tokens.nth(2).hover()  # hover a token: the others show how much it attends to them
    expect(tokens.nth(0)).to_have_attribute("title", re.compile(r"1\.000$"))
    page.select_option("[data-role=head]", index=1)
    tokens.nth(2).hover()
    expect(tokens.nth(2)).to_have_attribute("title", re.compile(r"1\.000$"))
    expect(tokens.nth(0)).to_have_attribute("title", re.compile(r"0\.000$"))


def _training(small_labels, tmp_path: Path):
    from interp.widgets.training import TrainingDashboard

    rows = [{"step": s, "tokens": 256 * s, "hook": "blocks.0.hook_resid_post", "loss": 10 / s, "mse": 9 / s,
             "l0": 20 - s, "dead_fraction": 0.01 * s, "lr": 1e-3} for s in range(1, 30)]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return TrainingDashboard(tmp_path)


def _training_look(page) -> None:
    from playwright.sync_api import expect

    expect(page.locator("[data-role=last-step]")).to_contain_text("step 29")
    assert page.locator("svg path, svg polyline").count() >= 3, "a curve per panel (loss, L0, dead fraction)"


def _steering(small_labels, tmp_path: Path):
    from interp.widgets.steering import SteeringPlayground

    return SteeringPlayground(lambda prompt, direction, c: f"{prompt} [{direction} x{c:g}]", ["love", "anger"],
                              prompt="I think")  # fmt: skip


def _steering_look(page) -> None:
    from playwright.sync_api import expect

    # Frozen at export: both generations are there, side by side; regenerating needs a kernel.
    expect(page.locator("[data-role=unsteered]")).to_contain_text("[love x0]")
    expect(page.locator("[data-role=steered]")).to_contain_text("[love x1]")


#: Every interp view, built small, and what a reader does with (or checks on) its standalone export.
VIEWS: dict[str, tuple[Callable, Callable]] = {
    "FeatureDashboard": (_feature, _feature_use),
    "CircuitExplorer": (_circuit, _circuit_use),
    "TokenHeatmap": (_tokens, _tokens_use),
    "ImageHeatmap": (_image, _image_use),
    "AttentionViewer": (_attention, _attention_use),
    "TrainingDashboard": (_training, _training_look),
    "SteeringPlayground": (_steering, _steering_look),
}


@pytest.mark.parametrize("name", list(VIEWS))
def test_standalone_view_export_renders_and_responds_offline(name, open_page, shot, small_labels, tmp_path):
    build, use = VIEWS[name]
    path = build(small_labels, tmp_path).export_html(tmp_path / f"{name}.html")
    page, watch = _open(open_page, path)
    page.wait_for_selector("#interp-root[data-rendered='1']")
    assert page.locator("#interp-root *").count() > 3, "the view drew nothing"
    shot(page, "1-loaded")
    use(page)
    shot(page, "2-used")
    watch.assert_clean()


def _sweep(out: Path) -> Path:
    from interp.steering.evaluate import SweepResult, SweepRow

    rows = [SweepRow("actadd", "blocks.0.hook_resid_pre", c, effect=[c, c + 0.1], target_prob=[0.1 * c, 0.2],
                     kl=[0.01 * c, 0.02], loss_delta=[0.0, 0.01]) for c in (1.0, 2.0, 4.0)]  # fmt: skip
    return SweepResult(rows, {"target": "love"}).save(out)["html"]


def _sae_eval(out: Path) -> Path:
    import torch

    from sae_training.plots import write_eval_html

    results = {"blocks.0.hook_resid_post": {"l0": 12.0, "fvu": 0.2, "dead_fraction": 0.01, "tokens": 4096}}
    freqs = {"blocks.0.hook_resid_post": torch.rand(64, generator=torch.Generator().manual_seed(0))}
    return write_eval_html(results, freqs, out / "eval.html")


def _atlas(out: Path) -> Path:
    import numpy as np
    import pandas as pd

    from interp.atlas.figures import write_figures

    rng = np.random.default_rng(0)
    n = 40
    table = pd.DataFrame({"layer": np.repeat([0, 1], n // 2), "neuron": np.arange(n), "null_frac": rng.random(n),
                          "w_out_norm": rng.random(n) + 0.5, "cos_in_out": rng.normal(size=n),
                          "io_class": rng.choice(["enrichment", "depletion", "other"], n),
                          "vocab_skew": rng.normal(size=n), "vocab_kurtosis": rng.random(n) * 10 + 3})  # fmt: skip
    return write_figures(table, out / "atlas.html")


def _circuit_html(out: Path) -> Path:
    from circuits.figure import circuit_figure
    from interp.reports.offline import write_figures_html

    fig = circuit_figure(_tiny_circuit().top_k(10))
    return write_figures_html(fig, out / "circuit.html", plotlyjs="beside", title="circuit")


#: Plotly pages the workbench writes: (writer, number of figures on the page).
PLOTLY_PAGES: dict[str, tuple[Callable[[Path], Path], int]] = {
    "steering-sweep": (_sweep, 1),
    "sae-eval": (_sae_eval, 2),
    "atlas": (_atlas, 4),
    "circuit-beside": (_circuit_html, 1),
}


@pytest.mark.parametrize("name", list(PLOTLY_PAGES))
def test_plotly_page_renders_offline(name, open_page, shot, tmp_path):
    from playwright.sync_api import expect

    write, n_figures = PLOTLY_PAGES[name]
    path = write(tmp_path / name)
    page, watch = _open(open_page, path)
    plots = page.locator(".js-plotly-plot")
    expect(plots).to_have_count(n_figures)
    expect(plots.locator(".main-svg").first).to_be_visible()
    assert page.evaluate("() => typeof window.Plotly === 'object' && !!window.Plotly.version")
    shot(page, "rendered")
    watch.assert_clean()


def test_the_offline_guard_catches_a_cdn_load(open_page, tmp_path_factory):
    """The guard the other tests rely on: a page that reaches for a CDN is caught, and nothing leaves."""
    page_path = tmp_path_factory.mktemp("cdn") / "cdn.html"  # not tmp_path: tests/conftest.py rejects CDN pages there
    cdn, img = "https://cdn.plot.ly/plotly-2.0.0.min.js", "http://example.org/x.png"
    page_path.write_text(f"<!doctype html><html><head><script src='{cdn}'></script></head><body><img src='{img}'>")
    page, watch = _open(open_page, page_path)
    page.wait_for_load_state("load")
    assert sorted(watch.blocked) == [img, cdn]
    with pytest.raises(AssertionError, match="beyond local files"):
        watch.assert_offline()
