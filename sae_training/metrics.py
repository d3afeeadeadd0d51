"""Reconstruction metrics accumulated over many batches, computed over the whole evaluation set.

FVU is ``Σ‖x - x̂‖² / Σ‖x - μ‖²`` with ``μ`` the mean over *all* evaluated
tokens (not a mean of per-batch or per-token ratios), accumulated in float64.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["ReconStats", "SpliceStats"]


class ReconStats:
    """Running sums for L0, MSE, FVU / explained variance and per-latent firing frequency.

    Args:
        d_in: input width.
        d_sae: number of latents.
        dense_threshold: a latent firing on more than this fraction of tokens is dense.
    """

    def __init__(self, d_in: int, d_sae: int, dense_threshold: float = 0.1):
        self.n = 0
        self.sq_err = 0.0
        self.sum_x = torch.zeros(d_in, dtype=torch.float64)
        self.sum_sq_x = 0.0
        self.active = 0.0
        self.fired = torch.zeros(d_sae, dtype=torch.float64)
        self.dense_threshold = dense_threshold

    @torch.no_grad()
    def add(self, x: Float[Tensor, "n d_in"], recon: Float[Tensor, "n d_in"], acts: Float[Tensor, "n d_sae"]) -> None:
        """Add a batch of inputs, reconstructions and latent activations."""
        x64 = x.double()
        self.n += x.shape[0]
        self.sq_err += float((recon.double() - x64).pow(2).sum())
        self.sum_x += x64.sum(0)
        self.sum_sq_x += float(x64.pow(2).sum())
        on = acts != 0
        self.active += float(on.sum())
        self.fired += on.sum(0).double()

    @property
    def frequency(self) -> Float[Tensor, " d_sae"]:
        """Fraction of tokens on which each latent fired."""
        return self.fired / max(self.n, 1)

    def result(self) -> dict[str, Any]:
        """The metrics as a JSON-able dict."""
        n = max(self.n, 1)
        total_var = self.sum_sq_x - float(self.sum_x.pow(2).sum()) / n  # Σ‖x - μ‖²
        fvu = self.sq_err / total_var if total_var > 0 else float("nan")
        freq = self.frequency
        return {"tokens": self.n, "l0": self.active / n, "mse": self.sq_err / (n * self.sum_x.numel()),
                "fvu": fvu, "explained_variance": 1 - fvu,
                "dead_fraction": float((freq == 0).double().mean()),
                "dense_fraction": float((freq > self.dense_threshold).double().mean()),
                "dense_threshold": self.dense_threshold}  # fmt: skip


class SpliceStats:
    """Running sums of next-token CE (clean, spliced, zero-ablated) and KL(clean ‖ spliced)."""

    def __init__(self) -> None:
        self.n = 0
        self.ce = {"clean": 0.0, "spliced": 0.0, "zero": 0.0}
        self.kl = 0.0

    @torch.no_grad()
    def add(self, logits: dict[str, Tensor], tokens: Tensor, mask: Tensor) -> None:
        """Add one batch: ``logits[kind] [n, pos, vocab]``, ``tokens [n, pos]``, ``mask [n, pos-1]`` (scored ones)."""
        target = tokens[:, 1:]
        logp = {k: torch.log_softmax(v[:, :-1].float(), -1) for k, v in logits.items()}  # [n, pos-1, vocab]
        for k, lp in logp.items():
            nll = -lp.gather(-1, target[..., None]).squeeze(-1)  # [n, pos-1]
            self.ce[k] += float(nll[mask].sum())
        kl = (logp["clean"].exp() * (logp["clean"] - logp["spliced"])).sum(-1)  # [n, pos-1]
        self.kl += float(kl[mask].sum())
        self.n += int(mask.sum())

    def result(self) -> dict[str, float]:
        """CE losses, CE loss recovered ``(CE_zero - CE_spliced) / (CE_zero - CE_clean)`` and mean KL."""
        n = max(self.n, 1)
        ce = {k: v / n for k, v in self.ce.items()}
        gap = ce["zero"] - ce["clean"]
        return {"ce_clean": ce["clean"], "ce_spliced": ce["spliced"], "ce_zero_ablation": ce["zero"],
                "ce_loss_recovered": (ce["zero"] - ce["spliced"]) / gap if gap else float("nan"),
                "kl_div": self.kl / n, "splice_tokens": self.n}  # fmt: skip
