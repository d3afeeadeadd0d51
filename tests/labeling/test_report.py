"""The HTML report is self-contained and escapes dataset text; JSON and CSV round-trip."""

from __future__ import annotations

import csv
import re

from interp.labeling.results import LabelSet, Snippet, UnitLabel
from interp.reports.labels import write_label_report

EVIL = "<script>alert(1)</script>"


def _labels() -> LabelSet:
    snip = Snippet(["a", EVIL, "b"], [0.1, 2.0, None], [False, True, False], 1, 2.0, 0)
    unit = UnitLabel(7, f"token {EVIL!r}", "tok:1", 1.2, 0.9, 0.01, 9, 10,
                     scores={"auroc": 0.93, "balanced_accuracy": 0.8, "correlation": 0.6, "constant_auroc": 0.5,
                             "shuffled_auroc": 0.51, "shuffled_balanced_accuracy": 0.5},
                     alternatives=[{"label": "x & y", "key": "k", "pmi": 0.3, "p_given_e": 0.5, "p": 0.1,
                                    "count_e": 5, "count": 9}],
                     exemplars=[snip], lower=[snip], histogram={"counts": [3, 0, 1], "edges": [0.0, 1.0, 2.0, 3.0]},
                     output_top=[EVIL], threshold=1.0, frac_positive=0.01, max=2.0)
    never = UnitLabel(8, "(never active)", "", float("nan"), float("nan"), float("nan"), 0, 0)
    return LabelSet([unit, never], {"hook": "blocks.0.mlp.hook_post", "note": EVIL})


def test_report_is_self_contained_and_escaped(tmp_path):
    paths = write_label_report(_labels(), tmp_path)
    html = paths["html"].read_text()
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # the page's own inline script only
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)
    assert "<svg" in html and "data-search" in html and "sort" in html


def test_json_and_csv_round_trip(tmp_path):
    labels = _labels()
    paths = write_label_report(labels, tmp_path)
    back = LabelSet.load(tmp_path)
    assert back.units[0].label == labels.units[0].label and back.units[0].exemplars[0].tokens[1] == EVIL
    assert back.units[1].pmi is None  # NaN is written as null
    rows = list(csv.reader(paths["csv"].open()))
    assert rows[0][:3] == ["unit", "label", "key"] and rows[1][0] == "7" and len(rows) == 3
    write_label_report(back, tmp_path / "again")  # a reloaded set (nulls included) renders
