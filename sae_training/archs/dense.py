"""Shared step for the dense architectures (standard, JumpReLU, gated): autograd over plain tensors.

Their activations are dense early in training, so the step is ordinary
autograd; what differs between them is :meth:`DenseSAE.losses`.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from sae_training.archs.base import StepStats, TrainableSAE

__all__ = ["DenseSAE"]


class DenseSAE(TrainableSAE):
    """An SAE whose step is autograd through dense ``[batch, d_sae]`` activations."""

    def losses(self, x: Float[Tensor, "batch d_in"], dead: Bool[Tensor, " d_sae"] | None
               ) -> tuple[Tensor, dict[str, Tensor]]:  # fmt: skip
        """``(acts [batch, d_sae], {term: scalar})``; the reconstruction term is added by :meth:`step`."""
        raise NotImplementedError

    def step(self, x: Float[Tensor, "batch d_in"], dead: Bool[Tensor, " d_sae"] | None) -> StepStats:
        """Loss = summed squared error (mean over tokens) + the architecture's terms; gradients by autograd."""
        acts, terms = self.losses(x, dead)
        mse = (self.decode(acts) - x).pow(2).sum(-1).mean()
        loss = mse + sum(terms.values(), torch.zeros(()))
        loss.backward()
        with torch.no_grad():
            fired = (acts > 0).sum(0).float()  # [d_sae]
        return StepStats(loss.item(), mse.item(), fired, x.shape[0], {k: v.item() for k, v in terms.items()})
