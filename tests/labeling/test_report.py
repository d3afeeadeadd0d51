"""The report: a compact page plus on-demand chunk files; dataset text escaped; JSON, CSV and Parquet round-trip."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess

import pytest

from interp.labeling.results import ImageExemplar, LabelSet, Snippet, UnitLabel
from interp.reports.labels import write_label_report

EVIL = "<script>alert(1)</script>"
THUMB = "data:image/png;base64,iVBORw0KGgo="


def _unit(i: int, label: str = "token 'x'", n_ex: int = 20) -> UnitLabel:
    snip = Snippet(["a", EVIL, "b"], [0.1, 2.0, None], [False, True, False], 1, 2.0, 0)
    img = ImageExemplar(3, "img/3", 1.5, "0110", "0990", 2)
    return UnitLabel(i, label, "tok:1", 1.2, 0.9, 0.01, 9, 10,
                     scores={"auroc": 0.93, "balanced_accuracy": 0.8, "correlation": 0.6, "constant_auroc": 0.5,
                             "shuffled_auroc": 0.51, "shuffled_balanced_accuracy": 0.5},
                     alternatives=[{"label": "x & y", "key": "k", "pmi": 0.3, "p_given_e": 0.5, "p": 0.1,
                                    "count_e": 5, "count": 9}],
                     exemplars=[snip] * n_ex, lower=[snip],
                     histogram={"counts": [3, 0, 1], "edges": [0.0, 1.0, 2.0, 3.0]},
                     output_top=[EVIL], threshold=1.0, frac_positive=0.01, max=2.0, images=[img], kind="tok")


def _labels() -> LabelSet:
    never = UnitLabel(8, "(never active)", "", float("nan"), float("nan"), float("nan"), 0, 0)
    return LabelSet([_unit(7, f"token {EVIL!r}"), never], {"hook": "blocks.0.mlp.hook_post", "note": EVIL},
                    {"thumbs": {"3": THUMB}})


def test_page_is_self_contained_escaped_and_chunked(tmp_path):
    paths = write_label_report(_labels(), tmp_path, max_exemplars=4)
    html = paths["html"].read_text()
    assert EVIL not in html and "\\u003cscript\\u003e" in html  # escaped inside the JSON blob
    assert html.count("<script") == 2  # the data blob and the page's own script
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html) and "innerHTML" not in html
    chunk = (tmp_path / "units" / "00000.js").read_text()
    assert chunk.startswith("UNITS_LOADED(0,") and EVIL not in chunk and THUMB in chunk
    details = json.loads(chunk[len("UNITS_LOADED(0,"):].rsplit(",{", 1)[0])
    assert len(details[0]["ex"]) == 4 and details[0]["imgs"][0][3] == "0110"  # exemplars capped, mask kept


def test_page_stays_under_the_cap_at_thousands_of_units(tmp_path):
    units = [_unit(i, "a rather long label " * 12, n_ex=1) for i in range(2000)]
    paths = write_label_report(LabelSet(units, {"hook": "h"}), tmp_path, chunk=500, max_exemplars=1,
                               max_main_bytes=400_000)  # fmt: skip
    assert paths["html"].stat().st_size <= 400_000
    assert len(list((tmp_path / "units").iterdir())) == 4
    data = json.loads(re.search(r"type='application/json'>(.*?)</script>", paths["html"].read_text()).group(1))
    assert len(data["rows"]) == 2000 and data["chunk"] == 500
    assert data["rows"][0][1].endswith("…") and len(data["rows"][0][1]) == 80  # shortened to fit the cap


def test_json_csv_and_parquet_round_trip(tmp_path):
    import pyarrow.parquet as pq

    labels = _labels()
    paths = write_label_report(labels, tmp_path)
    back = LabelSet.load(tmp_path)
    assert back.units[0].label == labels.units[0].label and back.units[0].exemplars[0].tokens[1] == EVIL
    assert back.units[0].images[0] == labels.units[0].images[0] and back.assets == labels.assets
    assert back.units[1].pmi is None  # NaN is written as null
    rows = list(csv.reader(paths["csv"].open()))
    assert rows[0][:4] == ["layer", "unit", "description", "score"]
    assert rows[1][:2] == ["blocks.0.mlp.hook_post", "7"] and float(rows[1][3]) == 0.93 and len(rows) == 3
    table = pq.read_table(paths["parquet"])
    assert table.column("unit").to_pylist() == [7, 8] and table.column("auroc").to_pylist()[1] is None
    write_label_report(back, tmp_path / "again")  # a reloaded set (nulls included) renders


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_page_script_renders_sorts_searches_and_opens_a_unit(tmp_path):
    """Runs the page's script under node against a minimal DOM (no innerHTML allowed)."""
    from pathlib import Path

    write_label_report(_labels(), tmp_path)
    harness = Path(__file__).with_name("dom_harness.js")
    out = subprocess.run(["node", str(harness), str(tmp_path / "labels.html"), "never"], capture_output=True,
                         text=True, check=True).stdout
    assert "rows 2" in out and "after search 1" in out and "grounding: 9/10" in out, out


def test_extra_columns_sit_beside_the_labels(tmp_path):
    """A (layer, unit)-indexed table (the atlas's columns) is aligned to the labels' layer and units."""
    import pandas as pd

    from interp.errors import InputError
    from interp.reports.labels import unit_columns

    idx = pd.MultiIndex.from_tuples([(0, 7), (0, 9), (1, 7)], names=["layer", "neuron"])
    table = pd.DataFrame({"io_class": ["depletion", "enrichment", "other"], "null_frac": [0.25, 0.5, 0.9]}, idx)
    cols = unit_columns(table, _labels())
    assert cols == {"io_class": ["depletion", None], "null_frac": [0.25, None]}  # layer 0; unit 8 has no row
    html = write_label_report(_labels(), tmp_path, extra=table)["html"].read_text()
    data = json.loads(re.search(r"<script id='data' type='application/json'>(.*?)</script>", html).group(1))
    assert data["extra"] == ["io_class", "null_frac"] and data["columns"][-2:] == ["io_class", "null_frac"]
    assert data["rows"][0][-2:] == ["depletion", 0.25] and data["rows"][1][-2:] == [None, None]
    with pytest.raises(InputError, match="none of the labelled units"):
        unit_columns(table.loc[[(1, 7)]].droplevel(0).rename(index={7: 99}), _labels())
    with pytest.raises(InputError, match="names no layer"):
        unit_columns(table.rename(index={0: 5}, level=0), _labels())
