"""What labels are for: analysing layers, auditing units, and editing a model through its labels.

* :func:`analysis`: which kinds of description (token, lexical class,
  position, output token, colour, concept, composition, …) label the units of
  each layer: a table and a plotly bar chart.
* :func:`audit`: the units whose labels match a query (``"face"``, ``"red"``),
  with their held-out scores, best first.
* :func:`edit_spurious`: MILAN's editing experiment. Label the units the
  spurious concept ViT's head reads (trained where colour predicts the class),
  mean-ablate the units whose labels name the confounded colours, and measure
  accuracy on the reversed split (where the colour points the wrong way) and on
  held-out data (the cost) against ablating as many random units and as many
  of the most active units. Edits go through :mod:`interp.interventions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from interp.errors import InputError
from interp.labeling.label import LabelConfig
from interp.labeling.results import LabelSet

__all__ = ["KIND_NAMES", "analysis", "analysis_figure", "audit", "edit_spurious", "EditResult"]

#: Readable name of each description kind.
KIND_NAMES = {"tok": "token", "prev": "previous token", "next": "next / output token", "class": "lexical class",
              "pos": "position", "colour": "colour", "where": "image region", "size": "region size",
              "texture": "texture", "label": "dataset class", "concept": "concept", "composition": "composition",
              "": "never active"}  # fmt: skip


def _kind(u: Any) -> str:
    """The kind of a unit's label (older label files carry none: read it off the key)."""
    kind = u.kind or (("composition" if "(" in u.key else u.key.split(":")[0]) if u.key else "")
    if kind == "concept":  # concept:shape:circle -> shape (concept)
        return f"{u.key.split(':')[1]} (concept)" if u.key.count(":") >= 2 else "concept"
    return KIND_NAMES.get(kind, kind)


def analysis(layers: dict[str, LabelSet]) -> Any:
    """Share of each description kind per layer.

    Args:
        layers: ``{layer name: labels}``.

    Returns:
        A ``pandas.DataFrame`` with columns ``layer, kind, units, share, median_auroc``.
    """
    import pandas as pd

    rows = []
    for name, labels in layers.items():
        by: dict[str, list[float]] = {}
        for u in labels.units:
            by.setdefault(_kind(u), []).append(u.scores.get("auroc") or float("nan"))
        for kind, aucs in by.items():
            finite = sorted(a for a in aucs if a == a)
            rows.append({"layer": name, "kind": kind, "units": len(aucs), "share": len(aucs) / len(labels.units),
                         "median_auroc": finite[len(finite) // 2] if finite else float("nan")})  # fmt: skip
    return pd.DataFrame(rows).sort_values(["layer", "units"], ascending=[True, False], ignore_index=True)


def analysis_figure(table: Any) -> Any:
    """A stacked plotly bar chart of :func:`analysis` (share of units per kind, one bar per layer)."""
    import plotly.express as px

    fig = px.bar(table, x="layer", y="share", color="kind", hover_data=["units", "median_auroc"],
                 title="kinds of description per layer")  # fmt: skip
    fig.update_layout(barmode="stack", yaxis_tickformat=".0%")
    return fig


def audit(labels: LabelSet, query: str, *, alternatives: bool = True, min_auroc: float = 0.0) -> list[dict]:
    """Units whose label (or description, key, or a runner-up label) matches ``query``.

    Args:
        labels: the labels to search.
        query: a case-insensitive regular expression (``"face"``, ``"red|blue"``).
        alternatives: also search the runner-up labels (a match there is reported as such).
        min_auroc: drop units whose chosen label scores below this held-out AUROC.

    Returns:
        ``[{"unit", "label", "matched", "auroc", "balanced_accuracy", "shuffled_auroc"}]``, best AUROC first.
    """
    try:
        pat = re.compile(query, re.IGNORECASE)
    except re.error as err:
        msg = f"audit query {query!r} is not a regular expression ({err}). Escape it with re.escape."
        raise InputError(msg) from err
    out = []
    for u in labels.units:
        hit = next((t for t in (u.label, u.description, u.key) if t and pat.search(t)), None)
        where = "label"
        if hit is None and alternatives:
            hit, where = next((a["label"] for a in u.alternatives if pat.search(a["label"])), None), "runner-up"
        auc = u.scores.get("auroc")
        if hit is not None and (auc or 0.0) >= min_auroc:
            out.append({"unit": u.unit, "label": u.text, "matched": f"{where}: {hit}", "auroc": auc,
                        "balanced_accuracy": u.scores.get("balanced_accuracy"),
                        "shuffled_auroc": u.scores.get("shuffled_auroc")})  # fmt: skip
    return sorted(out, key=lambda r: (r["matched"].startswith("runner-up"), -(r["auroc"] or 0.0)))


@dataclass
class EditResult:
    """Accuracy after each ablation: on the reversed split (the gain) and on held-out data (the cost).

    Attributes:
        rows: ``[{"method", "units", "reversed_accuracy", "heldout_accuracy"}]``: none, labelled (units
            whose labels match the query), random (mean over seeds, same count per hook), most active
            (the same count of units with the highest mean activation, per hook).
        ablated: ``{hook: [unit, ...]}`` chosen by their labels.
        labels: the labels of every hook.
        ablation: ``"mean"`` or ``"zero"``.
    """

    rows: list[dict[str, Any]]
    ablated: dict[str, list[int]]
    labels: dict[str, LabelSet]
    ablation: str = "mean"

    def accuracy(self, method: str, split: str = "reversed") -> float:
        """The ``split`` (``"reversed"`` or ``"heldout"``) accuracy of the row whose method starts with ``method``.

        Raises:
            InputError: no row matches ``method``.
        """
        for r in self.rows:
            if r["method"].startswith(method):
                return r[f"{split}_accuracy"]
        known = [r["method"] for r in self.rows]
        raise InputError(f"no ablation {method!r} in this edit result; it has {known}.")

    def table(self) -> str:
        """Plain-text table."""
        lines = [f"{self.ablation}-ablation      {'units':>6} {'reversed acc.':>14} {'held-out acc.':>14}"]
        lines += [f"{r['method']:<22} {r['units']:>6} {r['reversed_accuracy']:>14.3f} {r['heldout_accuracy']:>14.3f}"
                  for r in self.rows]  # fmt: skip
        return "\n".join(lines)


def _accuracy(cvit: Any, data: Any, edits: list[Any]) -> float:
    """Class accuracy of the concept ViT's head on ``data`` under ``edits``."""
    from interp.interventions import intervene

    with torch.no_grad(), intervene(cvit.model, edits):
        pred = cvit.logits(data.pixels()).argmax(-1)
    return float((pred == torch.from_numpy(data.labels)).float().mean())


def edit_spurious(query: str = r"\b(red|blue)\b", *, n_images: int = 400, n_random: int = 5,
                  hooks: list[str] | None = None, ablation: str = "mean", alternatives: bool = False,
                  config: LabelConfig | None = None, cvit: Any = None, seed: int = 0) -> EditResult:  # fmt: skip
    """Ablate the spurious concept ViT's units whose labels match ``query``; compare with baselines.

    MILAN's editing experiment: the spurious variant's head reads the patch-mean of the last MLP's
    units (``cvit.readout``, like a CNN's pooled last layer), so every cue passes through units.
    They are labelled on ``train`` images; those labelled red or blue are ablated and the accuracy
    on the ``reversed`` split (colour contradicts the class) should rise, more than when as many
    random or as many of the most active units are ablated. Held-out accuracy is the cost.

    Args:
        query: regular expression on label keys and texts naming the spurious feature (default: labels
            that mention red or blue, alone or in a composition such as "(red pixels) and (solid)", the
            way MILAN searched its descriptions for the spurious word).
        n_images: images labelled with (train split) and evaluated on (reversed and held-out splits).
        n_random: random ablations averaged.
        hooks: the hooks labelled and edited (default the head's readout, else every ``mlp.hook_post``).
        ablation: ``"mean"`` (default): set units to their mean over the labelling images, which
            removes what they say about an image but keeps the head's input where it was trained;
            ``"zero"``: set them to 0, which also shifts the head's input (after a GELU, 0 is not "off"
            on average), a bias that can cost accuracy whatever the units encode.
        alternatives: also ablate units whose runner-up labels match ``query`` (see :func:`audit`).
        config: labeling settings.
        cvit: ``load_concept_vit("spurious")`` if already loaded.
        seed: seeds the random ablations.

    Returns:
        An :class:`EditResult` (``result.table()`` prints it).

    Raises:
        InputError: ``ablation`` is neither ``"mean"`` nor ``"zero"``.
    """
    from interp.datasets.concepts import concept_images
    from interp.labeling.vision import image_probe
    from interp.labeling.vit import label_vit
    from interp.models.concept_vit import load_concept_vit

    if ablation not in ("mean", "zero"):
        raise InputError(f"ablation must be 'mean' or 'zero', got {ablation!r}.")
    cvit = cvit if cvit is not None else load_concept_vit("spurious")
    neutral = cvit.meta.get("neutral_fraction", 0.0)  # the training mix: red, blue and cue-free colours
    # labelled on images whose colour is independent of the class (strength 0.5), so a unit that tracks
    # colour is labelled with the colour and one that tracks the class with the class, not with either
    train = concept_images(n_images, seed, split="train", task="spurious", neutral_fraction=neutral,
                           spurious_strength=0.5)  # fmt: skip
    evals = {"reversed": concept_images(n_images, seed, split="reversed", task="spurious"),  # red and blue only
             "heldout": concept_images(n_images, seed, split="heldout", task="spurious",
                                       neutral_fraction=neutral)}  # fmt: skip
    cfg = cvit.model.cfg
    hooks = hooks or ([cvit.readout] if cvit.readout else [f"blocks.{i}.mlp.hook_post" for i in range(cfg.n_layers)])
    probe = image_probe(train, cfg.image_size, cfg.patch_size)
    labels = {h: label_vit(cvit.model, h, train, config, batch_size=100, probe=probe) for h in hooks}
    chosen = {h: [r["unit"] for r in audit(labels[h], query, alternatives=alternatives)] for h in hooks}
    with torch.no_grad():
        _, cache = cvit.model.run_with_cache(train.pixels(), names_filter=lambda name: name in hooks)
    acts = {h: cache[h] for h in hooks}  # [n, pos, d] per hook: the mean-ablation reference
    rows = _ablation_rows(cvit, evals, chosen, acts if ablation == "mean" else {}, acts, n_random, seed)
    return EditResult(rows, chosen, labels, ablation)


def _ablation_rows(cvit: Any, evals: dict[str, Any], chosen: dict[str, list[int]], ref: dict[str, torch.Tensor],
                   acts: dict[str, torch.Tensor], n_random: int, seed: int) -> list[dict[str, Any]]:  # fmt: skip
    """Accuracy rows of :func:`edit_spurious`: none, the ``chosen`` units, random and most active as many."""

    def row(method: str, units: dict[str, list[int]]) -> dict[str, Any]:
        edits = _ablate(units, ref)
        accs = {f"{k}_accuracy": _accuracy(cvit, v, edits) for k, v in evals.items()}
        return {"method": method, "units": sum(len(u) for u in units.values()), **accs}

    rows = [row("none", {}), row("labelled", chosen)]
    g = torch.Generator().manual_seed(seed)
    rand = [row("random", {h: torch.randperm(acts[h].shape[-1], generator=g)[: len(u)].tolist()
                           for h, u in chosen.items()}) for _ in range(n_random)]  # fmt: skip
    rows.append({"method": f"random (mean of {n_random})", "units": rows[1]["units"],
                 **{k: sum(r[k] for r in rand) / len(rand) for k in rand[0] if k.endswith("_accuracy")}})  # fmt: skip
    # the units that fire most on the labelling images (mean over patches, CLS excluded): needs no labels
    active = {h: acts[h][:, 1:].mean((0, 1)).topk(len(u)).indices.tolist() for h, u in chosen.items()}
    rows.append(row("most active", active))
    return rows


def _ablate(units: dict[str, list[int]], reference: dict[str, torch.Tensor]) -> list[Any]:
    """Ablation edits of ``units`` per hook: mean ablation where ``reference`` has the hook, else zero."""
    from interp.interventions import Ablate

    return [Ablate(h, units=u, method="mean", reference=reference[h]) if h in reference else Ablate(h, units=u)
            for h, u in units.items() if u]  # fmt: skip
