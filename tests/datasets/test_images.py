"""Offline image sets and ViT preprocessing (interp.datasets.images)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from interp.datasets.images import IMAGENET_MEAN, IMAGENET_STD, ImageSet, load_images, preprocess, to_rgb_uint8
from interp.errors import InputError, UnknownNameError


def _rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------ preprocess


@pytest.mark.parametrize(
    "images, batch",
    [
        (Image.fromarray(_rgb(20, 30)), 1),
        (_rgb(20, 30), 1),
        ([_rgb(20, 30), _rgb(7, 9, 1), Image.fromarray(_rgb(5, 5, 2))], 3),
        (np.stack([_rgb(12, 12, s) for s in range(4)]), 4),  # [batch, H, W, C]
        (np.zeros((5, 10, 10), dtype=np.uint8), 5),  # [batch, H, W] grayscale
        (np.zeros((10, 11), dtype=np.uint8), 1),  # [H, W] grayscale
    ],
)
def test_preprocess_shapes(images, batch):
    x = preprocess(images, image_size=28)
    assert x.shape == (batch, 3, 28, 28)
    assert x.dtype == torch.float32


def test_preprocess_normalises_with_mean_and_std():
    value = np.array([10, 128, 250], dtype=np.uint8)
    img = np.broadcast_to(value, (9, 13, 3)).copy()
    x = preprocess(img, image_size=14)
    want = (torch.tensor(value / 255.0) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(x[0].mean(dim=(1, 2)), want.float(), atol=1e-5, rtol=0)
    assert float(x.std(dim=(2, 3)).max()) < 1e-5  # a constant image stays constant after bicubic
    y = preprocess(img, image_size=14, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    torch.testing.assert_close(y[0, :, 0, 0], torch.tensor(value / 127.5 - 1.0).float(), atol=1e-5, rtol=0)


def test_grayscale_becomes_three_equal_channels():
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    for form in (gray, gray[:, :, None], Image.fromarray(gray)):
        rgb = to_rgb_uint8(form)
        assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
        assert (rgb[:, :, 0] == gray).all() and (rgb[:, :, 1] == gray).all() and (rgb[:, :, 2] == gray).all()
    x = preprocess(gray, image_size=16, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    torch.testing.assert_close(x[0, 0], x[0, 1])
    torch.testing.assert_close(x[0, 0], x[0, 2])


def test_float_bool_and_rgba_inputs():
    img = _rgb(6, 6)
    np.testing.assert_array_equal(to_rgb_uint8(img / 255.0), img)
    assert set(np.unique(to_rgb_uint8(np.eye(4, dtype=bool)))) == {0, 255}
    rgba = np.concatenate([img, np.zeros((6, 6, 1), np.uint8)], axis=2)  # fully transparent
    assert (to_rgb_uint8(rgba) == 255).all()  # composited onto white


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.full((4, 4, 3), 200.0), r"float pixels must lie\s+in \[0, 1\]"),
        (np.full((4, 4, 3), np.nan), "NaN"),
        (np.zeros((2, 3, 4, 5, 6)), "expected"),
        ([np.zeros((4, 4, 2), dtype=np.uint8)], r"\[H, W, 3\]"),
        ([], "no images"),
        ("astronaut.png", "PIL image"),
    ],
)
def test_preprocess_rejects_bad_input(bad, match):
    with pytest.raises(InputError, match=match):
        preprocess(bad, image_size=14)


# ------------------------------------------------------------------ load_images


@pytest.mark.parametrize(
    "name, shape, n_classes",
    [("digits", (8, 8, 3), 10), ("lfw", (25, 25, 3), 2)],
)
def test_labelled_sets(name, shape, n_classes):
    s = load_images(name, split="all")
    assert isinstance(s, ImageSet) and len(s) == len(s.labels) == len(s.keys) == len(set(s.keys))
    assert s.images[0].shape == shape and s.images[0].dtype == np.uint8
    assert len(s.class_names) == n_classes and set(s.labels) == set(range(n_classes))
    assert all(k.startswith(f"{name}/") for k in s.keys)


def test_mnist_is_real_and_shuffled():
    s = load_images("mnist", split="all")
    assert len(s) == 5000 and s.images[0].shape == (28, 28, 3) and s.images[0].dtype == np.uint8
    assert s.class_names == [str(d) for d in range(10)] and set(s.labels) == set(range(10))
    assert len(set(s.labels[:50])) >= 8  # the source file is sorted by class; `limit=` must not be


def test_skimage_photos_load_offline():
    s = load_images("skimage", split="all")
    assert len(s) == 21 and s.labels is None
    assert "skimage/astronaut" in s.keys
    assert all(im.ndim == 3 and im.shape[2] == 3 and im.dtype == np.uint8 for im in s.images)


def test_splits_are_deterministic_disjoint_and_complete():
    train, held, full = (load_images("digits", split=sp) for sp in ("train", "heldout", "all"))
    again = load_images("digits", split="train")
    assert train.keys == again.keys
    assert not set(train.keys) & set(held.keys)
    assert set(train.keys) | set(held.keys) == set(full.keys)
    assert 0.05 < len(held) / len(full) < 0.15  # DEFAULT_HELD_OUT is 0.1
    assert load_images("digits", split="heldout", limit=7).keys == held.keys[:7]


def test_local_folder_round_trip(tmp_path):
    written = {}
    for cls, seed in (("dog", 1), ("cat", 2), ("cat", 3)):
        (tmp_path / cls).mkdir(exist_ok=True)
        arr = _rgb(10 + seed, 12, seed)
        Image.fromarray(arr).save(tmp_path / cls / f"img{seed}.png")
        written[f"{cls}/img{seed}.png"] = arr
    Image.fromarray(np.full((5, 5), 77, np.uint8)).save(tmp_path / "cat" / "gray.png")
    s = load_images(tmp_path, split="all")
    assert s.class_names == ["cat", "dog"]
    assert sorted(s.keys) == sorted([*written, "cat/gray.png"])
    for key, img, label in zip(s.keys, s.images, s.labels, strict=True):
        assert s.class_names[label] == key.split("/")[0]
        if key in written:
            np.testing.assert_array_equal(img, written[key])
        else:
            assert img.shape == (5, 5, 3) and (img == 77).all()
    train, held = load_images(tmp_path, "train"), load_images(tmp_path, "heldout")
    assert sorted(train.keys + held.keys) == sorted(s.keys)


def test_flat_folder_is_unlabelled(tmp_path):
    Image.fromarray(_rgb(8, 8)).save(tmp_path / "a.jpg")
    s = load_images(tmp_path, split="all")
    assert s.keys == ["a.jpg"] and s.labels is None and s.class_names is None


def test_empty_folder_and_unknown_name(tmp_path):
    with pytest.raises(InputError, match="holds no images"):
        load_images(tmp_path)
    with pytest.raises(UnknownNameError, match="'digits'") as e:
        load_images("digit")
    assert "folder" in str(e.value)
    with pytest.raises(InputError, match="split"):
        load_images("digits", split="test")  # type: ignore[arg-type]
