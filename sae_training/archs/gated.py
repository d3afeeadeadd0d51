"""Gated SAE (Rajamanoharan et al. 2024): a gate path decides which latents fire, a magnitude path how much.

The magnitude path shares the encoder, rescaled by ``exp(r_mag)``. The loss adds
SAELens's two gated terms: an L1 penalty on the ReLU'd gate pre-activations and
an auxiliary reconstruction from the gate path alone. Saved as SAELens ``gated``.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

from sae_training.archs.dense import DenseSAE

__all__ = ["GatedSAE"]


class GatedSAE(DenseSAE):
    """Gated SAE (see the module docstring). ``b_enc`` is unused (SAELens has none for gated)."""

    arch = "gated"
    inference_arch = "gated"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.b_gate = nn.Parameter(torch.zeros(self.d_sae))
        self.r_mag = nn.Parameter(torch.zeros(self.d_sae))
        self.b_mag = nn.Parameter(torch.zeros(self.d_sae))
        self.b_enc.requires_grad_(False)

    def _paths(self, x: Float[Tensor, "batch d_in"]) -> tuple[Tensor, Tensor]:
        proj = (x - self.b_dec) @ self.W_enc_T.t()  # [batch, d_sae]
        return proj + self.b_gate, proj * self.r_mag.exp() + self.b_mag

    def losses(self, x: Float[Tensor, "batch d_in"], dead: Bool[Tensor, " d_sae"] | None
               ) -> tuple[Tensor, dict[str, Tensor]]:  # fmt: skip
        gate_pre, mag_pre = self._paths(x)
        acts = (gate_pre > 0).to(x.dtype) * mag_pre.relu()
        gate = gate_pre.relu()
        l1 = float(self.spec.l1_coefficient) * (gate * self.W_dec.norm(dim=1)).sum(-1).mean()
        aux = (gate @ self.W_dec + self.b_dec - x).pow(2).sum(-1).mean()
        return acts, {"l1": l1, "aux_recon": aux}

    @torch.no_grad()
    def encode(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
        gate_pre, mag_pre = self._paths(x)
        return (gate_pre > 0).to(x.dtype) * mag_pre.relu()

    @torch.no_grad()
    def inference_state(self, scale: float = 1.0) -> dict[str, Tensor]:
        state = super().inference_state(scale)
        del state["b_enc"]
        return state | {"b_gate": self.b_gate.clone(), "r_mag": self.r_mag.clone(), "b_mag": self.b_mag.clone()}

    @torch.no_grad()
    def load_saelens_state(self, state: dict[str, Tensor]) -> None:
        self.W_enc_T.copy_(state["W_enc"].t())
        self.W_dec.copy_(state["W_dec"])
        self.b_dec.copy_(state["b_dec"])
        for name in ("b_gate", "r_mag", "b_mag"):
            getattr(self, name).copy_(state[name])
