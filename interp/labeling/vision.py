"""Image probe sets: what every ViT patch shows, as a table of checkable visual attributes.

Labeling a ViT unit (MILAN for images) grounds descriptions at patch level: a
row is one patch of one image (CLS excluded), and a description is a predicate
that holds or not at each patch. :class:`ImageProbe` holds those predicates as
one boolean table ``[rows, atoms]``, measured once from the pixels (at the
model's input resolution) and, where the data has them, from dataset labels and
per-pixel concept masks:

===========  ===============================================  =====================
kind         holds at a patch when                            example key
===========  ===============================================  =====================
``colour``   ≥ 40% of its pixels have that colour name        ``colour:red``
``where``    it lies in that part of the image                ``where:top``
``size``     half of it lies in a small (0.4–4% of the image) /
             large (≥ 8%) single-colour region               ``size:small``
``texture``  edge density / stripe orientation of the patch   ``texture:diagonal``
``label``    its image has that dataset label                 ``label:3``
``concept``  ≥ 50% of it is covered by the concept's mask     ``concept:shape:circle``
===========  ===============================================  =====================

Colour names come from HSV thresholds; regions for ``size`` are connected
components of one chromatic colour name (a region over half the image, a
background, counts as none); texture thresholds are quantiles of the probe
set's own patch statistics. Every atom is a
:class:`~interp.labeling.candidates.Candidate`, so compositions, PMI and
scoring are those of text labeling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from jaxtyping import Bool, Int
from PIL import Image
from torch import Tensor

from interp.errors import InputError
from interp.labeling.candidates import Candidate

__all__ = ["ImageData", "ImageProbe", "image_data", "image_probe", "bundled_images", "COLOUR_NAMES", "image_atom"]

#: Colour names in the order of the per-pixel index.
COLOUR_NAMES = ("black", "white", "gray", "red", "orange", "brown", "yellow", "green", "cyan", "blue", "purple",
                "pink")  # fmt: skip
_CHROMATIC = tuple(range(3, len(COLOUR_NAMES)))
_WHERE = ("top", "bottom", "left", "right", "centre", "border")
_TEXTURE = ("edges", "smooth", "horizontal", "vertical", "diagonal")
_SIZE = ("small", "large")


@dataclass
class ImageData:
    """Images to label with, and what is known about them.

    Attributes:
        images: uint8 ``[H, W, 3]`` arrays (sizes may differ).
        labels: class index per image, or ``None``.
        class_names: name of each class index.
        masks: ``{concept: bool [n, H, W]}`` per-pixel concept masks (all images the same size), or ``{}``.
        keys: a stable name per image (shown in reports).
        name: the dataset's name.
    """

    images: list[np.ndarray]
    labels: list[int] | None = None
    class_names: list[str] | None = None
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    name: str = "images"

    def __len__(self) -> int:
        return len(self.images)


def image_data(data: Any) -> ImageData:
    """An :class:`ImageData` from an ``ImageSet`` (:func:`interp.datasets.images.load_images`), a
    ``ConceptSet`` (:func:`interp.datasets.concepts.concept_images`: labels and concept masks kept),
    a list of uint8 arrays, or an ``ImageData`` (returned as is)."""
    if isinstance(data, ImageData):
        return data
    if hasattr(data, "object_masks"):  # ConceptSet
        from interp.datasets.concepts import SHAPES, SPURIOUS_CLASSES

        classes = list(SPURIOUS_CLASSES if data.task == "spurious" else SHAPES)
        keys = [f"{data.task}/{data.split}/{i}" for i in range(len(data))]
        return ImageData(list(data.images), [int(v) for v in data.labels], classes, data.masks, keys,
                         f"concepts-{data.task}")  # fmt: skip
    if hasattr(data, "images") and hasattr(data, "keys"):  # ImageSet
        return ImageData(list(data.images), data.labels, data.class_names, {}, list(data.keys), str(data.name))
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], np.ndarray):
        return ImageData(list(data), keys=[str(i) for i in range(len(data))])
    raise InputError(
        f"cannot read images to label from a {type(data).__name__}. Pass an ImageSet (load_images), "
        "a ConceptSet (concept_images), or a list of uint8 [H, W, 3] arrays."
    )


def bundled_images(per_set: int = 200, split: str = "all", sets: tuple[str, ...] = ("digits", "mnist", "lfw",
                   "skimage")) -> ImageData:  # fmt: skip
    """The offline image sets in one labelled :class:`ImageData`: labels ``digit 0`` … ``digit 9``
    (scikit-learn digits and MNIST together), ``face`` / ``non-face`` (LFW) and ``photo`` (scikit-image).

    Args:
        per_set: most images taken from each set (the first of the split, in a fixed order).
        split: ``train``, ``heldout`` or ``all``.
        sets: which of the four sets to use.
    """
    from interp.datasets.images import load_images

    names = [f"digit {i}" for i in range(10)] + ["face", "non-face", "photo"]
    images, labels, keys = [], [], []
    for name in sets:
        s = load_images(name, split, limit=per_set)
        images += s.images
        keys += s.keys
        if name in ("digits", "mnist"):
            labels += [int(v) for v in s.labels or []]
        elif name == "lfw":
            labels += [10 + int(v) for v in s.labels or []]
        else:
            labels += [12] * len(s.images)
    return ImageData(images, labels, names, {}, keys, "+".join(sets))


@dataclass
class ImageProbe:
    """Per-patch attribute table of a set of images (rows ``image * n_patches + patch``).

    Attributes:
        table: ``[rows, atoms]``: whether each atom holds at each patch.
        atoms: the atom of each column.
        image: image index of each row; ``patch``: patch index (row-major over the grid).
        grid: patches per side.
        thumbs: the images at the model's input size, uint8 ``[n_images, S, S, 3]``.
        keys: image keys.
    """

    table: Bool[Tensor, "n atoms"]
    atoms: list[Candidate]
    image: Int[Tensor, " n"]
    patch: Int[Tensor, " n"]
    grid: int
    thumbs: np.ndarray
    keys: list[str]

    def __post_init__(self) -> None:
        self._col = {a.key: i for i, a in enumerate(self.atoms)}

    def __len__(self) -> int:
        return self.table.shape[0]

    @property
    def doc(self) -> Int[Tensor, " n"]:
        """The image of each row (the unit of the train / held-out split)."""
        return self.image

    def column(self, key: str) -> Bool[Tensor, " n"]:
        """Where the atom ``key`` holds."""
        if key not in self._col:
            raise InputError(
                f"the image probe has no atom {key!r}; it has {len(self._col)} atoms, e.g. "
                f"{list(self._col)[:6]}. Build the probe with the data that defines it."
            )
        return self.table[:, self._col[key]]

    def subset(self, rows: Int[Tensor, " m"]) -> ImageProbe:
        """The rows ``rows`` as a new probe (thumbnails shared)."""
        return ImageProbe(
            self.table[rows], self.atoms, self.image[rows], self.patch[rows], self.grid, self.thumbs, self.keys
        )

    def heldout_mask(self, every: int = 5) -> Bool[Tensor, " n"]:
        """Rows of the held-out images: ``image % every == every - 1`` (never used for grounding)."""
        if every < 2:
            raise InputError(f"heldout_every must be at least 2 (one image in N held out), got {every}.")
        return self.image.remainder(every) == every - 1


def image_atom(kind: str, arg: str) -> Candidate:
    """The image atom ``kind:arg`` with a readable label."""
    text = {"colour": f"{arg} pixels", "where": f"{arg} of the image", "size": f"{arg} region",
            "texture": {"edges": "many edges", "smooth": "smooth"}.get(arg, f"{arg} lines"),
            "label": f"class {arg}"}.get(kind)  # fmt: skip
    if kind == "concept":
        attr, _, value = arg.partition(":")
        text = f"{value.replace('_', ' ')} ({attr})"
    return Candidate(f"{kind}:{arg}", text or f"{kind} {arg}", kind=kind, arg=arg)


def _resize(images: list[np.ndarray], size: int) -> np.ndarray:
    """uint8 ``[n, size, size, 3]`` (bicubic, as :func:`interp.datasets.images.preprocess` resizes)."""
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        out[i] = (
            im
            if im.shape[:2] == (size, size)
            else np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BICUBIC))
        )
    return out


def colour_index(rgb: np.ndarray) -> np.ndarray:
    """Index into :data:`COLOUR_NAMES` of every pixel of uint8 ``[..., 3]``."""
    x = rgb.astype(np.float32) / 255.0
    mx, mn = x.max(-1), x.min(-1)
    v, c = mx, mx - mn
    s = np.where(mx > 0, c / np.maximum(mx, 1e-6), 0.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    safe = np.maximum(c, 1e-6)
    h = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6.0
    hue_edges = np.array([0.04, 0.11, 0.19, 0.45, 0.54, 0.72, 0.83, 0.93])
    hue_names = np.array([3, 4, 6, 7, 8, 9, 10, 11, 3])  # red orange yellow green cyan blue purple pink red
    idx = hue_names[np.searchsorted(hue_edges, h)]
    idx = np.where((idx == 4) | ((idx == 3) & (v < 0.55)) | ((idx == 6) & (v < 0.45)), np.where(v < 0.6, 5, idx), idx)
    idx = np.where(s < 0.2, np.where(v > 0.85, 1, 2), idx)
    return np.where(v < 0.18, 0, idx).astype(np.int64)


def _patch_mean(x: Tensor, patch: int) -> Tensor:
    """``[n, H, W, c]`` -> per-patch means ``[n, grid * grid, c]`` (row-major)."""
    n, _, _, c = x.shape
    pooled = torch.nn.functional.avg_pool2d(x.permute(0, 3, 1, 2).float(), patch)  # [n, c, grid, grid]
    return pooled.flatten(2).transpose(1, 2)  # [n, P, c]


def _region_sizes(colours: np.ndarray) -> np.ndarray:
    """Per pixel, the area fraction of its chromatic single-colour region (0 elsewhere, and on a region
    covering over half the image: a background)."""
    from scipy import ndimage

    n, hgt, wid = colours.shape
    out = np.zeros(colours.shape, dtype=np.float32)
    for i in range(n):
        for c in np.unique(colours[i]):
            if int(c) not in _CHROMATIC:
                continue
            lab, k = ndimage.label(colours[i] == c)
            area = np.bincount(lab.ravel(), minlength=k + 1).astype(np.float32) / (hgt * wid)
            area[0] = 0.0
            out[i] = np.maximum(out[i], area[lab])
        if out[i].max() > 0.5:  # a chromatic background is no "region"
            out[i][out[i] >= out[i].max()] = 0.0
    return out


def _texture_stats(thumbs: np.ndarray, patch: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per patch: gradient energy, orientation coherence and gradient angle (structure tensor)."""
    grey = torch.from_numpy(thumbs.astype(np.float32).mean(-1) / 255.0)  # [n, S, S]
    gy, gx = torch.gradient(grey, dim=(1, 2))
    feats = torch.stack([gx * gx, gy * gy, gx * gy], dim=-1)  # [n, S, S, 3]
    jxx, jyy, jxy = _patch_mean(feats, patch).unbind(-1)  # [n, P] each
    energy = jxx + jyy
    coherence = ((jxx - jyy) ** 2 + 4 * jxy**2).sqrt() / energy.clamp(min=1e-8)
    angle = 0.5 * torch.atan2(2 * jxy, jxx - jyy)  # gradient direction in (-pi/2, pi/2]; 0 = along x
    return energy, coherence, angle


def image_probe(
    data: Any, image_size: int, patch_size: int, *, concept_min: float = 0.5, colour_min: float = 0.4
) -> ImageProbe:
    """Measure every atom at every patch of ``data`` seen at ``image_size`` with ``patch_size`` patches.

    Args:
        data: anything :func:`image_data` takes.
        image_size: the model's input side in pixels.
        patch_size: the model's patch side in pixels.
        concept_min: a concept holds at a patch when its mask covers at least this fraction of it.
        colour_min: a colour name holds when at least this fraction of the patch's pixels have it.

    Returns:
        The :class:`ImageProbe` (atoms that hold nowhere are left out).
    """
    d = image_data(data)
    if len(d) == 0:
        raise InputError("no images to label. Pass at least one image.")
    grid = image_size // patch_size
    thumbs = _resize(d.images, image_size)
    n, p = len(d), grid * grid
    colours = colour_index(thumbs)  # [n, S, S]
    cols: dict[str, Tensor] = {}
    frac = _patch_mean(torch.nn.functional.one_hot(torch.from_numpy(colours), len(COLOUR_NAMES)), patch_size)
    for j, name in enumerate(COLOUR_NAMES):
        cols[f"colour:{name}"] = frac[:, :, j] >= colour_min  # [n, P]
    r, c = torch.arange(p) // grid, torch.arange(p) % grid
    half, lo, hi = grid / 2, grid / 4, 3 * grid / 4
    where = {"top": r + 0.5 < half, "bottom": r + 0.5 > half, "left": c + 0.5 < half, "right": c + 0.5 > half,
             "centre": (r + 0.5 > lo) & (r + 0.5 < hi) & (c + 0.5 > lo) & (c + 0.5 < hi),
             "border": (r == 0) | (c == 0) | (r == grid - 1) | (c == grid - 1)}  # fmt: skip
    for name in _WHERE:
        cols[f"where:{name}"] = where[name].expand(n, p)
    area = torch.from_numpy(_region_sizes(colours))  # [n, S, S]
    small = _patch_mean(((area >= 0.004) & (area < 0.04)).float()[..., None], patch_size)[..., 0]  # [n, P]
    cols["size:small"] = small >= 0.5
    cols["size:large"] = _patch_mean((area >= 0.08).float()[..., None], patch_size)[..., 0] >= 0.5
    energy, coherence, angle = _texture_stats(thumbs, patch_size)
    hi_e, lo_e = energy.quantile(0.8), energy.quantile(0.2)
    edgy, lined = energy >= hi_e, (energy >= hi_e) & (coherence > 0.6)
    ang = angle.abs()
    tex = {"edges": edgy, "smooth": energy <= lo_e, "vertical": lined & (ang < torch.pi / 8),
           "horizontal": lined & (ang > 3 * torch.pi / 8), "diagonal": lined & (ang >= torch.pi / 8) &
           (ang <= 3 * torch.pi / 8)}  # fmt: skip
    for name in _TEXTURE:
        cols[f"texture:{name}"] = tex[name]
    if d.labels is not None:
        lab = torch.tensor(d.labels)[:, None].expand(n, p)
        names = d.class_names or [str(i) for i in range(max(d.labels) + 1)]
        for k, name in enumerate(names):
            cols[f"label:{name}"] = lab == k
    for concept, mask in d.masks.items():
        m = torch.from_numpy(np.asarray(mask)).float()  # [n, H, W]
        if m.shape[1] != image_size:
            m = torch.nn.functional.interpolate(m[:, None], size=(image_size, image_size), mode="nearest")[:, 0]
        cols[f"concept:{concept}"] = _patch_mean(m[..., None], patch_size)[..., 0] >= concept_min
    keep = {k: v.reshape(-1) for k, v in cols.items() if bool(v.any())}
    atoms = [image_atom(*k.split(":", 1)) for k in keep]
    table = torch.stack(list(keep.values()), dim=1)  # [n * P, atoms]
    rows = torch.arange(n * p)
    return ImageProbe(table, atoms, rows // p, rows % p, grid, thumbs, d.keys or [str(i) for i in range(n)])
