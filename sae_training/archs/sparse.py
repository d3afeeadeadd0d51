"""Sparse kernels for TopK-style SAEs on the CPU: decode and backward without ``batch × d_sae`` passes.

A TopK SAE keeps ``k`` of ``d_sae`` latents per token. SAELens decodes and
back-propagates through the dense ``[batch, d_sae]`` activation tensor (three
more GEMMs and several elementwise passes over it). Here only the encoder's
forward GEMM and the top-k selection touch ``[batch, d_sae]``:

* decode: ``recon[b] = Σ_j a[b, j] · W_dec[idx[b, j]]`` is an ``embedding_bag``
  with per-sample weights (no ``[batch, k, d_in]`` gather is materialised); its
  autograd gives the gradients of ``W_dec`` and of the ``k`` values;
* encoder backward: the pre-activation gradient is non-zero only at the chosen
  latents, so ``dW_enc[l] = Σ g[b, j] · x[b]`` over the pairs with
  ``idx[b, j] = l`` is the weight gradient of another ``embedding_bag``, and its
  forward output ``Σ_j g[b, j] · W_enc[idx[b, j]]`` is the input gradient.

Indices are either ``[batch, k]`` (fixed count per row) or flat ``[nnz]`` with
``offsets [batch]`` (BatchTopK: variable count per row).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

__all__ = ["sparse_decode", "encoder_backward", "auxk_terms", "fired_counts"]


def sparse_decode(idx: Int[Tensor, ...], vals: Float[Tensor, ...], W_dec: Float[Tensor, "d_sae d_in"],
                  offsets: Int[Tensor, " batch"] | None = None) -> Float[Tensor, "batch d_in"]:  # fmt: skip
    """``Σ_j vals[b, j] · W_dec[idx[b, j]]`` per row (no bias), differentiable in ``vals`` and ``W_dec``."""
    return F.embedding_bag(idx, W_dec, offsets, mode="sum", per_sample_weights=vals)


def encoder_backward(x_c: Float[Tensor, "batch d_in"], W_enc_T: Tensor, b_enc: Tensor, idx: Tensor,
                     grad: Tensor, offsets: Tensor | None = None) -> Float[Tensor, "batch d_in"]:  # fmt: skip
    """Accumulate the encoder gradients for pre-activation gradients ``grad`` at ``idx``.

    Adds ``dL/dW_enc_T`` into ``W_enc_T.grad`` and ``dL/db_enc`` into ``b_enc.grad``
    (``pre = x_c @ W_enc_T.T + b_enc``) and returns ``dL/dx_c`` ``[batch, d_in]``.
    """
    leaf = W_enc_T.detach().requires_grad_()  # shares storage; collects the weight gradient
    grad_x = F.embedding_bag(idx, leaf, offsets, mode="sum", per_sample_weights=grad)  # [batch, d_in]
    grad_x.backward(x_c)  # leaf.grad[l] = Σ grad[b, j] x_c[b] over idx[b, j] == l
    _accumulate(W_enc_T, leaf.grad)
    _accumulate(b_enc, torch.zeros_like(b_enc).index_add_(0, idx.reshape(-1), grad.reshape(-1)))
    return grad_x.detach()


def _accumulate(p: Tensor, g: Tensor) -> None:
    if p.grad is None:
        p.grad = g
    else:
        p.grad.add_(g)


def auxk_terms(pre: Float[Tensor, "batch d_sae"], dead: torch.Tensor, residual: Float[Tensor, "batch d_in"],
               W_dec: Tensor, k_aux: int, coefficient: float) -> tuple[Tensor, Tensor, Tensor] | None:  # fmt: skip
    """The AuxK loss (Gao et al. 2024, as SAELens computes it): the top ``k_aux`` dead latents reconstruct the residual.

    Returns ``(loss, idx [batch, k_aux], vals)`` where ``vals`` is a leaf whose
    gradient is the pre-activation gradient at ``idx``; ``None`` when no latent is dead.
    """
    n_dead = int(dead.sum())
    if n_dead == 0 or coefficient == 0:
        return None
    dead_ids = dead.nonzero().squeeze(1)  # [n_dead]
    scale = min(n_dead / k_aux, 1.0)
    ka = min(k_aux, n_dead)
    vals, local = pre.index_select(1, dead_ids).topk(ka, dim=1, sorted=False)  # [batch, ka]
    idx = dead_ids[local]  # [batch, ka]
    vals = vals.requires_grad_()
    recon = sparse_decode(idx, vals, W_dec)  # no bias: b_dec is already in the residual
    loss = coefficient * scale * (recon - residual).pow(2).sum(-1).mean()
    return loss, idx, vals


def fired_counts(idx: Int[Tensor, "*dims"], active: Bool[Tensor, "*dims"], d_sae: int) -> Float[Tensor, " d_sae"]:
    """Tokens on which each latent fired, from chosen indices and a mask of positive values."""
    return torch.bincount(idx.reshape(-1), weights=active.reshape(-1).to(torch.float32), minlength=d_sae)
