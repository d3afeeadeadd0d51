"""JumpReLU SAE (Rajamanoharan et al. 2024) with an L0 penalty through straight-through estimators.

Uses SAELens's own ``JumpReLU`` and ``Step`` autograd functions (rectangle-kernel
pseudo-derivatives of bandwidth ``jumprelu_bandwidth``), a per-latent threshold
kept non-negative, and the ``step`` L0 loss ``l0_coefficient · Σ H(pre - θ)``.
Saved as SAELens ``jumprelu``.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

from sae_training.archs.dense import DenseSAE

__all__ = ["JumpReLUSAE"]


class JumpReLUSAE(DenseSAE):
    """JumpReLU SAE (see the module docstring)."""

    arch = "jumprelu"
    inference_arch = "jumprelu"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.threshold = nn.Parameter(torch.full((self.d_sae,), float(self.spec.jumprelu_init_threshold)))

    def losses(self, x: Float[Tensor, "batch d_in"], dead: Bool[Tensor, " d_sae"] | None
               ) -> tuple[Tensor, dict[str, Tensor]]:  # fmt: skip
        from sae_lens.saes.jumprelu_sae import JumpReLU, Step

        bw = float(self.spec.jumprelu_bandwidth)
        pre = self.pre_acts(x)  # [batch, d_sae]
        acts = JumpReLU.apply(pre, self.threshold, bw, False)
        l0 = Step.apply(pre, self.threshold, bw, False).sum(-1).mean()
        return acts, {"l0": float(self.spec.l0_coefficient) * l0}

    @torch.no_grad()
    def constrain(self) -> None:
        super().constrain()
        self.threshold.clamp_(min=0.0)

    @torch.no_grad()
    def encode(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
        pre = self.pre_acts(x)
        return pre.relu() * (pre > self.threshold)

    def _extra_state(self, scale: float) -> dict[str, Tensor]:
        return {"threshold": self.threshold.detach().clone()}

    @torch.no_grad()
    def load_saelens_state(self, state: dict[str, Tensor]) -> None:
        super().load_saelens_state(state)
        self.threshold.copy_(state["threshold"])
