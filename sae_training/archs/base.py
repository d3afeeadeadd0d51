"""The base of every trainable SAE: parameters, the decoder-norm constraint, SAELens conversion.

Parameters are kept in the layout the fast loop wants: the encoder as
``W_enc_T [d_sae, d_in]`` (rows are gathered by the sparse kernels), the
decoder as SAELens's ``W_dec [d_sae, d_in]``. Decoder rows are held at unit
norm (gradient component along each row removed before the optimizer step,
rows renormalised after it), so a norm-weighted sparsity penalty equals the
plain one and TopK selection does not depend on decoder norms.

Subclasses implement :meth:`TrainableSAE.step` (loss and gradients for one
batch) and :meth:`TrainableSAE.encode`; saving goes through
:meth:`inference_state`, which folds an input-normalisation scale into the
weights so that the saved SAELens SAE takes raw activations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

__all__ = ["TrainableSAE", "StepStats"]


@dataclass
class StepStats:
    """What one training step reports (all detached).

    Attributes:
        loss: total loss.
        mse: reconstruction loss (sum over ``d_in``, mean over tokens).
        fired: ``[d_sae]`` tokens of the batch on which each latent fired.
        n_tokens: tokens in the batch.
        terms: the auxiliary loss terms by name.
    """

    loss: float
    mse: float
    fired: Tensor
    n_tokens: int
    terms: dict[str, float] = field(default_factory=dict)

    @property
    def l0(self) -> float:
        """Mean active latents per token."""
        return float(self.fired.sum()) / max(self.n_tokens, 1)


class TrainableSAE(nn.Module):
    """An SAE trained by this project's loop and saved as a SAELens SAE.

    Args:
        d_in: input width (``n_heads * d_head`` for ``hook_z``).
        d_sae: number of latents.
        spec: the :class:`~sae_training.config.SAESpec` (architecture hyperparameters).
        generator: seeds the initialisation.
    """

    arch: ClassVar[str] = ""
    #: SAELens architecture the trained SAE is saved as.
    inference_arch: ClassVar[str] = ""

    def __init__(self, d_in: int, d_sae: int, spec: Any, generator: torch.Generator | None = None):
        super().__init__()
        self.d_in, self.d_sae, self.spec = int(d_in), int(d_sae), spec
        W = torch.empty(self.d_sae, self.d_in)
        bound = math.sqrt(6 / self.d_in)  # kaiming-uniform bound, as SAELens
        W.uniform_(-bound, bound, generator=generator)
        W /= W.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(W)  # [d_sae, d_in], unit rows
        self.W_enc_T = nn.Parameter(W.clone())  # [d_sae, d_in]: encoder initialised to the decoder's transpose
        self.b_enc = nn.Parameter(torch.zeros(self.d_sae))
        self.b_dec = nn.Parameter(torch.zeros(self.d_in))

    # ------------------------------------------------------------------ training
    def step(self, x: Float[Tensor, "batch d_in"], dead: Bool[Tensor, " d_sae"] | None) -> StepStats:
        """Compute the loss on ``x`` and leave its gradients in ``.grad``; ``dead`` marks dead latents."""
        raise NotImplementedError

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove the gradient component along each decoder row (the norm is constrained)."""
        g = self.W_dec.grad
        if g is not None:
            g -= (g * self.W_dec).sum(1, keepdim=True) * self.W_dec  # [d_sae, d_in]

    @torch.no_grad()
    def constrain(self) -> None:
        """Project the parameters back onto their constraints after an optimizer step."""
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)

    def after_step(self, stats: StepStats) -> None:
        """Update non-gradient state (BatchTopK's threshold) after a step."""

    # ------------------------------------------------------------------ inference
    def pre_acts(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
        """Encoder pre-activations ``(x - b_dec) @ W_enc + b_enc``."""
        return torch.addmm(self.b_enc, x - self.b_dec, self.W_enc_T.t())

    def encode(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
        """Dense latent activations."""
        raise NotImplementedError

    def decode(self, acts: Float[Tensor, "batch d_sae"]) -> Float[Tensor, "batch d_in"]:
        """Reconstruction from dense activations."""
        return acts @ self.W_dec + self.b_dec

    def forward(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_in"]:
        """Reconstruct ``x``."""
        return self.decode(self.encode(x))

    # ------------------------------------------------------------------ SAELens
    def inference_cfg(self) -> dict[str, Any]:
        """Architecture-specific fields of the SAELens inference config."""
        return {}

    @torch.no_grad()
    def inference_state(self, scale: float = 1.0) -> dict[str, Tensor]:
        """SAELens state dict of the saved SAE, with the input scale ``scale`` folded in.

        Training saw ``x * scale``; the saved SAE takes raw ``x``:
        ``W_enc <- W_enc * scale``, ``W_dec <- W_dec / scale``, ``b_dec <- b_dec / scale``
        leave every pre-activation unchanged and rescale the reconstruction.
        """
        return {"W_enc": (self.W_enc_T.t() * scale).contiguous(), "b_enc": self.b_enc.clone(),
                "W_dec": self.W_dec / scale, "b_dec": self.b_dec / scale} | self._extra_state(scale)  # fmt: skip

    def _extra_state(self, scale: float) -> dict[str, Tensor]:
        return {}

    @classmethod
    def spec_from_saelens(cls, cfg: Any) -> dict[str, Any]:
        """:class:`~sae_training.config.SAESpec` fields read from a SAELens config."""
        return {}

    @torch.no_grad()
    def load_saelens_state(self, state: dict[str, Tensor]) -> None:
        """Take the weights of a SAELens SAE of this architecture."""
        self.W_enc_T.copy_(state["W_enc"].t())
        self.b_enc.copy_(state["b_enc"])
        self.W_dec.copy_(state["W_dec"])
        self.b_dec.copy_(state["b_dec"])
