"""Workflows: per-layer analysis of description kinds, auditing by query, and the spurious-colour edit."""

from __future__ import annotations

import re

import pytest

from interp.errors import InputError
from interp.labeling.workflows import analysis, analysis_figure, audit


def test_analysis_counts_kinds_per_layer(planted):
    _, units, _, labels = planted
    table = analysis({"planted": labels, "half": type(labels)(labels.units[:8], labels.meta)})
    mine = table[table.layer == "planted"]
    assert mine.units.sum() == len(units) and abs(mine.share.sum() - 1) < 1e-9
    assert {"token", "lexical class", "position"} <= set(mine.kind)
    fig = analysis_figure(table)
    assert len(fig.data) == table.kind.nunique()


def test_audit_finds_units_by_query(planted):
    _, units, _, labels = planted
    word = units[0].truth.label.split("'")[1]  # the planted token of unit 0
    hits = audit(labels, word)
    assert hits and hits[0]["unit"] == 0 and hits[0]["matched"].startswith("label")
    assert all(h["auroc"] is not None for h in hits)
    assert audit(labels, "digits", alternatives=False)[0]["label"] == "digits"
    with pytest.raises(InputError, match="regular expression"):
        audit(labels, "(")


@pytest.fixture(scope="module")
def edit():
    from interp.labeling.workflows import edit_spurious

    return edit_spurious(n_images=400, n_random=3)


@pytest.mark.slow
def test_edit_spurious_ablating_colour_units_recovers_reversed_accuracy(edit):
    print(edit.table())
    methods = [r["method"] for r in edit.rows]
    assert methods[0] == "none" and methods[1] == "labelled" and methods[3] == "most active"
    assert methods[2].startswith("random") and edit.ablation == "mean"
    assert list(edit.ablated) == ["blocks.3.mlp.hook_post"]  # the units the head reads
    n = edit.rows[1]["units"]
    assert 0 < n < 64 and n == sum(len(v) for v in edit.ablated.values())
    assert all(r["units"] in (0, n) for r in edit.rows)
    for hook, chosen in edit.ablated.items():
        texts = {u.unit: f"{u.key} {u.text}" for u in edit.labels[hook].units}
        assert all(re.search(r"\b(red|blue)\b", texts[u]) for u in chosen)
    acc = {m.split(" ")[0]: edit.accuracy(m) for m in ("none", "labelled", "random", "most active")}
    # the colour shortcut goes: reversed-split accuracy rises, far more than for as many random or most active units
    assert acc["labelled"] >= acc["none"] + 0.2, edit.table()
    assert acc["labelled"] >= acc["random"] + 0.15, edit.table()
    assert acc["labelled"] >= acc["most"] + 0.15, edit.table()
    # the cost: held-out accuracy falls towards what shape alone gives, but the model still tells the shapes apart
    assert edit.accuracy("labelled", "heldout") >= 0.6, edit.table()
    with pytest.raises(InputError, match="no ablation"):
        edit.accuracy("everything")


def test_edit_spurious_rejects_unknown_ablation():
    from interp.labeling.workflows import edit_spurious

    with pytest.raises(InputError, match="ablation must be"):
        edit_spurious(ablation="resample")
