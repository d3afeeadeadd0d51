"""Synthetic concept images: masks agree with pixels, seeds are deterministic, splits and confounds hold."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.datasets.concepts import (
    ATTRIBUTES,
    COLOUR_RGB,
    CONCEPTS,
    PIXEL_MEAN,
    PIXEL_STD,
    concept_images,
    concept_index,
)
from interp.errors import InputError, UnknownNameError


@pytest.fixture(scope="module")
def cset():
    return concept_images(120, seed=3)


def test_shapes_and_concept_names(cset):
    n, size = 120, 48
    assert cset.images.shape == (n, size, size, 3) and cset.images.dtype == np.uint8
    assert cset.mask_tensor().shape == (n, len(CONCEPTS), size, size)
    assert len(CONCEPTS) == sum(len(v) for v in ATTRIBUTES.values()) == 17
    assert set(cset.masks) == set(CONCEPTS)
    assert cset.patch_coverage(6).shape == (n, len(CONCEPTS), 8, 8)
    n_objects = (cset.objects[:, :, 0] >= 0).sum(1)
    assert set(n_objects.tolist()) == {1, 2}


def test_colour_masks_hold_their_colour(cset):
    for colour, rgb in COLOUR_RGB.items():
        mask = cset.mask(f"colour:{colour}")
        assert mask.any()
        pix = cset.images[mask]  # [k, 3]
        lit = np.array(rgb, dtype=np.uint8)
        shade = (np.array(rgb) // 2).astype(np.uint8)
        is_lit, is_shade = (pix == lit).all(1), (pix == shade).all(1)
        assert (is_lit | is_shade).all(), colour
        # solid objects are lit everywhere: their colour covers every pixel of the mask
        solid = mask & cset.mask("texture:solid")
        assert (cset.images[solid] == lit).all()


def test_masks_partition_objects(cset):
    obj = cset.object_masks.any(1)  # [n, H, W]
    for attr, values in ATTRIBUTES.items():
        stack = np.stack([cset.mask(f"{attr}:{v}") for v in values])  # [value, n, H, W]
        assert (stack.sum(0) <= 1).all(), attr  # objects sit in distinct quadrants: no overlap
        assert (stack.any(0) == obj).all(), attr
    # position masks lie in their quadrant
    h = cset.size // 2
    assert not cset.mask("position:top_left")[:, h:, :].any()
    assert not cset.mask("position:top_left")[:, :, h:].any()
    assert not cset.mask("position:bottom_right")[:, :h, :].any()
    # a large object is larger than any small one of the same shape
    area = cset.object_masks.sum((2, 3))  # [n, 2]
    shape, size = cset.objects[:, :, 0], cset.objects[:, :, list(ATTRIBUTES).index("size")]
    for s in range(len(ATTRIBUTES["shape"])):
        assert area[(shape == s) & (size == 0)].max() < area[(shape == s) & (size == 1)].min()


def test_present_and_coverage_agree_with_masks(cset):
    masks = cset.mask_tensor()
    assert torch.equal(cset.present(), masks.flatten(2).any(-1))
    cov = cset.patch_coverage(6)
    assert torch.allclose(cov.sum((2, 3)) * 36, masks.flatten(2).sum(-1).float())


def test_pixels_normalisation(cset):
    px = cset.pixels()
    raw = torch.from_numpy(cset.images[:2]).permute(0, 3, 1, 2).float() / 255
    mean, std = torch.tensor(PIXEL_MEAN).view(3, 1, 1), torch.tensor(PIXEL_STD).view(3, 1, 1)
    assert torch.allclose(px[:2], (raw - mean) / std)


def test_deterministic_prefix_stable_and_splits_disjoint(cset):
    again = concept_images(40, seed=3)
    assert np.array_equal(again.images, cset.images[:40])
    assert np.array_equal(again.objects, cset.objects[:40])
    other_seed = concept_images(40, seed=4)
    held = concept_images(120, seed=3, split="heldout")
    assert not np.array_equal(other_seed.images, again.images)
    train_keys = {im.tobytes() for im in cset.images}
    assert not train_keys & {im.tobytes() for im in held.images}


def test_spurious_correlation_and_reversal():
    n = 400
    col = list(ATTRIBUTES).index("colour")
    red = list(ATTRIBUTES["colour"]).index("red")
    for split, want in (("train", 0.95), ("heldout", 0.95), ("reversed", 0.05)):
        s = concept_images(n, seed=0, split=split, task="spurious")
        assert (s.objects[:, 1, 0] == -1).all()  # one object
        circle = s.labels == 0
        assert set(s.labels.tolist()) == {0, 1}
        shapes = s.objects[:, 0, 0]
        bar = list(ATTRIBUTES["shape"]).index("bar")
        assert np.array_equal(shapes, np.where(circle, 0, bar))  # label 0 circle, 1 bar
        follows = (s.objects[:, 0, col] == red) == circle  # red circle or non-red (blue) bar
        assert abs(follows.mean() - want) < 0.04, split
    neutral = concept_images(n, seed=0, task="spurious", neutral_fraction=0.25).objects[:, 0, col]
    share = np.isin(neutral, [list(ATTRIBUTES["colour"]).index(c) for c in ("green", "yellow")]).mean()
    assert abs(share - 0.25) < 0.06
    with pytest.raises(InputError, match="reversed"):
        concept_images(2, split="reversed")


def test_bad_input():
    with pytest.raises(UnknownNameError, match="colour:red"):
        concept_index("color:red")
    with pytest.raises(UnknownNameError, match="shape:circle"):
        concept_images(2).mask("shape:circel")
    with pytest.raises(UnknownNameError, match="heldout"):
        concept_images(2, split="held_out")
    with pytest.raises(UnknownNameError, match="spurious"):
        concept_images(2, task="spurios")  # type: ignore[arg-type]
    for bad in (7, 23, 47, 1000):
        with pytest.raises(InputError, match="size"):
            concept_images(2, size=bad)
    with pytest.raises(InputError, match="n must"):
        concept_images(-1)
    with pytest.raises(InputError, match="patch_size"):
        concept_images(2).patch_coverage(5)
    with pytest.raises(InputError, match="probability"):
        concept_images(2, task="spurious", spurious_strength=1.5)
    with pytest.raises(InputError, match="neutral_fraction"):
        concept_images(2, task="spurious", neutral_fraction=-0.1)
    assert len(concept_images(0)) == 0
