"""The concept ViT: a small HookedViT whose planted units have known labels.

Two shipped variants, trained by ``scripts/train_concept_vit.py`` on
:mod:`interp.datasets.concepts` images (48 px, patch 6, an 8×8 grid):

- ``"concepts"``: a CLS head predicts which concepts an image holds, and one
  designated MLP neuron per concept (``blocks.1.mlp.hook_post`` for colour,
  texture and position, ``blocks.2.mlp.hook_post`` for shape and size) is
  trained to fire on the patches its concept covers and stay silent elsewhere.
  The truth ``{hook: {unit: concept}}`` is in the record as ``"designated_units"``,
  known by construction, with each unit's held-out AUROC. Neuron labeling
  (MILAN-like) is scored against it.
- ``"spurious"``: the same architecture trained only to tell circles from
  bars when colour is confounded with the class (red circles, blue bars, 95%
  of the red and blue ones; 30% of training objects are green or yellow, so it
  also learns some shape); it loses accuracy on the ``reversed`` split. Its head
  reads the units, not the CLS token: a sparse linear layer on the mean over
  patches of the last block's MLP neurons (:data:`SPURIOUS_READOUT`), the analogue
  of the globally pooled last-layer units a CNN classifier reads; those neurons
  were first pretrained as local concept detectors (which concepts cover each
  patch), then frozen while the head was fitted on the confounded data. Everything the head
  sees passes through those neurons, so ablating the ones labelled with the
  spurious colour removes the shortcut (a CLS head would get the colour straight
  from the residual stream, around every neuron). The editing workflow
  (:func:`interp.labeling.workflows.edit_spurious`) measures the recovery (the
  record's ``shape_only_accuracy`` is what shape alone gives).

A patch is a positive for a concept when at least :data:`POSITIVE_COVERAGE` of
its pixels carry it, a negative when none do; patches in between are left out of
training and of the AUROCs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from typing import Any, NamedTuple

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor, nn

from interp.datasets.concepts import CONCEPTS, PIXEL_MEAN, PIXEL_STD, ConceptSet
from interp.errors import InputError, InterpError, UnknownNameError
from interp.models.vit import HookedViT, HookedViTConfig

__all__ = [
    "VARIANTS",
    "SPURIOUS_READOUT",
    "POSITIVE_COVERAGE",
    "IMAGE_SIZE",
    "PATCH_SIZE",
    "ConceptViT",
    "concept_vit_config",
    "plan_designated_units",
    "load_concept_vit",
    "pooled_units",
    "patch_unit_activations",
    "patch_targets",
    "designated_unit_aurocs",
    "auroc",
]

VARIANTS = ("concepts", "spurious")
#: Fraction of a patch a concept must cover for the patch to count as a positive.
POSITIVE_COVERAGE = 0.5
IMAGE_SIZE, PATCH_SIZE = 48, 6
#: The units the spurious variant's head reads, averaged over patches (CLS excluded).
SPURIOUS_READOUT = "blocks.3.mlp.hook_post"
#: Which layer's MLP holds the designated unit of each attribute: colour, texture and position
#: are local, shape and size need attention over neighbouring patches first.
ATTRIBUTE_LAYER = {"colour": 1, "texture": 1, "position": 1, "shape": 2, "size": 2}


def concept_vit_config(variant: str = "concepts") -> HookedViTConfig:
    """The architecture of both variants: 4 layers, d_model 64, 4 heads, d_mlp 128, 48 px, patch 6.

    Raises:
        UnknownNameError: ``variant`` is not in :data:`VARIANTS`.
    """
    _check_variant(variant)
    return HookedViTConfig(
        n_layers=4, d_model=64, n_heads=4, d_head=16, d_mlp=128, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE,
        model_name=f"concept-vit-{variant}", eps=1e-6, image_mean=PIXEL_MEAN, image_std=PIXEL_STD,
    )  # fmt: skip


def plan_designated_units(d_mlp: int = 128, seed: int = 0) -> dict[str, dict[str, str]]:
    """Pick one MLP neuron per concept, at seeded random indices (so labels cannot be read off the index).

    Returns:
        ``{hook_name: {str(unit): concept}}``, e.g. ``{"blocks.1.mlp.hook_post": {"17": "colour:red", ...}}``.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, str]] = {}
    for layer in sorted(set(ATTRIBUTE_LAYER.values())):
        concepts = [c for c in CONCEPTS if ATTRIBUTE_LAYER[c.split(":")[0]] == layer]
        units = rng.choice(d_mlp, size=len(concepts), replace=False)
        out[f"blocks.{layer}.mlp.hook_post"] = {str(int(u)): c for u, c in zip(units, concepts, strict=True)}
    return out


class ConceptViT(NamedTuple):
    """A loaded variant: ``model, head, meta = load_concept_vit()``.

    Attributes:
        model: the :class:`~interp.models.vit.HookedViT` (TransformerLens hook names).
        head: ``"concepts"``: ``nn.Linear(d_model, n_concepts)`` on the final CLS token, one logit per
            concept of :data:`~interp.datasets.concepts.CONCEPTS` (presence, sigmoid);
            ``"spurious"``: ``nn.Linear(d_mlp, 2)`` (circle, bar) on the patch-mean of the
            :data:`SPURIOUS_READOUT` neurons (the record's ``"readout"``).
        meta: the JSON record (config, ``designated_units``, ``readout``, metrics, training command).
    """

    model: HookedViT
    head: nn.Linear
    meta: dict[str, Any]

    @property
    def readout(self) -> str | None:
        """The hook whose patch-mean the head reads, or None when it reads the final CLS token."""
        return self.meta.get("readout")

    def logits(self, pixels: Float[Tensor, "batch 3 H W"] | Any) -> Float[Tensor, "batch classes"]:
        """Head logits for pixels (``ConceptSet.pixels()``) or raw images (``prepare_inputs`` applies).

        Edits active on the model (``interp.interventions.intervene``) apply, the readout units included.
        """
        if self.readout is None:
            return self.head(self.model(pixels)[:, 0])  # CLS token of the final LayerNorm output
        return self.head(pooled_units(self.model, pixels, self.readout))


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise UnknownNameError("concept-vit variant", str(variant), VARIANTS)


def load_concept_vit(
    variant: str = "concepts", device: str = "cpu", dtype: torch.dtype | str | None = None, n_layers: int | None = None
) -> ConceptViT:
    """Load a shipped concept ViT from ``interp/data/concept_vit/``.

    Args:
        variant: ``"concepts"`` (planted concept units) or ``"spurious"`` (colour shortcut).
        device: torch device of the weights.
        dtype: parameter dtype (default float32, as trained).
        n_layers: keep only the first ``n_layers`` blocks (their activations are unchanged; the
            head then reads a truncated model, so use it only with all layers).

    Returns:
        A :class:`ConceptViT` ``(model, head, meta)`` in eval mode.

    Raises:
        UnknownNameError: unknown ``variant``.
        InputError: ``n_layers`` outside ``1..4``.
        InterpError: the weight files are missing from the installed package.
    """
    from safetensors.torch import load_file

    _check_variant(variant)
    folder = resources.files("interp") / "data" / "concept_vit"
    weights, record = folder / f"{variant}.safetensors", folder / f"{variant}.json"
    if not (weights.is_file() and record.is_file()):
        raise InterpError(
            f"the concept ViT files {variant}.safetensors / .json are missing from {folder}. "
            "Reinstall interp, or rebuild them with: python scripts/train_concept_vit.py"
        )
    meta = json.loads(record.read_text())
    cfg = HookedViTConfig(**meta["config"])
    if n_layers is not None:
        if not isinstance(n_layers, int) or not 1 <= n_layers <= cfg.n_layers:
            raise InputError(f"n_layers must be in 1..{cfg.n_layers} for concept-vit-{variant}, got {n_layers!r}.")
        cfg = replace(cfg, n_layers=n_layers)
    with resources.as_file(weights) as path:
        state = load_file(str(path))
    head_state = {k.removeprefix("head."): state.pop(k) for k in [k for k in state if k.startswith("head.")]}
    kept = {f"blocks.{i}." for i in range(cfg.n_layers)}
    state = {k: v for k, v in state.items() if not k.startswith("blocks.") or k[: k.index(".", 7) + 1] in kept}
    model = HookedViT(cfg, init_weights=False)
    model.load_state_dict(state)
    head = nn.Linear(head_state["weight"].shape[1], head_state["weight"].shape[0])
    head.load_state_dict(head_state)
    model.interp_info = replace(model.interp_info, source=f"interp:data/concept_vit/{variant}.safetensors")
    dtype = getattr(torch, dtype.removeprefix("torch.")) if isinstance(dtype, str) else dtype
    return ConceptViT(model.to(device, dtype).eval(), head.to(device, dtype).eval(), meta)


def pooled_units(model: HookedViT, pixels: Float[Tensor, "batch 3 H W"] | Any, hook: str) -> Float[Tensor, "batch d"]:
    """Mean over patch positions (CLS excluded) of ``hook``'s units: what the spurious head reads.

    The capture hook is added after any hooks already on the model, so it sees their edits.
    Gradients flow (the training script uses it too).
    """
    out: list[Tensor] = []

    def keep(act: Tensor, hook: Any) -> None:
        out.append(act[:, 1:].mean(1))  # [b, pos, d] -> [b, d], CLS dropped

    with model.hooks(fwd_hooks=[(hook, keep)]):
        model(pixels, stop_at_layer=model.cfg.n_layers)  # the final LayerNorm is not read
    return out[0]


@torch.no_grad()
def patch_unit_activations(
    model: HookedViT, pixels: Float[Tensor, "n 3 H W"], hook: str, units: list[int], batch_size: int = 256
) -> Float[Tensor, "n unit patch"]:
    """Activations of ``units`` of ``hook`` at every patch position (CLS dropped), in batches."""
    out = []
    for start in range(0, pixels.shape[0], batch_size):
        _, cache = model.run_with_cache(pixels[start : start + batch_size], names_filter=hook)
        acts = cache[hook][:, 1:, units]  # [b, patch, unit]
        out.append(acts.transpose(1, 2).float().cpu())  # [b, unit, patch]
    return torch.cat(out)


def patch_targets(
    cset: ConceptSet, patch_size: int = PATCH_SIZE, negatives: str = "all"
) -> Float[Tensor, "n concept patch"]:
    """Per-patch target of every concept: 1 (positive), 0 (negative) or NaN (left out).

    A patch is a positive when the concept covers at least :data:`POSITIVE_COVERAGE` of it.

    Args:
        cset: the images.
        patch_size: the model's patch side.
        negatives: ``"all"``: every patch the concept does not touch (background included);
            ``"objects"``: only patches at least :data:`POSITIVE_COVERAGE` covered by objects that
            lack the concept (the harder test: a generic object detector scores 0.5 here).

    Raises:
        InputError: an unknown ``negatives``.
    """
    if negatives not in ("all", "objects"):
        raise InputError(f"negatives must be 'all' or 'objects', got {negatives!r}.")
    cov = cset.patch_coverage(patch_size).flatten(2)  # [n, concept, grid, grid] -> [n, concept, patch]
    target = torch.full_like(cov, float("nan"))
    neg = cov == 0
    if negatives == "objects":
        neg &= (cset.object_coverage(patch_size).flatten(1) >= POSITIVE_COVERAGE)[:, None]  # [n, 1, patch]
    target[neg] = 0.0
    target[cov >= POSITIVE_COVERAGE] = 1.0
    return target


def auroc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (ties count half).

    Raises:
        InterpError: ``labels`` holds only one class.
    """
    from scipy.stats import rankdata

    labels = labels.bool()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if not n_pos or not n_neg:
        raise InterpError(f"AUROC needs both classes; found {n_pos} positives and {n_neg} negatives.")
    ranks = torch.from_numpy(rankdata(scores.double().numpy()))  # average ranks for ties
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def designated_unit_aurocs(
    model: HookedViT, designated: dict[str, dict[str, str]], cset: ConceptSet, negatives: str = "all"
) -> dict[str, float]:
    """Held-out AUROC of each designated unit's post-activation for its concept over patches.

    Args:
        model: a concept ViT.
        designated: ``{hook: {unit: concept}}`` (the record's ``"designated_units"``).
        cset: images to score on (use a split the model was not trained on).
        negatives: ``"all"`` or ``"objects"``, as in :func:`patch_targets`.

    Returns:
        ``{concept: auroc}``; positives and negatives as in :func:`patch_targets`.
    """
    targets = patch_targets(cset, model.cfg.patch_size, negatives)  # [n, concept, patch]
    pixels = cset.pixels()
    out = {}
    for hook, units in designated.items():
        acts = patch_unit_activations(model, pixels, hook, [int(u) for u in units])  # [n, unit, patch]
        for j, concept in enumerate(units.values()):
            t = targets[:, CONCEPTS.index(concept)].flatten()
            keep = ~t.isnan()
            out[concept] = round(auroc(acts[:, j].flatten()[keep], t[keep]), 4)
    return out
