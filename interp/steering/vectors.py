"""Steering edits: vectors from prompts (ActAdd, CAA), low-rank subspaces, SAE-latent and neuron edits.

Everything here builds :class:`~interp.interventions.Intervention` objects, so
the edits compose with the rest of the interventions layer and are applied
with :func:`~interp.interventions.intervene` (a context manager that always
removes its hooks) or :func:`~interp.interventions.run_with_interventions`:

>>> v = steering_vector(model, "I love dogs", "I hate dogs", "blocks.6.hook_resid_post")   # doctest: +SKIP
>>> with intervene(model, Steer("blocks.6.hook_resid_post", v, scale=4.0)):                  # doctest: +SKIP
...     logits = model(tokens)

* :func:`steering_vector` — one prompt pair (ActAdd) or the mean difference of
  two prompt sets (CAA) at one hook.
* :func:`steering_subspace` — the top right-singular vectors of paired
  activation differences (a low-rank steering subspace); :class:`SubspaceSteer`
  adds to or sets the coordinates in it.
* :class:`Steer` — :class:`~interp.interventions.Add` that checks the vector's
  width against the activation and stops non-finite results with a clear error.
* :class:`SAEEdit` — encode with an SAE, clamp or scale latents, decode, and add
  back the reconstruction error: an empty edit is exactly the identity.
* :func:`neuron_clamp` / :func:`neuron_ablate` — MLP neurons through the
  existing :class:`~interp.interventions.Clamp` and :class:`~interp.interventions.Ablate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor

from interp.errors import InputError
from interp.interventions import Ablate, Add, Clamp, Intervention
from interp.models.contract import COEFFICIENT_FIX, check_finite

__all__ = [
    "Steer",
    "SubspaceSteer",
    "SAEEdit",
    "prompt_activations",
    "steering_vector",
    "steering_subspace",
    "neuron_clamp",
    "neuron_ablate",
]


def _check_width(vec: Tensor, act: Tensor, hook: str, what: str) -> None:
    """A vector must match one position's activation: ``[d]`` or the trailing dims of ``act``."""
    trailing = tuple(act.shape[2:]) if act.ndim >= 3 else tuple(act.shape[-1:])
    if tuple(vec.shape) != trailing and tuple(vec.shape) != trailing[-1:]:
        raise InputError(
            f"{what} has shape {tuple(vec.shape)} but the activation at {hook} is {tuple(act.shape)} "
            f"(one position: {list(trailing)}). Build the vector at the same hook (steering_vector(model, ..., "
            f"hook={hook!r})) or steer the hook the vector came from."
        )


@dataclass(frozen=True, eq=False)
class Steer(Add):
    """Add ``scale * vector`` at ``hook``, with a width check and a non-finite guard.

    Args:
        hook: the hook point (``blocks.L.hook_resid_post``, …).
        vector: ``[d]`` for the activation's last dimension (or its full trailing shape).
        scale: the steering coefficient.
        positions: which positions to steer (default all); see :mod:`interp.interventions.edits`.
    """

    def _edited(self, act: Tensor) -> Tensor:
        _check_width(self.vector, act, self.hook, "steering vector")
        return check_finite(super()._edited(act), f"the activation at {self.hook} after steering with scale "
                            f"{self.scale:g}", COEFFICIENT_FIX)


@dataclass(frozen=True, eq=False)
class SubspaceSteer(Intervention):
    """Steer inside a low-rank subspace with orthonormal ``basis`` rows ``[k, d]``.

    ``mode="add"`` adds ``coords @ basis``; ``mode="set"`` replaces the
    activation's coordinates in the subspace by ``coords`` (the rest of the
    activation is kept), as in projecting onto a language subspace and moving
    along it.
    """

    basis: Float[Tensor, "k d"]
    coords: Float[Tensor, " k"]
    mode: Literal["add", "set"] = "add"

    def __post_init__(self) -> None:
        if self.mode not in ("add", "set"):
            raise InputError(f"SubspaceSteer mode must be 'add' or 'set', got {self.mode!r}.")
        if self.basis.ndim != 2 or self.coords.shape != self.basis.shape[:1]:
            raise InputError(f"SubspaceSteer needs basis [k, d] and coords [k]; got {tuple(self.basis.shape)} "
                             f"and {tuple(self.coords.shape)}. Use steering_subspace(...) for the basis.")  # fmt: skip

    def _edited(self, act: Tensor) -> Tensor:
        _check_width(self.basis[0], act, self.hook, "subspace basis row")
        b = self.basis.to(act)  # [k, d]
        c = self.coords.to(act)  # [k]
        if self.mode == "add":
            new = act + c @ b  # [..., d]
        else:
            new = act - (act @ b.T) @ b + c @ b  # [..., d]: drop own coordinates, put coords
        return check_finite(new, f"the activation at {self.hook} after subspace steering with coords {c.tolist()}",
                            COEFFICIENT_FIX)


def _sae_hook(sae: Any) -> str | None:
    meta = getattr(sae.cfg, "metadata", None)
    return getattr(meta, "hook_name", None) if meta is not None else None


@dataclass(frozen=True, eq=False)
class SAEEdit(Intervention):
    """Edit SAE latents at ``hook``: encode, clamp or scale latents, decode, keep the reconstruction error.

    The edited activation is ``act + decode(z') - decode(z)`` with ``z =
    sae.encode(act)`` and ``z'`` the edited code, so the SAE's reconstruction
    error stays in place and an empty edit (no latents, or ``z' == z``) returns
    ``act`` exactly.

    Args:
        hook: the SAE's hook (must equal ``sae.cfg.metadata.hook_name`` when the SAE records one).
        sae: a SAELens SAE (``encode``, ``decode``, ``cfg.d_in``, ``cfg.d_sae``).
        latents: latent indices to edit.
        value: ``mode="clamp"``: the value the latents are set to (one number or one per latent).
        scale: ``mode="scale"``: the factor the latents are multiplied by.
        mode: ``"clamp"`` or ``"scale"``.
    """

    sae: Any = None
    latents: Sequence[int] = ()
    value: float | Tensor = 0.0
    scale: float = 1.0
    mode: Literal["clamp", "scale"] = "clamp"

    def __post_init__(self) -> None:
        if self.sae is None:
            raise InputError(f"SAEEdit of {self.hook} needs sae=<a SAELens SAE> (load_sae(path)).")
        if self.mode not in ("clamp", "scale"):
            raise InputError(f"SAEEdit mode must be 'clamp' or 'scale', got {self.mode!r}.")
        if self.units is not None:
            raise InputError("SAEEdit selects latents with latents=[...], not units=.")
        d_sae = int(self.sae.cfg.d_sae)
        bad = [int(i) for i in self.latents if not 0 <= int(i) < d_sae]
        if bad:
            raise InputError(f"latent indices {bad} are out of range for this SAE, which has d_sae={d_sae} "
                             f"latents. Use 0..{d_sae - 1}.")  # fmt: skip
        own = _sae_hook(self.sae)
        if own and own != self.hook:
            raise InputError(f"the SAE was trained on {own!r} but the edit targets {self.hook!r}. "
                             f"Use SAEEdit({own!r}, sae, ...) or an SAE trained on {self.hook!r}.")  # fmt: skip

    def _edited(self, act: Tensor) -> Tensor:
        if not len(self.latents):
            return act
        d_in = int(self.sae.cfg.d_in)
        if act.shape[-1] != d_in:
            raise InputError(f"the SAE takes width d_in={d_in} but the activation at {self.hook} is "
                             f"{tuple(act.shape)}. Use the SAE's own hook.")  # fmt: skip
        dtype = next(self.sae.parameters()).dtype
        x = act.to(dtype)
        z = self.sae.encode(x)  # [..., d_sae]
        idx = torch.as_tensor(list(self.latents), device=z.device)
        z_new = z.clone()
        if self.mode == "clamp":
            z_new[..., idx] = torch.as_tensor(self.value, dtype=z.dtype, device=z.device)
        else:
            z_new[..., idx] = z[..., idx] * self.scale
        delta = self.sae.decode(z_new) - self.sae.decode(z)  # [..., d_in]; zero where the code is unchanged
        new = act + delta.to(act.dtype)
        return check_finite(new, f"the activation at {self.hook} after the SAE latent edit "
                            f"({self.mode} {list(self.latents)})", COEFFICIENT_FIX)


def prompt_activations(model: Any, prompts: str | Sequence[str] | Tensor, hook: str,
                       position: Literal["last", "mean"] = "last") -> Float[Tensor, "n d"]:  # fmt: skip
    """Activations at ``hook`` of each prompt: at its last token, or the mean over its tokens (BOS excluded).

    Prompts run one at a time, so they may differ in length. Token ids ``[n, pos]`` are taken one row per prompt.

    Returns:
        ``[n_prompts, *act_shape_per_position]`` on the CPU, float32.
    """
    from interp.capture.memory import capture_activations, resolve_hooks

    hook = resolve_hooks(model, [hook])[0]
    if isinstance(prompts, str) or (isinstance(prompts, Tensor) and prompts.ndim == 1):
        prompts = [prompts]  # one prompt: a string or token ids [pos]
    texts = [p[None] if isinstance(p, Tensor) and p.ndim == 1 else p for p in prompts]
    if not texts:
        raise InputError(f"no prompts given for {hook}. Pass a string or a non-empty list of strings.")
    if position not in ("last", "mean"):
        raise InputError(f"position must be 'last' or 'mean', got {position!r}.")
    rows = []
    with torch.no_grad():
        for t in texts:
            act = capture_activations(model, t, [hook])[hook][0].float().cpu()  # [pos, *d]
            rows.append(act[-1] if position == "last" or act.shape[0] == 1 else act[1:].mean(0))
    return torch.stack(rows)  # [n, *d]


def steering_vector(model: Any, positive: str | Sequence[str] | Tensor, negative: str | Sequence[str] | Tensor,
                    hook: str,
                    position: Literal["last", "mean"] = "last") -> Float[Tensor, " d"]:  # fmt: skip
    """A steering vector at ``hook``: ``mean(act(positive)) - mean(act(negative))``.

    One string each is ActAdd's prompt pair; two lists are contrastive
    activation addition (CAA), the mean difference of two prompt sets.
    """
    pos = prompt_activations(model, positive, hook, position)
    neg = prompt_activations(model, negative, hook, position)
    return pos.mean(0) - neg.mean(0)  # [d]


def steering_subspace(model: Any, positive: Sequence[str] | Tensor, negative: Sequence[str] | Tensor, hook: str,
                      k: int = 2,
                      position: Literal["last", "mean"] = "last",
                      ) -> tuple[Float[Tensor, "k d"], Float[Tensor, " k"]]:
    """A ``k``-dimensional steering subspace from an SVD of paired activation differences.

    Row ``i`` of the difference matrix is ``act(positive[i]) - act(negative[i])``;
    its top ``k`` right-singular vectors span the directions along which the two
    sets differ most consistently.

    Returns:
        ``(basis [k, d], singular_values [k])``, the basis rows orthonormal and
        signed so that the mean difference has a non-negative coordinate on each.
    """
    if isinstance(positive, str) or isinstance(negative, str) or len(positive) != len(negative):
        raise InputError("steering_subspace needs two lists of paired prompts of the same length; got "
                         f"{type(positive).__name__} / {type(negative).__name__}.")  # fmt: skip
    diff = prompt_activations(model, positive, hook, position) - prompt_activations(model, negative, hook, position)
    diff = diff.reshape(len(diff), -1)  # [n, d]
    if not 1 <= k <= min(diff.shape):
        raise InputError(f"k={k} must lie in 1..{min(diff.shape)} (number of pairs and width bound the rank).")
    _, s, vh = torch.linalg.svd(diff, full_matrices=False)  # vh: [min(n, d), d]
    basis = vh[:k]  # [k, d]
    sign = torch.sign(basis @ diff.mean(0))  # [k]
    basis = basis * torch.where(sign == 0, torch.ones_like(sign), sign)[:, None]
    return basis, s[:k]


def neuron_clamp(layer: int, neurons: int | Sequence[int], value: float | Tensor,
                 positions: Any = None) -> Clamp:  # fmt: skip
    """Clamp MLP neurons of ``layer`` (at ``blocks.L.mlp.hook_post``) to ``value``."""
    units = [neurons] if isinstance(neurons, int) else list(neurons)
    return Clamp(f"blocks.{layer}.mlp.hook_post", value=value, units=units, positions=positions)


def neuron_ablate(layer: int, neurons: int | Sequence[int], method: Literal["zero", "mean", "resample"] = "zero",
                  reference: Tensor | None = None, positions: Any = None, seed: int = 0) -> Ablate:  # fmt: skip
    """Ablate MLP neurons of ``layer``: zero, mean or resample over ``reference`` activations of that hook."""
    units = [neurons] if isinstance(neurons, int) else list(neurons)
    return Ablate(f"blocks.{layer}.mlp.hook_post", method=method, reference=reference, units=units,
                  positions=positions, seed=seed)  # fmt: skip

