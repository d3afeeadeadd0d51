"""Synthetic concept images with per-pixel ground truth, for labeling and editing with known answers.

Each image holds one or two objects on a plain or noisy grey background. An
object has a shape, a colour, a texture, a size and sits in one quadrant, so
every pixel's concepts are known by construction: :meth:`ConceptSet.mask`
gives the boolean mask of ``"shape:circle"``, ``"colour:red"``,
``"texture:stripes"``, ``"position:top_left"``, ``"size:small"``, … per image,
and :meth:`ConceptSet.patch_coverage` the fraction of each ViT patch a concept
covers. The shipped concept ViT (:mod:`interp.models.concept_vit`) is trained on
these images with designated MLP units supervised on those masks, which makes
neuron labeling and editing checkable against truth.

Generation is deterministic: image ``i`` of a split depends only on
``(seed, split, i)``, so the first ``k`` images of ``concept_images(n, ...)``
are ``concept_images(k, ...)``, and the splits draw from disjoint seed streams.

``task="spurious"`` gives the editing benchmark: one object, a circle (label 0)
or a bar (label 1), whose colour is red for circles and blue for bars
with probability ``spurious_strength`` in the ``train`` and ``heldout`` splits,
and the other way round in the ``reversed`` split; ``neutral_fraction`` of the
objects get a colour that carries no cue (green or yellow) instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int, UInt8
from torch import Tensor

from interp.errors import InputError, UnknownNameError

__all__ = [
    "SHAPES",
    "COLOURS",
    "TEXTURES",
    "POSITIONS",
    "SIZES",
    "ATTRIBUTES",
    "CONCEPTS",
    "COLOUR_RGB",
    "PIXEL_MEAN",
    "PIXEL_STD",
    "SPURIOUS_CLASSES",
    "ConceptSet",
    "concept_images",
    "concept_index",
]

SHAPES = ("circle", "square", "triangle", "bar")
COLOURS = ("red", "green", "blue", "yellow")
TEXTURES = ("solid", "stripes", "checker")
POSITIONS = ("top_left", "top_right", "bottom_left", "bottom_right")
SIZES = ("small", "large")
#: Attribute name -> its values; an object has one value of each.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": COLOURS,
    "texture": TEXTURES,
    "position": POSITIONS,
    "size": SIZES,
}
#: Every concept name, ``"attribute:value"``, in the order of :meth:`ConceptSet.mask_tensor`.
CONCEPTS: tuple[str, ...] = tuple(f"{a}:{v}" for a, vals in ATTRIBUTES.items() for v in vals)
#: The lit colour of each named colour; textured objects alternate it with half of it (its shade).
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 90, 230),
    "yellow": (230, 210, 40),
}
#: Per-channel normalisation of :meth:`ConceptSet.pixels` (and of the concept ViT's config).
PIXEL_MEAN = (0.5, 0.5, 0.5)
PIXEL_STD = (0.25, 0.25, 0.25)
#: Class names of the spurious task, by label.
SPURIOUS_CLASSES = ("circle", "bar")

_SPLIT_CODE = {"train": 0, "heldout": 1, "reversed": 2}
_TASK_CODE = {"concepts": 0, "spurious": 1}
_MAX_OBJECTS = 2


def concept_index(concept: str) -> int:
    """Position of ``concept`` in :data:`CONCEPTS`.

    Raises:
        UnknownNameError: the name is not a concept (the message lists the nearest ones).
    """
    if concept not in CONCEPTS:
        raise UnknownNameError("concept", concept, CONCEPTS, fix="Concept names are 'attribute:value'.")
    return CONCEPTS.index(concept)


@dataclass
class ConceptSet:
    """Images with their objects' attributes and masks.

    Attributes:
        images: uint8 ``[n, H, W, 3]``.
        object_masks: bool ``[n, 2, H, W]``: the pixels of each object slot (all False when empty).
        objects: int ``[n, 2, 5]``: per object slot, the index of its value in each attribute of
            :data:`ATTRIBUTES` (shape, colour, texture, position, size); -1 for an empty slot.
        noisy: bool ``[n]``: whether the background is noise rather than a plain grey.
        labels: int ``[n]``: for ``task="spurious"`` the class (0 circle, 1 bar); for
            ``task="concepts"`` the shape of the first object.
        task: ``"concepts"`` or ``"spurious"``.
        split: ``"train"``, ``"heldout"`` or ``"reversed"``.
        seed: the seed the set was drawn with.
    """

    images: UInt8[np.ndarray, "n H W 3"]
    object_masks: Bool[np.ndarray, "n 2 H W"]
    objects: Int[np.ndarray, "n 2 5"]
    noisy: Bool[np.ndarray, " n"]
    labels: Int[np.ndarray, " n"]
    task: str
    split: str
    seed: int

    concepts = CONCEPTS

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> int:
        """Side of the square images in pixels."""
        return int(self.images.shape[1])

    def has(self, concept: str) -> Bool[np.ndarray, "n 2"]:
        """Which object slots carry ``concept`` (``[n, 2]``)."""
        attr, value = CONCEPTS[concept_index(concept)].split(":")
        col = list(ATTRIBUTES).index(attr)
        return self.objects[:, :, col] == ATTRIBUTES[attr].index(value)

    def mask(self, concept: str) -> Bool[np.ndarray, "n H W"]:
        """Pixels that belong to an object carrying ``concept``.

        Raises:
            UnknownNameError: ``concept`` is not in :data:`CONCEPTS`.
        """
        sel = self.has(concept)[:, :, None, None]  # [n, 2, 1, 1]
        return (self.object_masks & sel).any(axis=1)

    @property
    def masks(self) -> dict[str, np.ndarray]:
        """Every concept's mask, ``{concept: bool [n, H, W]}`` (computed on each access)."""
        return {c: self.mask(c) for c in CONCEPTS}

    def mask_tensor(self) -> Bool[Tensor, "n concept H W"]:
        """All masks as one bool tensor, concepts in the order of :data:`CONCEPTS`."""
        return torch.from_numpy(np.stack([self.mask(c) for c in CONCEPTS], axis=1))

    def present(self) -> Bool[Tensor, "n concept"]:
        """Image-level labels: whether any object carries each concept."""
        return torch.from_numpy(np.stack([self.has(c).any(axis=1) for c in CONCEPTS], axis=1))

    def patch_coverage(self, patch_size: int) -> Float[Tensor, "n concept grid grid"]:
        """Fraction of each ``patch_size`` patch that each concept's mask covers.

        Patches are in the ViT's row-major order once flattened (``[n, concept, grid * grid]``).

        Raises:
            InputError: ``patch_size`` does not divide the image side.
        """
        return self._pool(self.mask_tensor(), patch_size)

    def object_coverage(self, patch_size: int) -> Float[Tensor, "n grid grid"]:
        """Fraction of each patch covered by any object (the foreground).

        Raises:
            InputError: ``patch_size`` does not divide the image side.
        """
        return self._pool(torch.from_numpy(self.object_masks.any(1))[:, None], patch_size)[:, 0]

    def _pool(self, masks: Bool[Tensor, "n k H W"], patch_size: int) -> Float[Tensor, "n k grid grid"]:
        if patch_size < 1 or self.size % patch_size:
            raise InputError(
                f"patch_size {patch_size} does not divide the image side {self.size}. "
                f"Use a divisor of {self.size}, e.g. {_divisors(self.size)}."
            )
        n, k, grid = masks.shape[0], masks.shape[1], self.size // patch_size
        pooled = torch.nn.functional.avg_pool2d(masks.float().flatten(0, 1)[:, None], patch_size)
        return pooled.view(n, k, grid, grid)  # [n * k, 1, grid, grid] -> [n, k, grid, grid]

    def pixels(self) -> Float[Tensor, "n 3 H W"]:
        """Images normalised with :data:`PIXEL_MEAN` / :data:`PIXEL_STD` (what the concept ViT takes)."""
        x = torch.from_numpy(self.images).permute(0, 3, 1, 2).float() / 255.0  # [n, 3, H, W]
        mean = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
        return (x - mean) / std

    def describe(self, i: int) -> list[dict[str, str]]:
        """The objects of image ``i`` as ``[{"shape": "circle", "colour": "red", ...}, ...]``."""
        return [
            {a: ATTRIBUTES[a][int(v)] for a, v in zip(ATTRIBUTES, obj, strict=True)}
            for obj in self.objects[i]
            if obj[0] >= 0
        ]


def _divisors(n: int) -> list[int]:
    return [d for d in range(2, n) if n % d == 0][:6]


def _check_args(n: int, size: int, split: str, task: str, spurious_strength: float) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise InputError(f"n must be a non-negative number of images, got {n!r}.")
    if not isinstance(size, (int, np.integer)) or size < 24 or size > 256 or size % 2:
        raise InputError(
            f"size must be an even number of pixels in [24, 256] (objects sit in quadrants), got {size!r}. "
            "Use e.g. size=48."
        )
    if task not in _TASK_CODE:
        raise UnknownNameError("concept task", str(task), _TASK_CODE)
    if split not in _SPLIT_CODE:
        raise UnknownNameError("concept split", str(split), _SPLIT_CODE)
    if split == "reversed" and task != "spurious":
        raise InputError("split 'reversed' exists only for task='spurious'. Use 'train' or 'heldout'.")
    if not 0.0 <= spurious_strength <= 1.0:
        raise InputError(f"spurious_strength must be a probability in [0, 1], got {spurious_strength!r}.")


def _shape_mask(shape: str, cy: float, cx: float, side: float, vertical: bool, size: int) -> np.ndarray:
    """Boolean ``[size, size]`` mask of one shape with bounding box ``side`` centred on ``(cy, cx)``."""
    y, x = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    dy, dx, h = y - cy, x - cx, side / 2
    if shape == "circle":
        return dy**2 + dx**2 <= h**2
    if shape == "square":
        return (np.abs(dy) <= h) & (np.abs(dx) <= h)
    if shape == "triangle":  # apex up, base at the bottom of the box
        return (np.abs(dy) <= h) & (np.abs(dx) <= (dy + h) / 2)
    if vertical:  # bar: a third as wide as long
        dy, dx = dx, dy
    return (np.abs(dx) <= h) & (np.abs(dy) <= h / 3)


def _texture(texture: str, size: int) -> np.ndarray:
    """Boolean ``[size, size]``: True where a textured object shows its lit colour."""
    y, x = np.mgrid[0:size, 0:size]
    if texture == "stripes":  # diagonal stripes, 3 px wide
        return ((x + y) // 3) % 2 == 0
    if texture == "checker":  # 3 px squares
        return ((x // 3) + (y // 3)) % 2 == 0
    return np.ones((size, size), dtype=bool)


def _draw_object(rng: np.random.Generator, attrs: list[int], size: int) -> np.ndarray:
    """Mask of one object with attribute indices ``attrs`` (shape, colour, texture, position, size)."""
    q = size / 2
    big = attrs[4] == 1
    side = q * (rng.uniform(0.68, 0.88) if big else rng.uniform(0.40, 0.55))
    slack = (q - side) / 2 - 1  # keep a pixel of margin inside the quadrant
    row, col = divmod(attrs[3], 2)
    cy = q * row + q / 2 + rng.uniform(-slack, slack)
    cx = q * col + q / 2 + rng.uniform(-slack, slack)
    return _shape_mask(SHAPES[attrs[0]], cy, cx, side, bool(rng.integers(2)), size)


def _sample_attrs(rng: np.random.Generator, task: str, split: str, strength: float, neutral: float) -> list[list[int]]:
    """Attribute indices of the objects of one image (distinct quadrants)."""
    n_obj = 1 if task == "spurious" else int(rng.integers(1, _MAX_OBJECTS + 1))
    quadrants = rng.permutation(len(POSITIONS))[:n_obj]
    out = []
    for quad in quadrants:
        attrs = [int(rng.integers(len(v))) for v in ATTRIBUTES.values()]
        attrs[3] = int(quad)
        if task == "spurious":
            label = int(rng.integers(2))
            attrs[0] = SHAPES.index(SPURIOUS_CLASSES[label])
            follows = rng.uniform() < strength  # colour follows the class ...
            if split == "reversed":  # ... or, in the reversed split, the other class
                follows = not follows
            attrs[1] = COLOURS.index(("red", "blue")[label if follows else 1 - label])
            if rng.uniform() < neutral:  # a colour that says nothing about the class
                attrs[1] = COLOURS.index(("green", "yellow")[int(rng.integers(2))])
        out.append(attrs)
    return out


def _one_image(seq: np.random.SeedSequence, size: int, task: str, split: str, strength: float, neutral: float):
    rng = np.random.default_rng(seq)
    noisy = bool(rng.integers(2))
    grey = rng.uniform(40, 110)
    if noisy:  # colour noise, dim enough that objects stay the brightest colours
        img = np.clip(rng.normal(grey, 18.0, (size, size, 3)), 0, 255)
    else:
        img = np.full((size, size, 3), grey)
    masks = np.zeros((_MAX_OBJECTS, size, size), dtype=bool)
    objects = np.full((_MAX_OBJECTS, len(ATTRIBUTES)), -1, dtype=np.int64)
    for k, attrs in enumerate(_sample_attrs(rng, task, split, strength, neutral)):
        m = _draw_object(rng, attrs, size)
        lit = np.array(COLOUR_RGB[COLOURS[attrs[1]]], dtype=np.float64)
        on = _texture(TEXTURES[attrs[2]], size)
        img[m & on] = lit
        img[m & ~on] = np.floor(lit / 2)
        masks[k], objects[k] = m, attrs
    return img.round().astype(np.uint8), masks, objects, noisy


def concept_images(
    n: int,
    seed: int = 0,
    split: str = "train",
    size: int = 48,
    *,
    task: str = "concepts",
    spurious_strength: float = 0.95,
    neutral_fraction: float = 0.0,
) -> ConceptSet:
    """Draw ``n`` synthetic concept images with their masks.

    Args:
        n: number of images.
        seed: base seed; image ``i`` depends only on ``(seed, task, split, i)``.
        split: ``"train"`` or ``"heldout"`` (disjoint seed streams), or ``"reversed"`` for
            ``task="spurious"`` (the colour correlation flipped).
        size: side of the square images in pixels (even, 24..256); 48 is what the concept ViT takes.
        task: ``"concepts"`` (1–2 objects, every attribute uniform and independent) or
            ``"spurious"`` (one circle or bar whose colour is confounded with its class).
        spurious_strength: for ``task="spurious"``, the probability that a circle is red and a
            bar blue (``train`` / ``heldout``), or blue and red (``reversed``).
        neutral_fraction: for ``task="spurious"``, the fraction of objects coloured green or yellow
            instead (no colour cue, so a model must also learn shape); 0 gives only red and blue,
            1 a shape-only test set.

    Returns:
        A :class:`ConceptSet`.

    Raises:
        InputError: bad ``n``, ``size``, ``spurious_strength``, or ``reversed`` without the spurious task.
        UnknownNameError: unknown ``task`` or ``split``.
    """
    _check_args(n, size, split, task, spurious_strength)
    if not 0.0 <= neutral_fraction <= 1.0:
        raise InputError(f"neutral_fraction must be a probability in [0, 1], got {neutral_fraction!r}.")
    root = np.random.SeedSequence([int(seed), _TASK_CODE[task], _SPLIT_CODE[split]])
    args = (size, task, split, spurious_strength, neutral_fraction)
    items = [_one_image(s, *args) for s in root.spawn(int(n))]
    objects = np.stack([it[2] for it in items]) if n else np.zeros((0, _MAX_OBJECTS, len(ATTRIBUTES)), np.int64)
    first_shape = objects[:, 0, 0] if n else np.zeros(0, np.int64)
    labels = first_shape if task == "concepts" else np.array([SPURIOUS_CLASSES.index(SHAPES[s]) for s in first_shape])
    return ConceptSet(
        images=np.stack([it[0] for it in items]) if n else np.zeros((0, size, size, 3), np.uint8),
        object_masks=np.stack([it[1] for it in items]) if n else np.zeros((0, _MAX_OBJECTS, size, size), bool),
        objects=objects,
        noisy=np.array([it[3] for it in items], dtype=bool),
        labels=labels.astype(np.int64),
        task=task,
        split=split,
        seed=int(seed),
    )
