"""Standard SAE: ReLU encoder with an L1 penalty (Bricken et al. 2023); saved as SAELens ``standard``.

The penalty is ``l1_coefficient · Σ |a_i| · ‖W_dec,i‖``, SAELens's form; with
unit decoder rows it is the plain L1 norm.
"""

from __future__ import annotations

from typing import Any

from jaxtyping import Bool, Float
from torch import Tensor

from sae_training.archs.dense import DenseSAE

__all__ = ["StandardSAE"]


class StandardSAE(DenseSAE):
    """ReLU + L1 SAE (see the module docstring)."""

    arch = "standard"
    inference_arch = "standard"

    def losses(self, x: Float[Tensor, "batch d_in"], dead: Bool[Tensor, " d_sae"] | None
               ) -> tuple[Tensor, dict[str, Tensor]]:  # fmt: skip
        acts = self.pre_acts(x).relu()  # [batch, d_sae]
        l1 = float(self.spec.l1_coefficient) * (acts * self.W_dec.norm(dim=1)).sum(-1).mean()
        return acts, {"l1": l1}

    def encode(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
        return self.pre_acts(x).relu()

    @classmethod
    def spec_from_saelens(cls, cfg: Any) -> dict[str, Any]:
        return {}

