"""Influential neuron paths in vision transformers (after "Discovering Influential Neuron Path in
Vision Transformers", Wang et al. 2025).

A neuron path is one MLP neuron per layer (``blocks.{L}.mlp.hook_post`` unit ``u_L``).
The search is layer-progressive: at layer ``L`` it picks the neuron whose
addition to the neurons already chosen (layers ``< L``) gives the set the
largest *joint influence* on the readout, here the drop of the predicted class's
logit when every neuron of the set is ablated together (zeroed at every token,
through :class:`interp.interventions.Ablate`). Scoring every neuron of every
layer exactly costs ``n_layers × d_mlp`` forward passes; so each layer is first
screened by gradient attribution (activation × gradient of the readout, summed
over tokens, with the chosen set already ablated: the first-order estimate of
each neuron's extra drop) and only the top ``n_candidates`` are scored exactly.

:func:`random_path_influence` measures random paths of the same length, the
baseline the found path must beat by a wide margin.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from interp.errors import InputError
from interp.interventions import Ablate, intervene

__all__ = ["NeuronPathConfig", "NeuronPath", "probe_readout", "neuron_path", "random_path_influence"]

Readout = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class NeuronPathConfig:
    """Settings of :func:`neuron_path`."""

    layers: tuple[int, ...] | None = None
    """Layers the path visits, in order (default: all)."""
    n_candidates: int = 8
    """Neurons per layer scored exactly after the gradient screen."""
    n_random: int = 8
    """Random paths of the same length measured as the baseline (0: none)."""
    seed: int = 0
    """Seed of the random paths."""

    def __post_init__(self) -> None:
        if self.n_candidates < 1 or self.n_random < 0:
            raise InputError(f"NeuronPathConfig needs n_candidates >= 1 and n_random >= 0; got "
                             f"{self.n_candidates}, {self.n_random}.")  # fmt: skip


@dataclass(frozen=True)
class NeuronPath:
    """A found path and its measured influence.

    Attributes:
        neurons: ``(layer, unit)`` per step.
        influence: joint influence (readout drop) of the first ``i + 1`` neurons, per step.
        screen_estimate: the gradient screen's estimate of each chosen neuron's extra drop.
        target: the class whose logit is read out.
        base: readout of the unedited image.
        random_influence: joint influence of each random path of the same length.
        seconds: wall time.
    """

    neurons: list[tuple[int, int]]
    influence: list[float]
    screen_estimate: list[float]
    target: int
    base: float
    random_influence: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def hooks(self) -> list[str]:
        """``blocks.{L}.mlp.hook_post:{unit}`` per step."""
        return [f"blocks.{layer}.mlp.hook_post:{unit}" for layer, unit in self.neurons]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def probe_readout(probe: torch.nn.Module, target: int | None = None) -> Callable[[Tensor], Tensor]:
    """Readout of a :class:`~interp.models.vit.HookedViT` output through a CLS ⊕ mean-patch linear probe.

    Args:
        probe: ``nn.Linear(2 * d_model, n_classes)`` (e.g. :func:`interp.models.probes.load_digit_probe`).
        target: class whose logit is returned; ``None`` returns all logits ``[batch, n_classes]``.

    Returns:
        ``readout(final_ln_out [batch, pos, d_model]) -> [batch]`` (or ``[batch, n_classes]``).
    """

    def readout(final: Tensor) -> Tensor:
        feats = torch.cat([final[:, 0], final[:, 1:].mean(1)], -1)  # [batch, 2 * d_model], as digit_features
        logits = probe(feats.float())
        return logits if target is None else logits[:, target]

    return readout


def _ablations(neurons: list[tuple[int, int]]) -> list[Ablate]:
    by_layer: dict[int, list[int]] = {}
    for layer, unit in neurons:
        by_layer.setdefault(layer, []).append(unit)
    return [Ablate(f"blocks.{layer}.mlp.hook_post", units=units) for layer, units in by_layer.items()]


@torch.no_grad()
def _value(model: Any, image: Tensor, readout: Readout, neurons: list[tuple[int, int]]) -> float:
    """Readout with ``neurons`` zeroed at every token."""
    with intervene(model, _ablations(neurons)):
        return float(readout(model(image)).sum())


def _screen(model: Any, image: Tensor, readout: Readout, chosen: list[tuple[int, int]], layer: int) -> Tensor:
    """Activation × gradient of the readout at ``layer``'s neurons (summed over tokens), chosen set ablated."""
    hook = f"blocks.{layer}.mlp.hook_post"
    store: dict[str, Tensor] = {}

    def keep(act: Tensor, hook: Any) -> Tensor:
        store["act"] = act
        return act

    with torch.enable_grad(), intervene(model, _ablations(chosen)), model.hooks(fwd_hooks=[(hook, keep)]):
        out = readout(model(image)).sum()
        (grad,) = torch.autograd.grad(out, store["act"])
    return (store["act"] * grad).sum((0, 1)).detach()  # [d_mlp]; ≈ drop from zeroing each neuron


def neuron_path(
    model: Any,
    image: Float[Tensor, "batch 3 H W"],
    readout: Readout,
    cfg: NeuronPathConfig | None = None,
    *,
    target: int | None = None,
) -> NeuronPath:
    """Layer-progressive search for the most influential MLP neuron per layer.

    Args:
        model: a :class:`~interp.models.vit.HookedViT` (or any model with ``blocks.{L}.mlp.hook_post``).
        image: one preprocessed image.
        readout: maps the model output to a scalar per image (e.g. :func:`probe_readout` with a target),
            or to ``[batch, n_classes]`` logits, in which case ``target`` (default: the predicted class) is read.
        cfg: settings.
        target: class for a multi-class readout.

    Returns:
        The :class:`NeuronPath`, with random paths of the same length measured when ``cfg.n_random > 0``.

    Raises:
        InputError: a batch of more than one image, or layers out of range.
    """
    cfg = cfg or NeuronPathConfig()
    if image.ndim != 4 or image.shape[0] != 1:
        raise InputError(f"neuron_path takes one image [1, 3, H, W]; got {tuple(image.shape)}. Loop over images.")
    n_layers = model.cfg.n_layers
    layers = list(cfg.layers) if cfg.layers is not None else list(range(n_layers))
    if any(not 0 <= layer < n_layers for layer in layers):
        raise InputError(f"NeuronPathConfig.layers {layers} must lie in 0..{n_layers - 1}.")
    t0 = time.perf_counter()
    with torch.no_grad():
        out = readout(model(image))
    if out.ndim == 2:
        target = int(out.argmax(-1)) if target is None else target
        readout = _select(readout, target)
    base = _value(model, image, readout, [])
    chosen: list[tuple[int, int]] = []
    influence, estimate = [], []
    for layer in layers:
        attr = _screen(model, image, readout, chosen, layer)
        cands = attr.topk(min(cfg.n_candidates, len(attr))).indices.tolist()
        vals = [base - _value(model, image, readout, chosen + [(layer, u)]) for u in cands]
        best = max(range(len(cands)), key=lambda i: vals[i])
        chosen.append((layer, cands[best]))
        influence.append(vals[best])
        estimate.append(float(attr[cands[best]]))
    rand = random_path_influence(model, image, readout, layers, cfg.n_random, seed=cfg.seed, base=base)
    return NeuronPath(chosen, influence, estimate, -1 if target is None else target, base, rand,
                      round(time.perf_counter() - t0, 2))  # fmt: skip


def _select(readout: Readout, target: int) -> Readout:
    return lambda out: readout(out)[:, target]


def random_path_influence(
    model: Any, image: Tensor, readout: Readout, layers: list[int], n: int, *, seed: int = 0, base: float | None = None
) -> list[float]:
    """Joint influence (readout drop when ablated together) of ``n`` random one-neuron-per-layer paths.

    Args:
        model: the ViT.
        image: one preprocessed image.
        readout: scalar readout per image.
        layers: layers of the path.
        n: number of random paths.
        seed: draws the units.
        base: the unedited readout, if already known.

    Returns:
        One influence per random path.
    """
    g = torch.Generator().manual_seed(seed)
    d_mlp = model.cfg.d_mlp
    base = _value(model, image, readout, []) if base is None else base
    paths = [[(layer, int(torch.randint(d_mlp, (1,), generator=g))) for layer in layers] for _ in range(n)]
    return [base - _value(model, image, readout, p) for p in paths]
