"""Rosetta neurons between vision transformers: MLP neurons correlated over the same images, patch by patch.

Two ViTs see the same images at their own resolutions and patch grids
(DINOv2-S/14 at 56 px: 4×4 patches; the concept ViT at 48 px: 8×8). As in
"Rosetta Neurons" (Dravid et al. 2023), each model's activation maps are
resized to one common grid (area averaging; default the coarser grid), so row
``(image, cell)`` of one model lines up with the same image region of the
other; then the streaming correlation of :mod:`interp.atlas.activations` runs
over those rows, batch by batch, with the random-direction baseline.
:func:`dinov2_vs_concept_vit` is the shipped comparison.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from interp.atlas.activations import RunningCorrelation, mlp_hooks
from interp.atlas.universal import UNIVERSAL, CorrelationResult, _name, _side
from interp.errors import InputError

__all__ = ["grid_rows", "vision_correlation", "dinov2_vs_concept_vit"]


def grid_rows(act: Float[Tensor, "b tokens d"], grid: int) -> Float[Tensor, "rows d"]:
    """Patch activations (CLS first, dropped) resized to a ``grid`` × ``grid`` map, as rows ``[b * grid², d]``."""
    b, n, d = act.shape
    side = math.isqrt(n - 1)
    if side * side != n - 1:
        raise InputError(f"expected CLS plus a square patch grid, got {n} tokens. Use a ViT without register tokens.")
    maps = act[:, 1:].reshape(b, side, side, d).permute(0, 3, 1, 2)  # [b, d, side, side]
    maps = F.adaptive_avg_pool2d(maps, grid) if side >= grid else F.interpolate(maps, size=grid, mode="bilinear")
    return maps.permute(0, 2, 3, 1).reshape(-1, d)  # [b * grid * grid, d]


def _grid(model: Any, pixels: Tensor) -> int:
    return int(pixels.shape[-1]) // int(model.cfg.patch_size)


@torch.no_grad()
def vision_correlation(model_a: Any, pixels_a: Float[Tensor, "n 3 Ha Wa"], model_b: Any,
                       pixels_b: Float[Tensor, "n 3 Hb Wb"], *, layers_a: list[int] | None = None,
                       layers_b: list[int] | None = None, grid: int | None = None, batch_size: int = 64,
                       threshold: float = UNIVERSAL, seed: int = 0, matmul_dtype: str = "bfloat16",
                       baseline_every: int = 4) -> CorrelationResult:  # fmt: skip
    """Correlate every MLP neuron of two ViTs over the same images, region by region.

    Args:
        model_a / model_b: ``HookedViT`` models (``blocks.L.mlp.hook_post``).
        pixels_a / pixels_b: the same images, prepared for each model (row ``i`` is one image in both).
        layers_a / layers_b: layers of each model (default all).
        grid: common map side (default the smaller of the two patch grids).
        batch_size: images per forward pass.
        threshold / seed / matmul_dtype / baseline_every: as :func:`~interp.atlas.universal.model_correlation`.

    Returns:
        A :class:`~interp.atlas.universal.CorrelationResult` (rows: image regions).
    """
    from interp.capture import capture_activations

    if len(pixels_a) != len(pixels_b):
        raise InputError(f"pixels_a has {len(pixels_a)} images and pixels_b {len(pixels_b)}; pass the same images.")
    grid = grid or min(_grid(model_a, pixels_a), _grid(model_b, pixels_b))
    hooks = (mlp_hooks(int(model_a.cfg.n_layers), layers_a), mlp_hooks(int(model_b.cfg.n_layers), layers_b))
    d = (int(model_a.cfg.d_mlp), int(model_b.cfg.d_mlp))
    rc = RunningCorrelation(d[0] * len(hooks[0]), d[1] * len(hooks[1]), baseline_every=baseline_every,
                            matmul_dtype=matmul_dtype, seed=seed)  # fmt: skip
    for i in range(0, len(pixels_a), batch_size):
        rows = []
        for m, px, hs in ((model_a, pixels_a, hooks[0]), (model_b, pixels_b, hooks[1])):
            acts = capture_activations(m, px[i : i + batch_size], hs)
            rows.append(torch.cat([grid_rows(acts[h], grid) for h in hs], dim=1))  # [rows, layers * d_mlp]
        rc.update(rows[0], rows[1])
    ids = [[int(h.split(".")[1]) for h in hs] for hs in hooks]
    table = _table(rc, ids, d)
    return CorrelationResult(table, threshold, rc.n, (_name(model_a), _name(model_b)),
                             {"grid": grid, "n_random": rc.n_random})  # fmt: skip


def _table(rc: RunningCorrelation, ids: list[list[int]], d: tuple[int, int]) -> Any:
    """Both sides' best matches and random-direction maxima as one DataFrame."""
    import pandas as pd

    corr = rc.correlation()
    return pd.concat([_side(corr, rc.random_correlation("b"), ids[0], ids[1], d, "a"),
                      _side(corr.T, rc.random_correlation("a").T, ids[1], ids[0], d[::-1], "b")],
                     ignore_index=True)  # fmt: skip


def dinov2_vs_concept_vit(n_images: int = 256, *, dinov2_layers: tuple[int, ...] = (3, 7, 11), image_size: int = 56,
                          seed: int = 0) -> CorrelationResult:  # fmt: skip
    """Rosetta neurons between DINOv2-S/14 and the project's concept ViT on held-out concept images.

    Args:
        n_images: concept images (``interp.datasets.concepts``, held-out split).
        dinov2_layers: DINOv2 layers compared (each 1,536 neurons); the concept ViT uses all of its layers.
        image_size: DINOv2 input side (a multiple of 14).
        seed: seed of the images and the random directions.
    """
    from interp.datasets.concepts import concept_images
    from interp.datasets.images import preprocess
    from interp.models.concept_vit import load_concept_vit
    from interp.models.dinov2 import load_dinov2

    images = concept_images(n_images, seed=seed, split="heldout")
    cv = load_concept_vit("concepts").model
    dino = load_dinov2(n_layers=max(dinov2_layers) + 1, image_size=image_size)
    return vision_correlation(dino, preprocess(images.images, image_size=image_size), cv, images.pixels(),
                              layers_a=list(dinov2_layers), seed=seed)  # fmt: skip
