"""Image labeling against known truth: planted patch units, and the concept ViT's designated units.

Two harnesses, both over synthetic concept images whose per-pixel concept masks
are known (:mod:`interp.datasets.concepts`):

* :func:`planted_image_units` / :func:`planted_image_activations`: activation
  maps built from rules (a concept's patch coverage, a composition of two, a
  dataset label, a position) with noise, for fast tests without a model;
* :func:`evaluate_concept_vit`: labels every MLP unit of the layers of the
  shipped concept ViT (:func:`interp.models.concept_vit.load_concept_vit`) that
  hold designated units, and compares each designated unit's label with the
  concept it was trained to detect (``designated_units`` in the model's record).

Both report, through :func:`interp.labeling.planted.evaluate`, top-1 / top-3
accuracy (is the true key the label / among the first three ranked
candidates?) and each label's held-out detection AUROC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from interp.labeling.candidates import combine
from interp.labeling.label import LabelConfig
from interp.labeling.planted import PlantedReport, PlantedUnit, evaluate, planted_activations
from interp.labeling.results import LabelSet
from interp.labeling.vision import ImageProbe, image_atom

__all__ = ["planted_image_units", "planted_image_activations", "evaluate_concept_vit", "ConceptViTReport"]


def planted_image_units() -> list[PlantedUnit]:
    """Ten planted patch units: single concepts, a label, a position, an ``and``, an ``or`` and a polysemantic one."""
    names = ("shape:circle", "colour:red", "texture:stripes", "size:large", "shape:square", "colour:green",
             "colour:blue", "texture:checker", "shape:bar")  # fmt: skip
    c = {n: image_atom("concept", n) for n in names}
    units = [PlantedUnit(f"concept-{n}", "concept", a, ((a, 1.0),)) for n, a in list(c.items())[:4]]
    for kind, atom in (("label", image_atom("label", "square")), ("where", image_atom("where", "top"))):
        units.append(PlantedUnit(f"{kind}-{atom.arg}", kind, atom, ((atom, 1.0),)))
    both = combine("and", c["colour:blue"], c["texture:checker"])
    units.append(PlantedUnit("and-blue-checker", "and", both, ((both, 1.0),)))
    either = combine("or", c["shape:square"], c["colour:green"])
    units.append(PlantedUnit("or-square-green", "or", either, ((c["shape:square"], 1.0), (c["colour:green"], 1.0))))
    poly = combine("or", c["shape:bar"], c["texture:checker"])  # bars are rare: the top patches hold both
    parts = ((c["shape:bar"], 1.0), (c["texture:checker"], 0.8))
    units.append(PlantedUnit("poly-bar-checker", "polysemantic", poly, parts))
    return units


def planted_image_activations(
    probe: ImageProbe, units: list[PlantedUnit], seed: int = 0
) -> Float[Tensor, "n_images P u"]:
    """Activation maps ``[n_images, P, u]``: ``strength · (1 + 0.1 ε)`` where a rule holds, ``relu(0.02 ε)`` else."""
    out = planted_activations(probe, units, seed)  # [n_patches, u]: the text rule, rows are patches
    return out.reshape(-1, probe.grid**2, len(units))  # [n_images, P, u]


@dataclass
class ConceptViTReport:
    """Labels of the concept ViT's designated units against their truth.

    Attributes:
        report: top-1 / top-3 accuracy and AUROC over the designated units (``report.table()``).
        labels: every labelled unit, per hook.
        truth_auroc: per designated unit, the held-out AUROC of its true concept (same patches,
            activations below zero tied, as the labels are scored).
        planted: the same accuracy over the designated units whose training made them *selective* for
            their concept (the model's record: held-out AUROC against patches of other objects >=
            ``selectivity``): a unit that fires on every object was designated but not planted.
        unselective: the designated units left out of ``planted``.
    """

    report: PlantedReport
    labels: dict[str, LabelSet]
    truth_auroc: dict[str, float]
    planted: PlantedReport | None = None
    unselective: list[str] | None = None

    def table(self) -> str:
        """The accuracy table with, per unit, the held-out AUROC of its true concept beside its label's."""
        lines = self.report.table().split("\n")
        head = [f"{lines[0]}  | truth AUROC"]
        pairs = zip(lines[1:-1], self.report.rows, strict=True)
        rows = [f"{line}  | {self.truth_auroc[r[0]]:.3f}" for line, r in pairs]
        tail = lines[-1:]
        if self.planted is not None:
            tail += [f"selectively planted units ({len(self.planted.rows)}): top-1 {self.planted.top1:.0%}  top-3 "
                     f"{self.planted.top3:.0%}; designated but not selective: {', '.join(self.unselective or [])}"]
        return "\n".join(head + rows + tail)


def evaluate_concept_vit(
    variant: str = "concepts",
    *,
    n_images: int = 600,
    seed: int = 1,
    config: LabelConfig | None = None,
    cvit: Any = None,
    progress: bool = False,
    selectivity: float = 0.85,
) -> ConceptViTReport:
    """Label the concept ViT's layers that hold designated units and score the labels against the truth.

    Args:
        variant: the concept ViT variant (``"concepts"`` holds the designated units).
        n_images: held-out concept images to label with (the model never trained on them).
        seed: seed of those images.
        config: labeling settings.
        cvit: an already loaded ``load_concept_vit(variant)`` result.
        progress: show progress bars.
        selectivity: least held-out AUROC against other objects' patches (recorded in the model's
            metrics when it was trained) for a designated unit to count as planted.

    Returns:
        A :class:`ConceptViTReport`; ``report.table()`` prints one row per designated unit.
    """
    from interp.datasets.concepts import concept_images
    from interp.labeling.scoring import auroc
    from interp.labeling.vision import image_probe
    from interp.labeling.vit import label_vit, vit_unit_batches
    from interp.models.concept_vit import load_concept_vit

    cfg = config or LabelConfig()
    model, _, meta = cvit if cvit is not None else load_concept_vit(variant)
    data = concept_images(n_images, seed=seed, split="heldout")
    probe = image_probe(data, model.cfg.image_size, model.cfg.patch_size)
    held = probe.heldout_mask(cfg.heldout_every)
    truth = meta.get("designated_units", {})
    labels, units, picked, truth_auroc = {}, [], [], {}
    for hook, designated in truth.items():
        labels[hook] = label_vit(model, hook, data, cfg, batch_size=100, progress=progress, probe=probe)
        by_unit = {u.unit: u for u in labels[hook].units}
        ids = [int(u) for u in designated]
        acts = torch.cat(list(vit_unit_batches(model, hook, list(data.images), units=ids, batch_size=100)))
        acts = acts.reshape(-1, len(ids))[held]  # [held-out patches, designated units]
        for j, (unit, concept) in enumerate(designated.items()):
            atom = image_atom("concept", concept)
            name = f"{hook.split('.')[1]}:{unit}"
            units.append(PlantedUnit(name, concept.split(":")[0], atom, ((atom, 1.0),)))
            picked.append(by_unit[int(unit)])
            truth_auroc[name] = auroc(probe.column(atom.key)[held], acts[:, j].clamp(min=0))
    vs_objects = meta.get("metrics", {}).get("heldout_unit_auroc_vs_other_objects", {})
    keep = [i for i, u in enumerate(units) if vs_objects.get(u.truth.arg, 0.0) >= selectivity]
    planted = evaluate(LabelSet([picked[i] for i in keep]), [units[i] for i in keep]) if keep else None
    unselective = [f"{u.name} {u.truth.arg}" for i, u in enumerate(units) if i not in keep]
    return ConceptViTReport(evaluate(LabelSet(picked), units), labels, truth_auroc, planted, unselective)
