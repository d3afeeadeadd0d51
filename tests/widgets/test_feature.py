"""The feature dashboard: a compact summary for thousands of units, detail filled in Python on selection, export."""

from __future__ import annotations

import json
import re

import pytest

from interp.errors import InputError
from interp.labeling.results import ImageExemplar, LabelSet, Snippet, UnitLabel
from interp.widgets.feature import SUMMARY_COLUMNS, FeatureDashboard

EVIL = "<script>alert(1)</script>"
THUMB = "data:image/png;base64,iVBORw0KGgo="


def _unit(i: int, n_ex: int = 15) -> UnitLabel:
    snip = Snippet(["The", f" t{i}", EVIL], [0.1, 2.5, None], [False, True, False], 1, 2.5, i)
    return UnitLabel(i, f"token ' t{i}'", f"tok:{i}", 1.2, 0.9, 0.01, 9, 10,
                     scores={"auroc": 0.93125, "balanced_accuracy": 0.8, "correlation": 0.6, "constant_auroc": 0.5,
                             "shuffled_auroc": 0.51},
                     exemplars=[snip] * n_ex, lower=[snip] * 3, inactive=[snip],
                     histogram={"counts": [30, 2, 1], "edges": [0.0, 1.0, 2.0, 3.0]},
                     output_top=[" dog", " cat"], output_bottom=[" the"], threshold=1.0, frac_positive=0.012345,
                     max=2.5, kind="tok")  # fmt: skip


@pytest.fixture(scope="module")
def sae_labels() -> LabelSet:
    """Labels of a 4,608-latent SAE (the size the dashboard must stay responsive at)."""
    units = [_unit(i) for i in range(4608)]
    units[4001].description = "the word 'zebra' in lists"
    return LabelSet(units, {"hook": "blocks.3.hook_resid_post", "sae": "topk"})


def test_summary_is_compact_for_a_4608_latent_sae(sae_labels):
    dash = FeatureDashboard(sae_labels)
    state = dash.state()
    assert len(state["summary"]) == 4608 and state["title"] == "blocks.3.hook_resid_post/sae"
    assert dict(zip(SUMMARY_COLUMNS, state["summary"][7], strict=True)) == {
        "unit": 7, "label": "token ' t7'", "score": 0.931, "max": 2.5, "freq": 0.0123}  # fmt: skip
    assert len(json.dumps(state["summary"])) / 4608 < 64  # bytes per unit: no exemplars in the summary
    synced = {k: v for k, v in dash.get_state().items() if k in ("summary", "detail", "selected", "title")}
    assert len(json.dumps(synced)) < 4608 * 64 + 20_000  # one unit's detail, not 4,608
    assert state["detail"]["unit"] == 0 and len(state["detail"]["ex"]) == 15


def test_browser_selection_fills_the_detail_in_python(sae_labels):
    dash = FeatureDashboard(sae_labels, unit=12, max_exemplars=4, max_samples=2)
    assert dash.selected == 12 and dash.detail["unit"] == 12
    dash.set_state({"selected": 4001})  # what the frontend's model.set('selected') + save_changes() arrives as
    d = dash.detail
    assert d["unit"] == 4001 and d["description"] == "the word 'zebra' in lists" and d["label"] == "token ' t4001'"
    assert len(d["ex"]) == 4 and len(d["low"]) == 2 and d["ex"][0][0][1] == " t4001" and d["ex"][0][1][1] == 2.5
    assert (
        d["out_top"] == [" dog", " cat"]
        and d["hist"]["counts"] == [30, 2, 1]
        and d["scores"]["auroc"] == pytest.approx(0.9312, abs=2e-4)
    )
    dash.select(5)
    assert dash.state()["selected"] == 5 and dash.detail["unit"] == 5
    with pytest.raises(InputError, match=r"unit 4700 is not among the 4608 labelled units.*nearest: 4607"):
        dash.select(4700)
    dash.set_state({"selected": 99_999})  # an id the browser should never send: no detail, no crash
    assert dash.detail == {}


def test_search_matches_ids_labels_and_descriptions(sae_labels):
    dash = FeatureDashboard(sae_labels)
    assert dash.search("zebra") == [4001]
    assert dash.search("T460")[:3] == [460, 4600, 4601] and len(dash.search("t460")) == 9
    assert dash.search("tok:17")[:2] == [17, 170] and dash.search("no such label") == []


def test_export_is_offline_and_browses_the_cached_units(sae_labels, tmp_path):
    dash = FeatureDashboard(sae_labels, offline_units=3)
    dash.select(4001)
    html = dash.export_html(tmp_path / "features.html").read_text()
    assert not re.search(r"https?://|<script[^>]+src=|<link[^>]+href=", html)
    assert EVIL not in html  # dataset text cannot become markup
    blob = re.search(r"<script id='interp-state' type='application/json'>(.*?)</script>", html, re.S).group(1)
    state = json.loads(blob)
    assert sorted(state["cached"], key=int) == ["0", "1", "2", "4001"] and state["selected"] == 4001
    assert state["cached"]["4001"]["ex"][0][0][2] == EVIL and len(state["summary"]) == 4608
    assert len(html) < 4608 * 64 + 60_000  # four details plus the summary, not 4,608 details
    assert 'data-role":"unit-select' not in html and "data-role':'unit-select'" in html  # the module, inlined


def test_image_units_carry_only_their_thumbnails():
    img = ImageExemplar(3, "img/3", 1.5, "0110", "0990", 2)
    u = UnitLabel(0, "red", "colour:red", 1.0, 0.9, 0.1, 5, 5, images=[img], images_lower=[img], max=1.5)
    labels = LabelSet([u], {"hook": "blocks.1.mlp.hook_post"}, {"thumbs": {"3": THUMB, "4": "data:image/png;base64,x"}})
    d = FeatureDashboard(labels).detail
    assert d["imgs"][0] == [3, "img/3", 1.5, "0110", "0990", 2] and d["thumbs"] == {"3": THUMB}


def test_from_path_and_input_errors(sae_labels, tmp_path):
    small = LabelSet(sae_labels.units[:3], sae_labels.meta)
    (tmp_path / "labels.json").write_text(small.to_json())
    assert FeatureDashboard.from_path(tmp_path).summary == FeatureDashboard.from_path(tmp_path / "labels.json").summary
    assert FeatureDashboard.from_path(tmp_path, unit=2).detail["unit"] == 2
    with pytest.raises(InputError, match="no labels at"):
        FeatureDashboard.from_path(tmp_path / "missing")
    with pytest.raises(InputError, match="no units"):
        FeatureDashboard(LabelSet([]))
    never = UnitLabel(9, "(never active)", "", float("nan"), None, None, 0, 0, max=float("nan"))
    dash = FeatureDashboard(LabelSet([never]))
    assert dash.summary == [[9, "(never active)", None, None, 0.0]] and dash.detail["pmi"] is None


def test_real_labels_of_planted_units():
    from interp.labeling.exemplars import array_batches
    from interp.labeling.label import LabelConfig, label_units
    from interp.labeling.planted import planted_activations, planted_units, word_probe

    probe = word_probe()
    planted = planted_units(probe)
    labels = label_units(array_batches(planted_activations(probe, planted)), probe, LabelConfig())
    dash = FeatureDashboard(labels)
    i = next(i for i, p in enumerate(planted) if p.kind == "token")
    truth = planted[i].truth.label
    assert i in dash.search(truth)
    dash.set_state({"selected": labels.units[i].unit})
    d = dash.detail
    top = d["ex"][0]  # [tokens, acts, active, centre, value]: the window is centred on the planted token
    assert d["label"] == truth and top[0][top[3]].strip() in truth and top[4] == pytest.approx(d["max"], rel=0.01)
    assert d["scores"]["auroc"] > 0.9 and sum(d["hist"]["counts"]) > 0



@pytest.mark.slow
def test_export_renders_in_chromium(sae_labels, tmp_path, render_dom):
    dash = FeatureDashboard(sae_labels, unit=4001, offline_units=2)
    dom = render_dom(dash.export_html(tmp_path / "f.html"))
    assert 'data-rendered="1"' in dom and 'class="interp-feature"' in dom  # render() ran without throwing
    assert re.search(r'<div data-role="detail" data-unit="4001">', dom)
    assert "the word 'zebra' in lists" in dom and 'data-role="histogram"' in dom
    assert 'title="2.500"' in dom and "&lt;script&gt;" in dom  # hover values; dataset text shown as text
    assert '<input data-role="unit-select" type="number"' in dom and 'data-role="search"' in dom
