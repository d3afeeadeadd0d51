"""TopK SAE (Gao et al. 2024) with the AuxK dead-latent loss; saved as SAELens ``topk``.

Each token keeps its ``k`` largest pre-activations (ReLU applied to them). The
step runs one dense GEMM (the encoder) and one top-k over ``[batch, d_sae]``;
decode and backward go through :mod:`sae_training.archs.sparse`. The AuxK term
lets the ``k_aux`` (default ``d_in / 2``) most active dead latents reconstruct
the residual, as SAELens's ``TopKTrainingSAE`` does.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from sae_training.archs.base import StepStats, TrainableSAE
from sae_training.archs.sparse import auxk_terms, encoder_backward, fired_counts, sparse_decode

__all__ = ["TopKSAE"]


class TopKSAE(TrainableSAE):
    """TopK SAE (see the module docstring)."""

    arch = "topk"
    inference_arch = "topk"

    @property
    def k_aux(self) -> int:
        """Latents in the AuxK reconstruction."""
        return int(self.spec.aux_k or self.d_in // 2)

    def select(self, pre: Float[Tensor, "batch d_sae"]) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(idx, vals, offsets)`` of the kept latents; ``offsets`` is ``None`` for ``[batch, k]`` indices."""
        vals, idx = pre.topk(int(self.spec.k), dim=1, sorted=False)  # [batch, k]
        return idx, vals, None

    def step(self, x: Float[Tensor, "batch d_in"], dead: Bool[Tensor, " d_sae"] | None) -> StepStats:
        """One TopK step: dense encoder GEMM and top-k, sparse decode and backward."""
        with torch.no_grad():
            x_c = x - self.b_dec  # [batch, d_in]
            pre = torch.addmm(self.b_enc, x_c, self.W_enc_T.t())  # [batch, d_sae]
            idx, vals, offsets = self.select(pre)
            active = vals > 0
        acts = vals.clamp_min(0).requires_grad_()
        recon = sparse_decode(idx, acts, self.W_dec, offsets) + self.b_dec  # [batch, d_in]
        mse = (recon - x).pow(2).sum(-1).mean()
        loss, terms = mse, {}
        aux = None if dead is None else auxk_terms(pre, dead, (x - recon).detach(), self.W_dec, self.k_aux,
                                                    float(self.spec.aux_k_coefficient))  # fmt: skip
        if aux is not None:
            loss = loss + aux[0]
            terms["auxk"] = aux[0].item()
        del pre
        loss.backward()
        grad_x = encoder_backward(x_c, self.W_enc_T, self.b_enc, idx, acts.grad * active, offsets)
        if aux is not None:
            grad_x += encoder_backward(x_c, self.W_enc_T, self.b_enc, aux[1], aux[2].grad)
        self.b_dec.grad -= grad_x.sum(0)  # x_c = x - b_dec
        self._last = vals.detach(), active
        return StepStats(loss.item(), mse.item(), fired_counts(idx, active, self.d_sae), x.shape[0], terms)

    @torch.no_grad()
    def encode(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
        """Dense activations: top ``k`` pre-activations per token, ReLU'd."""
        pre = self.pre_acts(x)
        vals, idx = pre.topk(int(self.spec.k), dim=1, sorted=False)
        return torch.zeros_like(pre).scatter_(1, idx, vals.clamp_min(0))

    def inference_cfg(self) -> dict[str, Any]:
        return {"k": int(self.spec.k), "rescale_acts_by_decoder_norm": False}

    @classmethod
    def spec_from_saelens(cls, cfg: Any) -> dict[str, Any]:
        return {"k": int(cfg.k)}
