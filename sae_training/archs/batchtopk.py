"""BatchTopK SAE (Bussmann et al. 2024): ``k · batch`` latents kept across the whole batch.

Trained like TopK (sparse decode and backward, AuxK) but the selection is over
the flattened ``[batch, d_sae]`` ReLU'd pre-activations, so rows keep varying
numbers of latents (flat indices with offsets). A running threshold (an
exponential moving average of the smallest kept activation, as SAELens's
``BatchTopKTrainingSAE``) makes the saved SAE a SAELens ``jumprelu`` with that
threshold on every latent.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from sae_training.archs.base import StepStats
from sae_training.archs.topk import TopKSAE

__all__ = ["BatchTopKSAE"]


class BatchTopKSAE(TopKSAE):
    """BatchTopK SAE (see the module docstring)."""

    arch = "batchtopk"
    inference_arch = "jumprelu"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.register_buffer("threshold", torch.zeros((), dtype=torch.float64))

    def select(self, pre: Float[Tensor, "batch d_sae"]) -> tuple[Tensor, Tensor, Tensor | None]:
        """Flat ``(cols, vals, offsets)`` of the ``k * batch`` largest ReLU'd pre-activations, grouped by row."""
        batch, d_sae = pre.shape
        n_keep = min(int(round(float(self.spec.k) * batch)), pre.numel())
        vals, flat = pre.relu().flatten().topk(n_keep, sorted=False)  # [n_keep]
        flat, order = flat.sort()  # row-major order groups the latents of a row together
        vals = vals[order]
        rows, cols = flat // d_sae, flat % d_sae
        counts = torch.bincount(rows, minlength=batch)  # [batch]
        offsets = torch.cumsum(counts, 0) - counts  # [batch] start of each row's latents
        return cols, vals, offsets

    @torch.no_grad()
    def after_step(self, stats: StepStats) -> None:
        """Move the threshold towards the smallest positive kept activation."""
        vals, active = self._last
        if active.any():
            lr = float(self.spec.topk_threshold_lr)
            self.threshold.mul_(1 - lr).add_(lr * vals[active].min().double())

    @torch.no_grad()
    def encode(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
        """Inference activations: JumpReLU at the learned threshold (what the saved SAE computes)."""
        pre = self.pre_acts(x)
        return pre.relu() * (pre > self.threshold.float())

    def inference_cfg(self) -> dict[str, Any]:
        return {}

    @torch.no_grad()
    def _extra_state(self, scale: float) -> dict[str, Tensor]:
        return {"threshold": torch.full((self.d_sae,), float(self.threshold))}

    @classmethod
    def spec_from_saelens(cls, cfg: Any) -> dict[str, Any]:
        return {}

    @torch.no_grad()
    def load_saelens_state(self, state: dict[str, Tensor]) -> None:
        super().load_saelens_state(state)
        if "threshold" in state:
            self.threshold.fill_(float(state["threshold"].float().mean()))

