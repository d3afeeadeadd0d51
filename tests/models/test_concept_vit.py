"""The shipped concept ViTs: planted units separate their concepts, the spurious variant takes the shortcut."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from interp.datasets.concepts import CONCEPTS, concept_images
from interp.errors import InputError, UnknownNameError
from interp.interventions import Ablate, intervene
from interp.models.concept_vit import (
    POSITIVE_COVERAGE,
    SPURIOUS_READOUT,
    auroc,
    concept_vit_config,
    load_concept_vit,
    patch_targets,
    plan_designated_units,
    pooled_units,
)
from interp.models.vit import HookedViT

FRESH_SEED = 2024  # not the seed the script trains and evaluates with
#: Least AUROC against patches of other objects, per attribute (shape and size need context, so are harder).
HARD_AUROC_FLOOR = {"colour": 0.95, "texture": 0.95, "position": 0.95, "shape": 0.6, "size": 0.75}


@pytest.fixture(scope="module")
def concepts_vit():
    return load_concept_vit("concepts")


@pytest.fixture(scope="module")
def fresh():
    return concept_images(200, seed=FRESH_SEED, split="heldout")


@pytest.fixture(scope="module")
def fresh_cache(concepts_vit, fresh):
    model = concepts_vit.model
    with torch.no_grad():
        out, cache = model.run_with_cache(fresh.pixels(), names_filter=lambda n: n.endswith("mlp.hook_post"))
    return out, cache


def test_loads_with_hooks_and_truth(concepts_vit):
    model, head, meta = concepts_vit
    assert isinstance(model, HookedViT) and not model.training
    assert model.cfg == concept_vit_config("concepts")
    for name in ("blocks.1.mlp.hook_post", "blocks.2.mlp.hook_post", "blocks.0.attn.hook_pattern", "hook_embed"):
        assert name in model.hook_dict
    truth = meta["designated_units"]
    assert truth == plan_designated_units(model.cfg.d_mlp, meta["hyperparameters"]["seed"])
    labels = [c for units in truth.values() for c in units.values()]
    assert sorted(labels) == sorted(CONCEPTS)  # one unit per concept
    assert all(0 <= int(u) < model.cfg.d_mlp for units in truth.values() for u in units)
    assert head.out_features == len(CONCEPTS) and meta["classes"] == list(CONCEPTS)
    assert meta["metrics"]["min_heldout_unit_auroc"] >= 0.9
    assert "scripts/train_concept_vit.py" in meta["command"]


def test_raw_images_match_pixels(concepts_vit, fresh):
    model = concepts_vit.model
    with torch.no_grad():
        assert torch.allclose(model(fresh.images[:4]), model(fresh.pixels()[:4]), atol=1e-5)


def _scored_patches(fresh, concept: str, hard: bool):
    """Which patches count (positives, and negatives of all or only of other objects) and their labels."""
    cov = fresh.patch_coverage(6).flatten(2)[:, CONCEPTS.index(concept)]  # [n, patch]
    pos, neg = cov >= POSITIVE_COVERAGE, cov == 0
    if hard:
        neg &= fresh.object_coverage(6).flatten(1) >= POSITIVE_COVERAGE
    keep = pos | neg
    return keep, pos[keep].numpy()


@pytest.mark.parametrize("hard", [False, True], ids=["vs-all-patches", "vs-other-objects"])
def test_designated_units_separate_their_concepts(concepts_vit, fresh, fresh_cache, hard):
    _, cache = fresh_cache
    for hook, units in concepts_vit.meta["designated_units"].items():
        acts = cache[hook][:, 1:]  # [n, patch, d_mlp], CLS dropped
        for unit, concept in units.items():
            keep, y = _scored_patches(fresh, concept, hard)
            score = roc_auc_score(y, acts[..., int(unit)][keep].numpy())
            floor = HARD_AUROC_FLOOR[concept.split(":")[0]] if hard else 0.9
            assert score >= floor, (concept, score)
            if hard:  # the planted unit, not any object-detecting unit of the layer, carries the concept
                others = [roc_auc_score(y, acts[..., j][keep].numpy()) for j in range(0, acts.shape[-1], 8)]
                assert score > np.median(others) + 0.15, (concept, score, np.median(others))


def test_auroc_helper_matches_sklearn(fresh):
    t = patch_targets(fresh)[:, CONCEPTS.index("colour:red")].flatten()
    keep = ~t.isnan()
    scores = torch.randn(int(keep.sum()), generator=torch.Generator().manual_seed(0)) + t[keep]
    assert auroc(scores, t[keep]) == pytest.approx(roc_auc_score(t[keep].numpy(), scores.numpy()))


def test_presence_head_beats_majority(concepts_vit, fresh, fresh_cache):
    out, _ = fresh_cache
    with torch.no_grad():
        pred = concepts_vit.head(out[:, 0]) > 0
    present = fresh.present()
    acc = (pred == present).float().mean(0)  # [concept]
    majority = torch.maximum(present.float().mean(0), 1 - present.float().mean(0))
    assert float(acc.mean()) > float(majority.mean()) + 0.2
    assert torch.equal(concepts_vit.logits(fresh.pixels()[:3]), concepts_vit.head(out[:3, 0]))


@pytest.fixture(scope="module")
def spurious_vit():
    return load_concept_vit("spurious")


def test_spurious_variant_takes_the_colour_shortcut(spurious_vit):
    model, head, meta = spurious_vit
    assert meta["designated_units"] == {} and head.out_features == 2
    assert spurious_vit.readout == SPURIOUS_READOUT == "blocks.3.mlp.hook_post" and head.in_features == model.cfg.d_mlp
    recorded = meta["metrics"]  # measured by the training script on its own held-out images
    assert recorded["heldout_accuracy"] >= 0.8 and recorded["reversed_accuracy"] < recorded["heldout_accuracy"] - 0.5
    assert recorded["shape_only_accuracy"] > 0.55
    acc = {}
    for name, split, neutral in (
        ("confounded", "heldout", 0.0),
        ("reversed", "reversed", 0.0),
        ("shape", "heldout", 1.0),
    ):
        s = concept_images(200, seed=FRESH_SEED, split=split, task="spurious", neutral_fraction=neutral)
        with torch.no_grad():
            pred = spurious_vit.logits(s.pixels()).argmax(-1)
        acc[name] = float((pred == torch.from_numpy(s.labels)).float().mean())
    assert acc["confounded"] >= 0.88, acc  # colour follows the class: the shortcut works
    assert acc["reversed"] < acc["confounded"] - 0.6, acc  # colour contradicts it: accuracy collapses
    assert acc["shape"] > 0.53, acc  # without a colour cue some shape remains, so an edit has something to recover


def test_spurious_head_reads_only_the_pooled_units(spurious_vit, fresh):
    model = spurious_vit.model
    x = fresh.pixels()[:8]
    with torch.no_grad():
        _, cache = model.run_with_cache(x, names_filter=SPURIOUS_READOUT)
        pooled = cache[SPURIOUS_READOUT][:, 1:].mean(1)  # [b, d_mlp], CLS excluded
        assert torch.allclose(spurious_vit.logits(x), spurious_vit.head(pooled), atol=1e-5)
        assert torch.allclose(pooled_units(model, x, SPURIOUS_READOUT), pooled, atol=1e-6)
        with intervene(model, [Ablate(SPURIOUS_READOUT, method="mean", reference=cache[SPURIOUS_READOUT])]):
            flat = spurious_vit.logits(x)  # every unit at its mean: nothing about the image reaches the head
    assert torch.allclose(flat, flat[:1].expand_as(flat), atol=1e-5)


def test_truncated_and_cast_load(concepts_vit, fresh):
    small = load_concept_vit("concepts", n_layers=2, dtype="float64").model
    assert small.cfg.n_layers == 2 and small.cfg.dtype == torch.float64
    hook = "blocks.1.mlp.hook_post"
    with torch.no_grad():
        _, full = concepts_vit.model.run_with_cache(fresh.pixels()[:4], names_filter=hook)
        _, trunc = small.run_with_cache(fresh.pixels()[:4].double(), names_filter=hook)
    assert torch.allclose(full[hook].double(), trunc[hook], atol=1e-4)


def test_bad_input():
    with pytest.raises(UnknownNameError, match="'spurious'"):
        load_concept_vit("spurius")
    with pytest.raises(UnknownNameError, match="'concepts'"):
        concept_vit_config("concept")
    with pytest.raises(InputError, match="n_layers"):
        load_concept_vit(n_layers=5)
    with pytest.raises(InputError, match="negatives"):
        patch_targets(concept_images(2), negatives="background")
