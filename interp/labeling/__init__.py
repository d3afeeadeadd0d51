"""Labeling: describe what each unit of a layer responds to, MILAN-style, with scores.

Pipeline (one module each): :mod:`~interp.labeling.exemplars` (one streaming
pass over a store: top-k contexts with masks, quantiles, samples) ->
:mod:`~interp.labeling.candidates` (descriptions as predicates over tokens) ->
:mod:`~interp.labeling.pmi` (``log p(d|E) − λ log p(d)``) ->
:mod:`~interp.labeling.scoring` (held-out AUROC, balanced accuracy,
correlation, with baselines). :mod:`~interp.labeling.label` ties them
together; :mod:`~interp.labeling.vocab` is the shared logit-lens projection;
:mod:`~interp.labeling.planted` plants units with known rules to measure
accuracy. Results (:mod:`~interp.labeling.results`) feed :mod:`interp.reports`.

Images (MILAN for ViTs): :mod:`~interp.labeling.vision` measures visual
attributes per patch (colour, region, size, texture, dataset label, concept
masks); :mod:`~interp.labeling.vit` runs the one streaming pass (top-k images
with masks) and labels with the same PMI and scoring;
:mod:`~interp.labeling.groundtruth` checks labels against planted patch units
and the concept ViT. :mod:`~interp.labeling.describe` phrases labels (offline,
local LM, OpenAI-compatible endpoint) without changing their scores;
:mod:`~interp.labeling.workflows` analyses layers, audits units by query and
edits a model through its labels.

Names resolve on first use.
"""

from __future__ import annotations

from interp._lazy import lazy_exports

_EXPORTS = {
    "LabelConfig": "interp.labeling.label",
    "label_units": "interp.labeling.label",
    "label_store": "interp.labeling.label",
    "LabelSet": "interp.labeling.results",
    "UnitLabel": "interp.labeling.results",
    "ProbeSet": "interp.labeling.probe",
    "probe_from_store": "interp.labeling.probe",
    "probe_from_contexts": "interp.labeling.probe",
    "token_strings": "interp.labeling.probe",
    "collect": "interp.labeling.exemplars",
    "unit_batches": "interp.labeling.exemplars",
    "array_batches": "interp.labeling.exemplars",
    "Candidate": "interp.labeling.candidates",
    "rank": "interp.labeling.pmi",
    "score_label": "interp.labeling.scoring",
    "VocabProjection": "interp.labeling.vocab",
    "vocab_projection": "interp.labeling.vocab",
    "ImageProbe": "interp.labeling.vision",
    "image_probe": "interp.labeling.vision",
    "bundled_images": "interp.labeling.vision",
    "label_vit": "interp.labeling.vit",
    "label_image_units": "interp.labeling.vit",
    "collect_images": "interp.labeling.vit",
    "evaluate_concept_vit": "interp.labeling.groundtruth",
    "describe_labels": "interp.labeling.describe",
    "describer": "interp.labeling.describe",
    "analysis": "interp.labeling.workflows",
    "audit": "interp.labeling.workflows",
    "edit_spurious": "interp.labeling.workflows",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
