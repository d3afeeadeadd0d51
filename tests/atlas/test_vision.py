"""Vision Rosetta neurons: activation maps on a common grid, and a ViT matched against itself."""

from __future__ import annotations

import pytest
import torch

from interp.atlas.vision import grid_rows, vision_correlation
from interp.errors import InputError


def test_grid_rows_average_patch_blocks():
    act = torch.randn(2, 1 + 16, 3)  # CLS + a 4x4 grid
    rows = grid_rows(act, 2)  # [2 * 2 * 2, 3]
    grid = act[:, 1:].reshape(2, 4, 4, 3)
    torch.testing.assert_close(rows[0], grid[0, :2, :2].mean((0, 1)))
    torch.testing.assert_close(rows[5], grid[1, :2, 2:].mean((0, 1)))
    assert grid_rows(act, 4).shape == (32, 3)
    with pytest.raises(InputError, match="square"):
        grid_rows(torch.randn(1, 6, 3), 2)


def test_a_vit_against_itself_at_a_coarser_grid_is_fully_universal():
    from interp.datasets.concepts import concept_images
    from interp.models.concept_vit import load_concept_vit

    cv = load_concept_vit("concepts").model
    px = concept_images(32, seed=1, split="heldout").pixels()
    res = vision_correlation(cv, px, cv, px, layers_a=[1], layers_b=[1, 2], grid=4, batch_size=16,
                             matmul_dtype="float32", baseline_every=1)  # fmt: skip
    a = res.table[res.table.side == "a"]
    live = a[a.max_corr.abs() > 0]  # dead units have no variance and no match
    assert res.n_tokens == 32 * 16 and len(live) > 100
    assert live.max_corr.min() > 0.999 and (live.match_layer == 1).all() and (live.match_neuron == live.neuron).all()
    assert res.summary()["a.L1"]["baseline"] < res.summary()["a.L1"]["universal"]
