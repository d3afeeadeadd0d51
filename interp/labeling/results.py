"""Result types of labeling, shared with reports and widgets (which import nothing else from labeling).

A :class:`LabelSet` is the whole output of a labeling run: one
:class:`UnitLabel` per unit and the settings that produced them. It
round-trips through JSON and flattens to CSV rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from interp.errors import InputError

__all__ = ["Snippet", "UnitLabel", "LabelSet", "CSV_COLUMNS"]


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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnitLabel:
        """Inverse of ``dataclasses.asdict``."""
        d = dict(d)
        for k in ("exemplars", "lower", "inactive"):
            d[k] = [Snippet(**s) for s in d.get(k, [])]
        return cls(**d)


#: Columns of the CSV export.
CSV_COLUMNS = ("unit", "label", "key", "pmi", "p_given_e", "p", "count_e", "n_e", "auroc", "balanced_accuracy",
               "correlation", "constant_auroc", "shuffled_auroc", "shuffled_balanced_accuracy",
               "shuffled_correlation", "threshold", "frac_positive", "max", "output_top")  # fmt: skip


@dataclass
class LabelSet:
    """Labels of the units of one layer.

    Attributes:
        units: one entry per labelled unit.
        meta: settings and provenance (hook, SAE, λ, k, quantile, estimator, store path, …).
    """

    units: list[UnitLabel]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """JSON text (NaN written as null)."""
        return json.dumps(_nan_to_none({"meta": self.meta, "units": [asdict(u) for u in self.units]}), indent=1)

    @classmethod
    def from_json(cls, text: str) -> LabelSet:
        """Parse :meth:`to_json` output."""
        d = json.loads(text)
        return cls([UnitLabel.from_dict(u) for u in d["units"]], d.get("meta", {}))

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
            flat = asdict(u) | u.scores | {"output_top": " ".join(u.output_top)}
            rows.append([flat.get(c, "") for c in CSV_COLUMNS])
        return rows


def _nan_to_none(x: Any) -> Any:
    """Replace float NaN / inf by ``None`` recursively (strict JSON)."""
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x
