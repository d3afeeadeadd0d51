"""What labels are for: analysing layers, auditing units, and editing a model through its labels.

* :func:`analysis`: which kinds of description (token, lexical class,
  position, output token, colour, concept, composition, …) label the units of
  each layer: a table and a plotly bar chart.
* :func:`audit`: the units whose labels match a query (``"face"``, ``"red"``),
  with their held-out scores, best first.
* :func:`edit_spurious`: label the units of the spurious concept ViT (trained
  where colour predicts the class), ablate the units whose labels name the
  confounded colours, and measure accuracy on the reversed split (where the
  colour points the wrong way) against ablating as many random units and as
  many of the most active units. Edits go through :mod:`interp.interventions`.
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
    """Accuracy on the reversed split after each ablation.

    Attributes:
        rows: ``[{"method", "units", "accuracy"}]``: none, labelled (units whose labels match the
            query), random (mean over seeds, same count per layer), most active (same count per layer).
        ablated: ``{hook: [unit, ...]}`` chosen by their labels.
        labels: the labels of every hook.
    """

    rows: list[dict[str, Any]]
    ablated: dict[str, list[int]]
    labels: dict[str, LabelSet]

    def table(self) -> str:
        """Plain-text table."""
        lines = [f"{'ablation':<22} {'units':>6} {'reversed acc.':>14}"]
        lines += [f"{r['method']:<22} {r['units']:>6} {r['accuracy']:>14.3f}" for r in self.rows]
        return "\n".join(lines)


def _accuracy(cvit: Any, data: Any, edits: list[Any]) -> float:
    """Class accuracy of the concept ViT's head on ``data`` under ``edits``."""
    from interp.interventions import intervene

    with torch.no_grad(), intervene(cvit.model, edits):
        pred = cvit.logits(data.pixels()).argmax(-1)
    return float((pred == torch.from_numpy(data.labels)).float().mean())


def edit_spurious(query: str = r"^(concept:)?colour:(red|blue)$", *, n_images: int = 400, n_random: int = 5,
                  hooks: list[str] | None = None, config: LabelConfig | None = None, cvit: Any = None,
                  seed: int = 0) -> EditResult:  # fmt: skip
    """Ablate the spurious concept ViT's units whose labels match ``query``; compare with baselines.

    Args:
        query: regular expression on label keys and texts naming the spurious feature (default: labels
            that are exactly a red or blue colour, measured from pixels or from the concept masks).
        n_images: images labelled with (train split) and evaluated on (reversed split).
        n_random: random ablations averaged.
        hooks: the MLP hooks labelled and edited (default every block's ``mlp.hook_post``).
        config: labeling settings.
        cvit: ``load_concept_vit("spurious")`` if already loaded.
        seed: seeds the random ablations.

    Returns:
        An :class:`EditResult` (``result.table()`` prints it).
    """
    from interp.datasets.concepts import concept_images
    from interp.labeling.vision import image_probe
    from interp.labeling.vit import label_vit, vit_unit_batches
    from interp.models.concept_vit import load_concept_vit

    cvit = cvit if cvit is not None else load_concept_vit("spurious")
    train = concept_images(n_images, split="train", task="spurious")
    reversed_ = concept_images(n_images, split="reversed", task="spurious")
    hooks = hooks or [f"blocks.{i}.mlp.hook_post" for i in range(cvit.model.cfg.n_layers)]
    probe = image_probe(train, cvit.model.cfg.image_size, cvit.model.cfg.patch_size)
    labels = {h: label_vit(cvit.model, h, train, config, batch_size=100, probe=probe) for h in hooks}
    chosen = {h: [r["unit"] for r in audit(labels[h], query, alternatives=False)] for h in hooks}
    n = sum(len(v) for v in chosen.values())
    rows = [{"method": "none", "units": 0, "accuracy": _accuracy(cvit, reversed_, [])},
            {"method": "labelled", "units": n, "accuracy": _accuracy(cvit, reversed_, _ablate(chosen))}]
    g = torch.Generator().manual_seed(seed)
    d_mlp = cvit.model.cfg.d_mlp
    rand = [_accuracy(cvit, reversed_, _ablate({h: torch.randperm(d_mlp, generator=g)[:len(u)].tolist()
                                               for h, u in chosen.items()})) for _ in range(n_random)]  # fmt: skip
    rows.append({"method": f"random (mean of {n_random})", "units": n, "accuracy": sum(rand) / len(rand)})
    active = {}
    for h, u in chosen.items():
        acts = torch.cat(list(vit_unit_batches(cvit.model, h, list(train.images), batch_size=100)))  # [n, P, d]
        active[h] = acts.mean((0, 1)).topk(len(u)).indices.tolist() if u else []
    rows.append({"method": "most active", "units": n, "accuracy": _accuracy(cvit, reversed_, _ablate(active))})
    return EditResult(rows, chosen, labels)


def _ablate(units: dict[str, list[int]]) -> list[Any]:
    """Zero-ablation edits of ``units`` per hook."""
    from interp.interventions import Ablate

    return [Ablate(h, units=u) for h, u in units.items() if u]
