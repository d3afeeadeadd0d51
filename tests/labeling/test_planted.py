"""Planted units: the labels recover the planted rules, and the scores separate them from chance."""

from __future__ import annotations

import math

from interp.labeling.planted import evaluate


def test_top3_accuracy_and_auroc_meet_targets(planted):
    _, units, _, labels = planted
    report = evaluate(labels, units)
    print(report.table())
    assert report.top3 >= 0.8, report.table()
    assert report.auroc_min >= 0.85, report.table()
    assert {u.kind for u in units} == {"token", "class", "position", "and", "or", "polysemantic", "noisy"}


def test_baselines_are_near_chance(planted):
    _, _, _, labels = planted
    for u in labels.units:
        s = u.scores
        assert s["constant_auroc"] == 0.5 and s["constant_correlation"] == 0.0
        assert math.isclose(s["constant_balanced_accuracy"], 0.5)
        assert abs(s["shuffled_auroc"] - 0.5) < 0.1, (u.label, s)
        assert abs(s["shuffled_balanced_accuracy"] - 0.5) < 0.1, (u.label, s)
        assert abs(s["shuffled_correlation"]) < 0.1, (u.label, s)
        assert s["auroc"] > s["shuffled_auroc"] + 0.3


def test_heldout_rows_never_ground(planted):
    probe, _, _, labels = planted
    held = probe.heldout_mask(labels.meta["heldout_every"])
    assert labels.meta["n_grounding_rows"] == int((~held).sum())
    assert labels.meta["n_heldout_rows"] == int(held.sum())
    exemplar_contexts = {s.context for u in labels.units for s in u.exemplars}
    held_contexts = set(probe.context[held].tolist())
    assert not exemplar_contexts & held_contexts
