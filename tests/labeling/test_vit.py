"""ViT labeling: image probes measure the right attributes; the streaming pass keeps exact top images and masks;
planted patch units and the concept ViT's designated units get their true labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from interp.labeling.groundtruth import planted_image_activations, planted_image_units
from interp.labeling.label import LabelConfig
from interp.labeling.planted import evaluate
from interp.labeling.vision import COLOUR_NAMES, ImageData, colour_index, image_probe
from interp.labeling.vit import collect_images, label_image_units, label_vit


@pytest.fixture(scope="module")
def concepts():
    from interp.datasets.concepts import concept_images

    data = concept_images(250, split="train")
    return data, image_probe(data, 48, 6)


def test_colour_names_and_where_atoms():
    rgb = np.array([[[220, 40, 40], [40, 90, 230], [250, 250, 250], [10, 10, 10], [128, 128, 128]]], np.uint8)
    assert [COLOUR_NAMES[i] for i in colour_index(rgb)[0]] == ["red", "blue", "white", "black", "gray"]
    img = np.zeros((16, 16, 3), np.uint8)
    img[:8] = (220, 40, 40)  # red top half, black bottom half
    probe = image_probe(ImageData([img], [0], ["a"]), 16, 4)
    red, top = probe.column("colour:red"), probe.column("where:top")
    assert torch.equal(red, top) and int(red.sum()) == 8 and bool(probe.column("label:a").all())


def test_concept_atoms_follow_the_masks(concepts):
    data, probe = concepts
    cov = data.patch_coverage(6).flatten(2)  # [n, concept, P]
    from interp.datasets.concepts import CONCEPTS

    want = (cov[:, CONCEPTS.index("shape:circle")] >= 0.5).reshape(-1)
    assert torch.equal(probe.column("concept:shape:circle"), want)
    assert probe.grid == 8 and len(probe) == len(data) * 64


def test_streaming_pass_keeps_exact_top_images_and_thresholds():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(60, 9, 4, generator=g).relu()  # [images, P, u]
    held = torch.arange(60) % 5 == 4
    a = collect_images(iter([maps[:7], maps[7:40], maps[40:]]), held, k=5, top_rows=10, reservoir=10_000)
    b = collect_images(iter([maps]), held, k=5, top_rows=10, reservoir=10_000)
    assert torch.equal(a.top_images, b.top_images) and torch.equal(a.maps, b.maps)
    peaks = maps.amax(1).masked_fill(held[:, None], -1)  # [images, u]
    assert torch.equal(a.top_images, peaks.topk(5, dim=0).indices.T)
    assert torch.equal(a.maps[2, 0], maps[int(a.top_images[2, 0]), :, 2])
    grounding = maps[~held].reshape(-1, 4)
    assert torch.allclose(a.ex.threshold, grounding.sort(0).values[round(0.99 * (len(grounding) - 1))])
    assert len(a.ex.heldout_rows) == int(held.sum()) * 9


def test_planted_image_units_get_their_labels(concepts):
    _, probe = concepts
    units = planted_image_units()
    acts = planted_image_activations(probe, units)
    labels = label_image_units(iter(acts.split(64)), probe, LabelConfig())
    report = evaluate(labels, units)
    print(report.table())
    assert report.top3 >= 0.8 and report.auroc_min >= 0.85, report.table()
    for u in labels.units:
        assert u.images and all(len(e.mask) == 64 and "1" in e.mask for e in u.images)
        assert abs(u.scores["shuffled_auroc"] - 0.5) < 0.2 and u.scores["constant_auroc"] == 0.5
        assert u.scores["auroc"] > u.scores["shuffled_auroc"] + 0.3
    shuffled = sorted(u.scores["shuffled_auroc"] for u in labels.units)
    assert abs(shuffled[len(shuffled) // 2] - 0.5) < 0.05
    assert labels.assets["thumbs"] and labels.meta["modality"] == "image"


def test_label_vit_streams_a_tiny_hooked_vit():
    from interp.datasets.concepts import concept_images
    from interp.models.vit import HookedViT, HookedViTConfig

    data = concept_images(60, split="heldout")
    torch.manual_seed(0)
    model = HookedViT(HookedViTConfig(n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=48, image_size=48,
                                      patch_size=12)).eval()
    labels = label_vit(model, "blocks.1.mlp.hook_post", data, LabelConfig(k=5), units=[3, 7, 11], batch_size=30)
    assert [u.unit for u in labels.units] == [3, 7, 11] and labels.meta["grid"] == 4
    for u in labels.units:
        assert u.label and u.kind and len(u.images) <= 5 and 0 <= u.scores["auroc"] <= 1
        assert all(len(e.mask) == 16 for e in u.images)
        assert not math.isnan(u.scores["balanced_accuracy"])


@pytest.mark.slow
def test_concept_vit_designated_units_are_found():
    """The shipped concept ViT's designated units (truth known by construction) against their labels.

    Block 1's colour, texture and position units are recovered. Four of block 2's shape and size units
    fire on every object (their training record: AUROC against other objects' patches 0.66-0.83), so
    they were designated but not planted; the 80% top-3 target holds on the selectively planted units,
    and the overall figure over all 17 designated units is guarded at its measured level.
    """
    from interp.labeling.groundtruth import evaluate_concept_vit

    result = evaluate_concept_vit(n_images=150)
    print(result.table())
    rows = result.report.rows
    block1 = [r for r in rows if r[0].startswith("1:")]
    assert len(block1) == 11 and all(r[4] is not None and r[4] <= 3 for r in block1), result.table()
    assert sum(r[4] == 1 for r in block1) >= 9, result.table()
    assert result.report.top3 >= 0.7, result.table()
    assert len(result.planted.rows) == 13 and result.planted.top3 >= 0.8, result.table()
    assert sorted(result.unselective) == ["2:100 size:large", "2:108 shape:triangle", "2:70 shape:square",
                                          "2:83 shape:circle"]  # fmt: skip
    assert min(r[5] for r in rows) >= 0.85, result.table()  # every label detects what its unit does
