"""Result types of labeling, shared with reports and widgets (which import nothing else from labeling).

A :class:`LabelSet` is the whole output of a labeling run: one
:class:`UnitLabel` per unit and the settings that produced them. It
round-trips through JSON and flattens to CSV rows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp.errors import InputError

__all__ = ["Snippet", "ImageExemplar", "UnitLabel", "LabelSet", "CSV_COLUMNS"]


@dataclass
class Snippet:
    """A token window around one row.

    Attributes:
        tokens: token strings of the window.
        acts: the unit's activation at each token where known (``None``: below the kept top rows).
        active: whether each token is in the exemplar's mask.
        centre: index of the row the window is centred on.
        value: the activation at the centre.
        context: context index.
    """

    tokens: list[str]
    acts: list[float | None]
    active: list[bool]
    centre: int
    value: float | None
    context: int


@dataclass
class ImageExemplar:
    """One image exemplar: which image, its peak, and where the unit is active.

    Attributes:
        image: index of the image in the labelled set (its thumbnail is ``LabelSet.assets["thumbs"][str(image)]``).
        key: the image's dataset key.
        value: the unit's highest activation in the image.
        mask: the active patches (activation ≥ the unit's threshold), ``"0"``/``"1"`` per patch, row-major.
        acts: the activation map quantised to ``"0"``–``"9"`` per patch (relative to the unit's maximum).
        grid: patches per side.
    """

    image: int
    key: str
    value: float
    mask: str
    acts: str
    grid: int


@dataclass
class UnitLabel:
    """The label of one unit, how it was grounded, how it scores, and what to show.

    Attributes:
        unit: unit index in the layer (neuron, head or latent).
        label / key: the chosen description and its canonical key.
        pmi: ``log p(d|E) − λ log p(d)`` (``None`` / NaN for a unit that never fires);
            ``p_given_e`` / ``p``: its smoothed terms;
            ``count_e`` / ``n_e``: exemplar rows matched / exemplar rows.
        scores: held-out scores and baselines (:class:`interp.labeling.scoring.Scores` as a dict).
        alternatives: the next best candidates (``label, key, pmi, p_given_e, p, count_e, count``).
        exemplars / lower / inactive: top exemplars, lower-quantile and non-activating samples.
        histogram: ``{"counts": [...], "edges": [...]}`` of activations.
        output_top / output_bottom: most promoted / suppressed tokens (logit lens), if known.
        threshold / frac_positive / max: the active threshold, firing rate and maximum.
        images / images_lower / images_inactive: for image units, the top-k image exemplars with
            their masks, lower-quantile samples and non-activating samples (one marked patch each).
        description: a phrasing of ``label`` by a describer (:mod:`interp.labeling.describe`); it
            keeps the label's grounding and scores. ``""`` when none was asked for.
        synonyms: keys of candidates that hold on nearly the same rows as the label (Jaccard ≥ 0.9 on
            the grounding set; image labeling folds them in, see :func:`interp.labeling.pmi.distinct`).
        kind: the kind of the chosen description (``tok``, ``class``, ``colour``, ``concept``,
            ``composition``, …), for the per-layer analysis.
    """

    unit: int
    label: str
    key: str
    pmi: float | None
    p_given_e: float | None
    p: float | None
    count_e: int
    n_e: int
    scores: dict[str, Any] = field(default_factory=dict)
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    exemplars: list[Snippet] = field(default_factory=list)
    lower: list[Snippet] = field(default_factory=list)
    inactive: list[Snippet] = field(default_factory=list)
    histogram: dict[str, list[Any]] = field(default_factory=dict)
    output_top: list[str] = field(default_factory=list)
    output_bottom: list[str] = field(default_factory=list)
    threshold: float = 0.0
    frac_positive: float = 0.0
    max: float = 0.0
    images: list[ImageExemplar] = field(default_factory=list)
    images_lower: list[ImageExemplar] = field(default_factory=list)
    images_inactive: list[ImageExemplar] = field(default_factory=list)
    description: str = ""
    kind: str = ""
    synonyms: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """What to show: the describer's phrasing, else the label."""
        return self.description or self.label

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnitLabel:
        """Inverse of ``dataclasses.asdict``."""
        d = dict(d)
        for k in ("exemplars", "lower", "inactive"):
            d[k] = [Snippet(**s) for s in d.get(k, [])]
        for k in ("images", "images_lower", "images_inactive"):
            d[k] = [ImageExemplar(**s) for s in d.get(k, [])]
        for k in ("threshold", "frac_positive", "max"):  # JSON writes NaN as null
            if k in d and d[k] is None:
                d[k] = math.nan
        return cls(**d)


#: Columns of the CSV and Parquet exports: MILAN's ``layer, unit, description, score`` first (``score``
#: is the held-out detection AUROC), then the label, its grounding and every score with its baselines.
CSV_COLUMNS = ("layer", "unit", "description", "score", "label", "key", "kind", "pmi", "p_given_e", "p", "count_e",
               "n_e", "auroc", "balanced_accuracy", "correlation", "constant_auroc", "shuffled_auroc",
               "shuffled_balanced_accuracy", "shuffled_correlation", "threshold", "frac_positive", "max",
               "output_top")  # fmt: skip


@dataclass
class LabelSet:
    """Labels of the units of one layer.

    Attributes:
        units: one entry per labelled unit.
        meta: settings and provenance (hook, SAE, λ, k, quantile, estimator, store path, …).
        assets: shared display data: ``{"thumbs": {image index: PNG data URI}}`` for image units.
    """

    units: list[UnitLabel]
    meta: dict[str, Any] = field(default_factory=dict)
    assets: dict[str, Any] = field(default_factory=dict)

    @property
    def layer(self) -> str:
        """The labelled layer's name (its hook, with ``/sae`` for SAE latents)."""
        hook = str(self.meta.get("hook") or self.meta.get("layer") or "")
        return f"{hook}/sae" if self.meta.get("sae") and hook else hook

    def to_json(self) -> str:
        """JSON text (NaN written as null)."""
        d = {"meta": _nan_to_none(self.meta), "units": [_unit_dict(u) for u in self.units], "assets": self.assets}
        return json.dumps(d, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LabelSet:
        """Parse :meth:`to_json` output."""
        d = json.loads(text)
        return cls([UnitLabel.from_dict(u) for u in d["units"]], d.get("meta", {}), d.get("assets", {}))

    @classmethod
    def load(cls, path: Path | str) -> LabelSet:
        """Read ``labels.json`` (or the ``labels.json`` inside a directory)."""
        p = Path(path)
        p = p / "labels.json" if p.is_dir() else p
        if not p.is_file():
            raise InputError(f"no labels at {p}. Run `interp label ... --out DIR` first; it writes DIR/labels.json.")
        return cls.from_json(p.read_text())

    def csv_rows(self) -> list[list[Any]]:
        """Header plus one row per unit, columns :data:`CSV_COLUMNS`."""
        rows: list[list[Any]] = [list(CSV_COLUMNS)]
        for u in self.units:
            rows.append([self._flat(u).get(c, "") for c in CSV_COLUMNS])
        return rows

    def _flat(self, u: UnitLabel) -> dict[str, Any]:
        """The summary fields of one unit (no exemplars)."""
        base = {f: getattr(u, f) for f in ("unit", "label", "key", "kind", "pmi", "p_given_e", "p", "count_e", "n_e",
                                           "threshold", "frac_positive", "max")}  # fmt: skip
        return (
            base
            | u.scores
            | {
                "layer": self.layer,
                "description": u.text,
                "score": u.scores.get("auroc"),
                "output_top": " ".join(u.output_top),
            }
        )

    def table(self) -> Any:
        """The summary as a ``pyarrow.Table`` (columns :data:`CSV_COLUMNS`; missing scores are null)."""
        import pyarrow as pa

        cols: dict[str, list[Any]] = {c: [] for c in CSV_COLUMNS}
        for u in self.units:
            flat = _nan_to_none(self._flat(u))
            for c in CSV_COLUMNS:
                cols[c].append(flat.get(c))
        text = ("layer", "description", "label", "key", "kind", "output_top")
        return pa.table(
            {
                c: pa.array(
                    v,
                    type=pa.string() if c in text else pa.int64() if c in ("unit", "count_e", "n_e") else pa.float64(),
                )
                for c, v in cols.items()
            }
        )


def _num(x: Any) -> Any:
    """A float with NaN / inf as ``None``; anything else unchanged."""
    return None if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))) else x


def _unit_dict(u: UnitLabel) -> dict[str, Any]:
    """``asdict(u)`` with NaN as ``None``, without deep copies (a report may hold millions of tokens)."""
    d = dict(u.__dict__)
    for k in ("pmi", "p_given_e", "p", "threshold", "frac_positive", "max"):
        d[k] = _num(d[k])
    d["scores"] = {k: _num(v) for k, v in u.scores.items()}
    d["alternatives"] = [{k: _num(v) for k, v in a.items()} for a in u.alternatives]
    d["histogram"] = {k: [_num(v) for v in vals] for k, vals in u.histogram.items()}
    for k in ("exemplars", "lower", "inactive"):
        d[k] = [dict(s.__dict__, acts=[_num(a) for a in s.acts], value=_num(s.value)) for s in getattr(u, k)]
    for k in ("images", "images_lower", "images_inactive"):
        d[k] = [dict(e.__dict__, value=_num(e.value)) for e in getattr(u, k)]
    return d


def _nan_to_none(x: Any) -> Any:
    """Replace float NaN / inf by ``None`` recursively (strict JSON)."""
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x
