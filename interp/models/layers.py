"""Layers shared by the project's own hooked models (:mod:`interp.models.encoder`, :mod:`interp.models.vit`)."""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint

__all__ = ["LayerNorm"]


class LayerNorm(nn.Module):
    """LayerNorm with TransformerLens's hooks: ``hook_scale`` [batch pos 1] and
    ``hook_normalized`` [batch pos d_model] (after centring and scaling, before ``w``, ``b``).

    ``cfg`` needs ``d_model``, ``eps`` and ``dtype``. Low-precision inputs are
    normalised in float32, so bfloat16 models keep their statistics accurate.
    """

    def __init__(self, cfg: Any):
        super().__init__()
        self.eps = cfg.eps
        self.w = nn.Parameter(torch.ones(cfg.d_model, dtype=cfg.dtype))
        self.b = nn.Parameter(torch.zeros(cfg.d_model, dtype=cfg.dtype))
        self.hook_scale = HookPoint()  # [batch, pos, 1]
        self.hook_normalized = HookPoint()  # [batch, pos, d_model]

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        """Normalise over ``d_model`` in at least float32, then scale and shift."""
        dtype = x.dtype
        x = x.float() if dtype not in (torch.float32, torch.float64) else x
        x = x - x.mean(-1, keepdim=True)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())  # [batch, pos, 1]
        return self.hook_normalized(x / scale).to(dtype) * self.w + self.b
