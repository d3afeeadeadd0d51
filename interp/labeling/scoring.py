"""Scores of a label on held-out data, each beside its chance baselines.

A label is a predicate (:class:`~interp.labeling.candidates.Candidate`); it is
scored on rows that grounding never saw (held-out documents). The scorer is
the predicate itself evaluated on new tokens, not the procedure that proposed
or ranked it, so a label cannot score well by having memorised its exemplars.

For held-out rows with activation ``a`` and label match ``m`` (0/1), and
``fires = a ≥ threshold and a > 0``:

* **detection AUROC**: the probability that a random matching row has a higher
  activation than a random non-matching one (ties count half); 0.5 is chance;
* **balanced accuracy** of ``m`` as a prediction of ``fires``: the mean of the
  true-positive and true-negative rates;
* **correlation**: Pearson's r between ``m`` and ``a``.

Baselines: the *constant* label (matches every row: AUROC and balanced
accuracy 0.5, r = 0) and the *shuffled* label (``m`` permuted over the rows
with a fixed seed: same match rate, no relation to the unit).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

__all__ = ["Scores", "score_label", "auroc", "balanced_accuracy", "correlation"]


@dataclass(frozen=True)
class Scores:
    """Scores of one label and its baselines (NaN where undefined).

    Attributes:
        auroc / balanced_accuracy / correlation: the label's scores.
        constant_*: the constant-label baseline.
        shuffled_*: the shuffled-label baseline.
        n: held-out rows scored; ``n_match``: rows the label matches; ``n_fire``: rows where the unit fires.
    """

    auroc: float
    balanced_accuracy: float
    correlation: float
    constant_auroc: float
    constant_balanced_accuracy: float
    constant_correlation: float
    shuffled_auroc: float
    shuffled_balanced_accuracy: float
    shuffled_correlation: float
    n: int
    n_match: int
    n_fire: int

    def to_dict(self) -> dict[str, float | int]:
        """Plain dict (JSON)."""
        return asdict(self)


def auroc(match: Bool[Tensor, " n"], acts: Float[Tensor, " n"]) -> float:
    """P(activation of a matching row > that of a non-matching row), ties half (Mann–Whitney U)."""
    n1, n0 = int(match.sum()), int((~match).sum())
    if n1 == 0 or n0 == 0:
        return 0.5  # the label does not split the rows: no better than chance
    sorted_a, order = acts.double().sort()  # [n]
    _, inverse, counts = torch.unique_consecutive(sorted_a, return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts + 1  # [n_unique]: rank of each value's first row
    ranks = torch.empty_like(sorted_a)
    ranks[order] = (first.double() + (counts.double() - 1) / 2)[inverse]  # tied rows share their mean rank
    u = float(ranks[match].sum()) - n1 * (n1 + 1) / 2
    return u / (n1 * n0)


def balanced_accuracy(match: Bool[Tensor, " n"], fires: Bool[Tensor, " n"]) -> float:
    """Mean of the true-positive and true-negative rates of ``match`` predicting ``fires``."""
    pos, neg = int(fires.sum()), int((~fires).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    tpr = int((match & fires).sum()) / pos
    tnr = int((~match & ~fires).sum()) / neg
    return (tpr + tnr) / 2


def correlation(match: Bool[Tensor, " n"], acts: Float[Tensor, " n"]) -> float:
    """Pearson's r between the match indicator and the activation (0 when either is constant)."""
    x, y = match.double(), acts.double()
    x, y = x - x.mean(), y - y.mean()
    den = float(x.norm() * y.norm())
    return float((x * y).sum()) / den if den > 0 else 0.0


def score_label(
    match: Bool[Tensor, " n"], acts: Float[Tensor, " n"], threshold: float, seed: int = 0, floor: float | None = None
) -> Scores:
    """Score a label's held-out matches against the unit's held-out activations (see the module docstring).

    Args:
        match: where the label holds on the held-out rows.
        acts: the unit's activations there.
        threshold: the unit's active threshold.
        seed: seeds the shuffled baseline.
        floor: activations below it are tied at it before scoring (ViT labeling passes 0: the
            small negative tail of GELU orders inactive patches by noise, which is not detection).
    """
    fires = (acts >= threshold) & (acts > 0)
    acts = acts if floor is None else acts.clamp(min=floor)
    g = torch.Generator().manual_seed(seed)
    shuffled = match[torch.randperm(len(match), generator=g)]
    const = torch.ones_like(match)
    return Scores(
        auroc=auroc(match, acts), balanced_accuracy=balanced_accuracy(match, fires),
        correlation=correlation(match, acts),
        constant_auroc=auroc(const, acts), constant_balanced_accuracy=balanced_accuracy(const, fires),
        constant_correlation=correlation(const, acts),
        shuffled_auroc=auroc(shuffled, acts), shuffled_balanced_accuracy=balanced_accuracy(shuffled, fires),
        shuffled_correlation=correlation(shuffled, acts),
        n=len(match), n_match=int(match.sum()), n_fire=int(fires.sum()))  # fmt: skip
