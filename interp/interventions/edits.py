"""The edits: patch, ablate, add, clamp, project out — each at chosen positions.

Every edit is a frozen dataclass naming one hook point and, optionally, which
positions, heads and units it touches. Called on an activation it returns an
edited *copy* (``edit(act)``, never in place), so it is usable as a plain
function on tensors and, because it also takes TransformerLens's ``hook``
argument, directly as a forward hook. :mod:`interp.interventions.apply` adds
edits to a model and always removes them.

Selection (all optional, ``None`` means everything):

``positions``
    an int, a list of ints (negative count from the end), a slice, or a bool
    mask ``[pos]`` / ``[batch, pos]``. Attention patterns and scores
    (``[batch, head, query, key]``) are selected by query position.
``heads``
    head indices, for activations with a head dimension (``hook_z``,
    ``hook_q/k/v``, ``hook_result``: ``[batch, pos, head, d_head]``; patterns).
``units``
    indices into the last dimension (neurons, residual dimensions, key positions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from interp.errors import InputError

__all__ = ["Intervention", "Patch", "Ablate", "Add", "Clamp", "ProjectOut", "Positions"]

#: What ``positions`` accepts.
Positions = None | int | Sequence[int] | slice | Bool[Tensor, " pos"] | Bool[Tensor, "batch pos"]
_QUERY_MAJOR = ("hook_pattern", "hook_attn_scores")


def _index_mask(sel: Any, size: int, what: str, hook: str) -> Bool[Tensor, " size"]:
    """A bool mask ``[size]`` from an int, list of ints or slice."""
    mask = torch.zeros(size, dtype=torch.bool)
    if isinstance(sel, slice):
        mask[sel] = True
        return mask
    idx = [int(sel)] if isinstance(sel, int) else [int(i) for i in sel]
    bad = [i for i in idx if not -size <= i < size]
    if bad:
        raise InputError(f"{what} {bad} are out of range for {hook}, which has {size} {what}. Use 0..{size - 1}.")
    mask[idx] = True
    return mask


@dataclass(frozen=True, eq=False)
class Intervention:
    """Base class: an edit of the activation at ``hook`` (see the module docstring).

    Subclasses implement :meth:`_edited`, the activation with the edit applied
    everywhere; :meth:`edit` keeps it only inside the selection.
    """

    hook: str
    positions: Positions = field(default=None, kw_only=True)
    heads: Sequence[int] | None = field(default=None, kw_only=True)
    units: Sequence[int] | slice | None = field(default=None, kw_only=True)

    def _edited(self, act: Tensor) -> Tensor:
        raise NotImplementedError

    def _dims(self, act: Tensor) -> tuple[int, int | None]:
        """(position dim, head dim or None) of an activation at this hook."""
        if self.hook.endswith(_QUERY_MAJOR):
            return 2, 1  # [batch, head, query, key]
        return 1, (2 if act.ndim == 4 else None)  # [batch, pos, (head,) d]

    def mask(self, act: Tensor) -> Bool[Tensor, "*dims"] | None:
        """Bool mask broadcastable to ``act``: where the edit applies (``None``: everywhere)."""
        if self.positions is None and self.heads is None and self.units is None:
            return None
        pos_dim, head_dim = self._dims(act)
        shape = [1] * act.ndim
        mask = torch.ones(shape, dtype=torch.bool, device=act.device)
        if self.positions is not None:
            mask = mask & self._position_mask(act, pos_dim)
        if self.heads is not None:
            if head_dim is None:
                raise InputError(
                    f"heads= was given for {self.hook}, whose activation {tuple(act.shape)} has no head "
                    "dimension. Use a per-head hook (attn.hook_z, attn.hook_result, …)."
                )
            m = _index_mask(self.heads, act.shape[head_dim], "heads", self.hook)
            shape_h = [1] * act.ndim
            shape_h[head_dim] = -1
            mask = mask & m.to(act.device).view(shape_h)
        if self.units is not None:
            m = _index_mask(self.units, act.shape[-1], "units", self.hook)
            mask = mask & m.to(act.device).view([1] * (act.ndim - 1) + [-1])
        return mask

    def _position_mask(self, act: Tensor, pos_dim: int) -> Tensor:
        n_pos = act.shape[pos_dim]
        p = self.positions
        shape = [1] * act.ndim
        if isinstance(p, Tensor) and p.dtype == torch.bool:
            if p.shape[-1] != n_pos:
                raise InputError(f"position mask for {self.hook} has {p.shape[-1]} positions, the activation {n_pos}.")
            if p.ndim == 2:  # [batch, pos]
                shape[0], shape[pos_dim] = p.shape[0], n_pos
            else:
                shape[pos_dim] = n_pos
            return p.to(act.device).reshape(shape)
        m = _index_mask(p.tolist() if isinstance(p, Tensor) else p, n_pos, "positions", self.hook)
        shape[pos_dim] = n_pos
        return m.to(act.device).view(shape)

    def edit(self, act: Tensor) -> Tensor:
        """Return an edited copy of ``act`` (the input is never modified)."""
        new = self._edited(act)
        mask = self.mask(act)
        return new if mask is None else torch.where(mask, new, act)

    def __call__(self, act: Tensor, hook: Any = None) -> Tensor:
        """Forward-hook signature: ``fn(activation, hook) -> edited activation``."""
        return self.edit(act)


def _like(t: Tensor, act: Tensor) -> Tensor:
    return t.to(device=act.device, dtype=act.dtype)


@dataclass(frozen=True, eq=False)
class Patch(Intervention):
    """Replace the activation with ``source``: the same hook's activation from another run.

    ``source`` has the activation's shape (a batch of 1 broadcasts over the batch).
    """

    source: Tensor

    def _edited(self, act: Tensor) -> Tensor:
        src = self.source
        if src.shape[1:] != act.shape[1:] or src.shape[0] not in (1, act.shape[0]):
            raise InputError(
                f"Patch source for {self.hook} has shape {tuple(src.shape)} but the activation has "
                f"{tuple(act.shape)}. Capture the source run on inputs of the same length (and batch size, or 1)."
            )
        return _like(src, act).expand_as(act)


@dataclass(frozen=True, eq=False)
class Ablate(Intervention):
    """Ablate: set to zero, to the mean over a reference set, or to a resampled reference.

    Args:
        method: ``zero``, ``mean`` or ``resample``.
        reference: activations of this hook on reference data, either with batch and
            position dims like the activation (``[n, pos, ...]``: per-position mean;
            resampling draws whole reference contexts) or as token rows
            ``[n, *feature]`` like a store yields (mean over rows; resampling draws a
            row per position).
        seed: seeds the resampling draw.
    """

    method: Literal["zero", "mean", "resample"] = "zero"
    reference: Tensor | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("zero", "mean", "resample"):
            raise InputError(f"Ablate method must be 'zero', 'mean' or 'resample', got {self.method!r}.")
        if self.method != "zero" and (self.reference is None or len(self.reference) == 0):
            raise InputError(f"{self.method} ablation of {self.hook} needs reference activations "
                             "(reference=...), e.g. from capture_activations on reference data.")  # fmt: skip

    def _edited(self, act: Tensor) -> Tensor:
        if self.method == "zero":
            return torch.zeros_like(act)
        ref = _like(self.reference, act)
        rows = ref.ndim == act.ndim - 1  # [n, *feature] token rows
        if not rows and (ref.ndim != act.ndim or ref.shape[1:] != act.shape[1:]):
            raise InputError(
                f"reference for {self.hook} has shape {tuple(ref.shape)}; expected [n, *{list(act.shape[1:])}] "
                f"(contexts of the same length) or token rows [n, *{list(act.shape[2:])}]."
            )
        if self.method == "mean":
            return ref.mean(0).expand_as(act)
        g = torch.Generator().manual_seed(self.seed)
        if rows:
            idx = torch.randint(len(ref), act.shape[:2], generator=g)  # [batch, pos]
            return ref[idx.to(act.device)]  # [batch, pos, *feature]
        idx = torch.randint(len(ref), (act.shape[0],), generator=g)  # [batch]
        return ref[idx.to(act.device)]


@dataclass(frozen=True, eq=False)
class Add(Intervention):
    """Add ``scale * vector`` (a steering vector; shape broadcastable to one position's activation)."""

    vector: Float[Tensor, "*dims"]
    scale: float = 1.0

    def _edited(self, act: Tensor) -> Tensor:
        return act + self.scale * _like(self.vector, act)


@dataclass(frozen=True, eq=False)
class Clamp(Intervention):
    """Set the selected ``units`` to ``value`` (a number, or one value per unit)."""

    value: float | Tensor = 0.0

    def __post_init__(self) -> None:
        if self.units is None:
            raise InputError(f"Clamp of {self.hook} needs units=[...]: the indices to clamp.")

    def _edited(self, act: Tensor) -> Tensor:
        value = _like(torch.as_tensor(self.value), act)
        if value.ndim == 1 and not isinstance(self.units, slice):
            full = torch.zeros(act.shape[-1], dtype=act.dtype, device=act.device)
            full[list(self.units)] = value  # one value per unit, scattered to its index
            value = full
        return torch.broadcast_to(value, act.shape)


@dataclass(frozen=True, eq=False)
class ProjectOut(Intervention):
    """Remove the component along ``direction`` (``[d]``, or ``[k, d]`` for a subspace)."""

    direction: Float[Tensor, "*k d"]

    def _edited(self, act: Tensor) -> Tensor:
        d = _like(self.direction, act).reshape(-1, act.shape[-1])  # [k, d]
        q, _ = torch.linalg.qr(d.T.float())  # [d, k] orthonormal basis of the span
        q = q.to(act.dtype)
        return act - (act @ q) @ q.T  # [..., d] minus its projection
