"""Workflows: per-layer analysis of description kinds, auditing by query, and the spurious-colour edit."""

from __future__ import annotations

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


@pytest.mark.slow
def test_edit_spurious_compares_labelled_random_and_active_ablations():
    from interp.labeling.workflows import edit_spurious

    res = edit_spurious(n_images=60, n_random=2, hooks=["blocks.1.mlp.hook_post"])
    print(res.table())
    methods = [r["method"] for r in res.rows]
    assert methods[0] == "none" and methods[1] == "labelled" and "most active" in methods
    n = res.rows[1]["units"]
    assert n == sum(len(v) for v in res.ablated.values()) and all(r["units"] in (0, n) for r in res.rows)
    assert all(0 <= r["accuracy"] <= 1 for r in res.rows)
    for hook, chosen in res.ablated.items():
        keys = {u.unit: u.key for u in res.labels[hook].units}
        assert all(keys[u].split(":")[-1] in ("red", "blue") for u in chosen)
