"""Steering and ablation in vision transformers, measured as the change of a classifier's predictions.

The text sweep (:mod:`interp.steering.evaluate`) measures a token's log-probability
lift against KL and loss on neutral text. Here the readout is a classifier over a
ViT (:class:`Readout`, e.g. DINOv2 with the shipped digit probe, :func:`digit_readout`)
and the same three quantities are defined on images:

effect
    on ``images`` (of other classes): the lift of the target class's log-probability,
    edited minus unedited; for an ablation of units that serve a class, its drop on
    images of that class (``effect`` is then negative).
KL cost
    on ``neutral`` images: KL(unedited || edited) of the class distribution
    *renormalised over the non-target classes*. Moving mass onto the target is the
    effect; reshuffling the other classes is collateral damage.
loss cost
    on ``heldout`` images of non-target classes: the cross-entropy of their true
    label among the non-target classes, edited minus unedited; ``accuracy`` is the
    matching per-image change of correctness (-1, 0 or +1).

Two kinds of edits are swept, each against a random baseline of the same size:

* :func:`vision_sweep` — add ``coefficient × direction`` at a hook (every patch and
  CLS), the direction by default the class-mean difference of the activations
  (:func:`class_direction`, the CAA analogue); baseline: random directions of
  equal norm.
* :func:`ablation_sweep` — ablate the ``n`` units ranked highest for a class by
  gradient × activation attribution (:func:`unit_attribution`), ``n`` swept;
  baseline: ``n`` random units.

Both return a :class:`~interp.steering.evaluate.SweepResult` (``.table()``,
``.save(dir)`` writes JSON and an offline plotly figure).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.errors import InputError
from interp.interventions import Ablate, Intervention, intervene
from interp.models.contract import COEFFICIENT_FIX, check_finite
from interp.steering.evaluate import SweepResult, SweepRow, random_like
from interp.steering.vectors import Steer

__all__ = ["Readout", "digit_readout", "class_direction", "unit_attribution", "vision_sweep", "ablation_sweep"]

Pixels = Float[Tensor, "batch 3 H W"]
#: ``edits(coefficient) -> interventions`` (the hook is fixed by the caller).
VisionMethod = Callable[[float], Sequence[Intervention]]
#: What a vision sweep's axes mean; read by :func:`interp.steering.figure.sweep_figure`.
AXES = {"x": "coefficient", "effect": "target class log-prob lift (nats)",
        "kl": "KL over non-target classes, neutral images",
        "loss": "held-out loss change, non-target classes"}  # fmt: skip


@dataclass(frozen=True)
class Readout:
    """A classifier over a ViT: ``logits(pixels)`` runs the model and a head.

    Attributes:
        model: the hooked ViT the edits are applied to.
        head: maps the model's final output ``[batch, pos, d_model]`` to class logits ``[batch, classes]``.
        class_names: one name per class.
        image_size: the side the pixels must have.
    """

    model: Any
    head: Callable[[Tensor], Tensor]
    class_names: list[str]
    image_size: int

    def logits(self, pixels: Pixels, edits: Sequence[Intervention] = (), batch_size: int = 64
               ) -> Float[Tensor, "batch classes"]:  # fmt: skip
        """Class logits under ``edits`` (hooks always removed), in batches."""
        if pixels.ndim != 4 or pixels.shape[1] != 3 or pixels.shape[-1] != self.image_size:
            raise InputError(f"pixels have shape {tuple(pixels.shape)}; this readout needs [batch, 3, "
                             f"{self.image_size}, {self.image_size}]. Use interp.datasets.images.preprocess(images, "
                             f"image_size={self.image_size}).")  # fmt: skip
        out = []
        with intervene(self.model, *edits):
            for start in range(0, len(pixels), batch_size):
                out.append(self.head(self.model(pixels[start : start + batch_size])).float())
        logits = torch.cat(out)  # [batch, classes]
        return check_finite(logits, "the classifier's logits under the edit", COEFFICIENT_FIX)


def digit_readout(model: Any = None) -> Readout:
    """DINOv2-S/14 with the shipped digit probe (:func:`interp.models.probes.load_digit_probe`) as a :class:`Readout`.

    Args:
        model: an already loaded DINOv2 at the probe's image size (default: loaded).
    """
    from interp.models.dinov2 import load_dinov2
    from interp.models.probes import load_digit_probe

    probe, meta = load_digit_probe()
    size = int(meta["image_size"])
    model = model if model is not None else load_dinov2(image_size=size)

    def head(final: Tensor) -> Tensor:
        return probe(torch.cat([final[:, 0], final[:, 1:].mean(dim=1)], dim=-1).float())  # [b, 10]

    return Readout(model, head, [str(i) for i in range(probe.out_features)], size)


def _check_class(readout: Readout, target: int) -> int:
    n = len(readout.class_names)
    if not 0 <= int(target) < n:
        raise InputError(f"target class {target} is out of range: this readout has {n} classes (0..{n - 1}).")
    return int(target)


@torch.no_grad()
def class_direction(readout: Readout, pixels: Pixels, labels: Int[Tensor, " batch"] | Sequence[int], target: int,
                    hook: str) -> Float[Tensor, " d_model"]:  # fmt: skip
    """Mean activation at ``hook`` (over images and positions) of class ``target`` minus that of the other classes."""
    from interp.capture.memory import capture_activations

    target = _check_class(readout, target)
    labels = torch.as_tensor(labels)
    if labels.shape != (len(pixels),):
        raise InputError(f"labels have shape {tuple(labels.shape)}; expected one per image ({len(pixels)}).")
    if not (labels == target).any() or (labels == target).all():
        raise InputError(f"class_direction needs images of class {target} and of other classes; labels hold "
                         f"{sorted(set(labels.tolist()))}.")  # fmt: skip
    acts = capture_activations(readout.model, pixels, hook)[hook].float()  # [batch, pos, d]
    per_image = acts.mean(dim=1)  # [batch, d]
    return per_image[labels == target].mean(0) - per_image[labels != target].mean(0)


def unit_attribution(readout: Readout, pixels: Pixels, target: int, hook: str) -> Float[Tensor, " units"]:
    """Gradient × activation attribution of each unit at ``hook`` to class ``target``'s log-probability.

    Summed over positions, averaged over ``pixels`` (typically images of ``target``):
    a first-order estimate of how much zero-ablating each unit would lower it.
    """
    target = _check_class(readout, target)
    saved: dict[str, Tensor] = {}

    def keep(act: Tensor, hook: Any) -> Tensor:
        act.retain_grad()
        saved["act"] = act
        return act

    with torch.enable_grad(), readout.model.hooks(fwd_hooks=[(hook, keep)]):
        logp = torch.log_softmax(readout.head(readout.model(pixels)).float(), -1)[:, target]  # [batch]
        logp.sum().backward()
    act = saved["act"]  # [batch, pos, units]
    readout.model.zero_grad(set_to_none=True)
    return (act * act.grad).sum(1).mean(0).detach()  # [units]


@dataclass
class _Images:
    effect: Tensor  # [n_effect, 3, H, W]
    neutral: Tensor  # [n_neutral, 3, H, W]
    heldout: Tensor  # [n_heldout, 3, H, W]
    heldout_labels: Tensor
    target: int
    base: dict[str, Tensor] | None = None  # unedited log-probabilities per set


def _rest(logp: Float[Tensor, "b c"], target: int) -> Float[Tensor, "b c1"]:
    """Log-probabilities renormalised over the classes other than ``target``."""
    keep = [c for c in range(logp.shape[1]) if c != target]
    return torch.log_softmax(logp[:, keep], -1)


def _logps(readout: Readout, data: _Images, edits: Sequence[Intervention]) -> dict[str, Tensor]:
    return {k: torch.log_softmax(readout.logits(getattr(data, k), edits), -1) for k in ("effect", "neutral", "heldout")}


def _measure(readout: Readout, data: _Images, row: SweepRow, edits: Sequence[Intervention]) -> SweepRow:
    lp, base, t = _logps(readout, data, edits), data.base, data.target
    row.effect = (lp["effect"][:, t] - base["effect"][:, t]).tolist()
    row.target_prob = lp["effect"][:, t].exp().tolist()
    b, e = _rest(base["neutral"], t), _rest(lp["neutral"], t)
    row.kl = (b.exp() * (b - e)).sum(-1).tolist()
    y = data.heldout_labels
    y_rest = y - (y > t).long()  # index among the non-target classes
    b, e = _rest(base["heldout"], t), _rest(lp["heldout"], t)
    nll = lambda x: -x.gather(1, y_rest[:, None])[:, 0]  # noqa: E731
    row.loss_delta = (nll(e) - nll(b)).tolist()
    row.accuracy = ((e.argmax(-1) == y_rest).float() - (b.argmax(-1) == y_rest).float()).tolist()
    return row


def _images(readout: Readout, target: int, effect: Tensor, neutral: Tensor, heldout: Tensor,
            heldout_labels: Sequence[int] | Tensor) -> _Images:  # fmt: skip
    target = _check_class(readout, target)
    y = torch.as_tensor(heldout_labels).long()
    if y.shape != (len(heldout),):
        raise InputError(f"heldout_labels have shape {tuple(y.shape)}; expected one per held-out image "
                         f"({len(heldout)}).")  # fmt: skip
    keep = y != target  # the loss cost is over the non-target classes
    data = _Images(effect, neutral, heldout[keep], y[keep], target)
    data.base = _logps(readout, data, [])
    return data


def _meta(readout: Readout, data: _Images, kind: str, hook: str, xs: Sequence[int | float], extra: dict[str, Any]
          ) -> dict[str, Any]:  # fmt: skip
    return {"kind": kind, "hooks": [hook], "target_class": data.target,
            "target_strings": [readout.class_names[data.target]], "coefficients": [float(x) for x in xs],
            "n_prompts": len(data.effect), "n_neutral": len(data.neutral), "n_heldout": len(data.heldout),
            "base_target_prob_mean": float(data.base["effect"][:, data.target].exp().mean()),
            "axes": AXES | ({"x": "units ablated"} if kind == "ablation" else {})} | extra  # fmt: skip


@torch.no_grad()
def vision_sweep(readout: Readout, hook: str, target: int, images: Float[Tensor, "n_effect 3 H W"],
                 neutral: Float[Tensor, "n_neutral 3 H W"], heldout: Float[Tensor, "n_heldout 3 H W"],
                 heldout_labels: Sequence[int] | Tensor, coefficients: Sequence[float] = (0.0, 1.0, 2.0, 4.0), *,
                 direction: Tensor | None = None, train: tuple[Tensor, Tensor] | None = None, n_random: int = 1,
                 methods: Mapping[str, VisionMethod] | None = None, seed: int = 0) -> SweepResult:  # fmt: skip
    """Steer a ViT toward class ``target`` by adding a direction at ``hook``; effect against cost, with baselines.

    Args:
        readout: the model and its classifier (:func:`digit_readout`).
        hook: where to add the direction (e.g. ``blocks.8.hook_resid_post``), at every position.
        target: the class to promote.
        images: images whose target-class probability should rise (other classes).
        neutral: images for the KL cost over non-target classes.
        heldout: labelled images for the loss and accuracy cost (target-class images are dropped).
        heldout_labels: their classes.
        coefficients: scales of the direction.
        direction: the steering direction ``[d_model]``; default :func:`class_direction` on ``train``.
        train: ``(pixels, labels)`` for the default direction.
        n_random: random directions of equal norm (the baseline).
        methods: extra methods ``{name: fn(coefficient) -> edits}``, swept like the direction.
        seed: seeds the random directions.

    Returns:
        A :class:`~interp.steering.evaluate.SweepResult`; each row also has per-image ``accuracy`` changes.
    """
    if direction is None:
        if train is None:
            raise InputError("vision_sweep needs direction=<[d_model] tensor> or train=(pixels, labels) to build "
                             "the class-mean difference direction.")  # fmt: skip
        direction = class_direction(readout, train[0], train[1], target, hook)
    data = _images(readout, target, images, neutral, heldout, heldout_labels)
    all_methods: dict[str, VisionMethod] = {"vector": lambda c: [Steer(hook, direction, scale=c)]}
    for i in range(n_random):
        r = random_like(direction, seed + 1000 * i)
        all_methods[f"random{i}" if n_random > 1 else "random"] = lambda c, r=r: [Steer(hook, r, scale=c)]
    all_methods |= dict(methods or {})
    rows = [_measure(readout, data, SweepRow(m, hook, float(c)), fn(float(c)))
            for m, fn in all_methods.items() for c in coefficients]  # fmt: skip
    return SweepResult(
        rows,
        _meta(
            readout,
            data,
            "steer",
            hook,
            coefficients,
            {"direction_norm": float(direction.float().norm()), "n_random": n_random},
        ),
    )


@torch.no_grad()
def ablation_sweep(readout: Readout, hook: str, target: int, images: Float[Tensor, "n_effect 3 H W"],
                   neutral: Float[Tensor, "n_neutral 3 H W"], heldout: Float[Tensor, "n_heldout 3 H W"],
                   heldout_labels: Sequence[int] | Tensor, counts: Sequence[int] = (1, 4, 16, 64), *,
                   ranking: Tensor | None = None, method: Literal["zero", "mean"] = "zero",
                   reference: Tensor | None = None, n_random: int = 1, seed: int = 0) -> SweepResult:  # fmt: skip
    """Ablate the ``n`` units most attributed to class ``target`` at ``hook``, for each ``n``; against random units.

    Args:
        readout: the model and its classifier.
        hook: a hook with units in its last dimension (``blocks.L.mlp.hook_post``, …).
        target: the class whose units are ablated; ``images`` should be of that class, so ``effect``
            (its log-probability change) is negative when the units mattered.
        images / neutral / heldout / heldout_labels: as in :func:`vision_sweep`.
        counts: numbers of units to ablate (the x axis).
        ranking: unit indices, most important first; default :func:`unit_attribution` on ``images``.
        method: ``zero``, or ``mean`` over ``reference`` (activations at ``hook``, ``[n, pos, units]``).
        n_random: random unit sets per count (the baseline).
        seed: seeds the random sets.

    Returns:
        A :class:`~interp.steering.evaluate.SweepResult` whose ``coefficient`` is the number of units.
    """
    if ranking is None:
        with torch.enable_grad():
            ranking = unit_attribution(readout, images, target, hook).argsort(descending=True)
    ranking = torch.as_tensor(ranking).long()
    n_units = len(ranking)
    bad = [n for n in counts if not 1 <= int(n) <= n_units]
    if bad:
        raise InputError(f"counts {bad} are out of range for {hook}'s {n_units} ranked units. Use 1..{n_units}.")
    data = _images(readout, target, images, neutral, heldout, heldout_labels)
    g = torch.Generator().manual_seed(seed)
    perms = [torch.randperm(n_units, generator=g) for _ in range(n_random)]

    def edit(units: Tensor) -> list[Intervention]:
        return [Ablate(hook, method=method, reference=reference, units=units.tolist())]

    rows = []
    for n in counts:
        rows.append(_measure(readout, data, SweepRow("attributed", hook, float(n)), edit(ranking[:n])))
        for i, p in enumerate(perms):
            name = f"random{i}" if n_random > 1 else "random"
            rows.append(_measure(readout, data, SweepRow(name, hook, float(n)), edit(p[:n])))
    return SweepResult(rows, _meta(readout, data, "ablation", hook, counts,
                                   {"method": method, "ranking_head": ranking[:max(counts)].tolist(),
                                    "n_random": n_random}))  # fmt: skip


def summary(result: SweepResult) -> dict[str, dict[float, float]]:
    """``{method: {x: mean effect}}``: the curve of each method, for quick comparisons."""
    out: dict[str, dict[float, float]] = {}
    for r in result.rows:
        out.setdefault(r.method, {})[r.coefficient] = float(sum(r.effect) / max(len(r.effect), 1))
    return out


def accuracy_mean(row: SweepRow) -> float:
    """Mean per-image accuracy change of a vision row (NaN when none)."""
    return float(sum(row.accuracy) / len(row.accuracy)) if row.accuracy else math.nan
