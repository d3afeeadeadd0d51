"""PMI search: pick the description that is most specific to a unit's exemplars.

MILAN (Hernandez et al., 2022) labels a unit with the description ``d`` that
maximises ``log p(d | E) − λ log p(d)``: ``p(d | E)`` rewards descriptions
that fit the exemplars ``E``, ``−λ log p(d)`` rewards descriptions that are
rare in general, so that "a token" never beats "the token 'God'". MILAN
estimates both terms with a captioning model and a language model; here every
candidate is a predicate over tokens, so both are counted.

The estimator
-------------
``E`` is the set of *exemplar rows*: the active positions (activation at or
above the unit's 0.99 quantile, and above zero) of the unit's top-k contexts.
With ``c_E(d)`` the number of exemplar rows where ``d`` holds, ``n_E = |E|``,
``c(d)`` the rows of the whole grounding probe set where ``d`` holds and ``N``
its size, and additive (Jeffreys, ``α = 0.5``) smoothing::

    p(d | E) = (c_E(d) + α) / (n_E + 2α)
    p(d)     = (c(d) + α) / (N + 2α)
    score(d) = log p(d | E) − λ log p(d)          λ = 0.2 by default (MILAN's released value)

``λ = 0`` ranks by fit alone (frequent, vague descriptions tie with specific
ones and win on smoothing); ``λ = 1`` is plain PMI (rare flukes win).
Smoothing keeps the score finite and stops a description seen in one
exemplar row of a tiny ``E`` from scoring as a certainty.

Compositions must earn their place: ``A and B`` is kept only when ``B`` removes
at least ``margin`` of ``A``'s probe rows and vice versa; ``A or B`` only when
each part adds at least ``margin`` of exemplar coverage; ``A and not B`` only
when ``B`` removes at least ``margin`` of ``A``'s probe rows. Otherwise a
composition that changes nothing (``token 'the' and lowercase``) would win by
a sliver. Ties go to the description with fewer atoms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from jaxtyping import Int
from torch import Tensor

from interp.errors import InputError
from interp.labeling.candidates import Candidate, compose, count_columns, lexical_table
from interp.labeling.probe import ProbeSet

__all__ = ["DEFAULT_LAMBDA", "Grounded", "Grounder", "pmi_score", "rank", "distinct"]

#: MILAN's released value of λ.
DEFAULT_LAMBDA = 0.2
#: Additive smoothing of both probabilities.
ALPHA = 0.5


def pmi_score(p_given_e: float, p: float, lam: float = DEFAULT_LAMBDA) -> float:
    """``log p(d | E) − λ log p(d)``."""
    return math.log(p_given_e) - lam * math.log(p)


@dataclass(frozen=True)
class Grounded:
    """A candidate with its grounding in the exemplars and the probe set.

    Attributes:
        candidate: the description.
        count_e: exemplar rows where it holds (``c_E``).
        n_e: exemplar rows (``n_E``).
        count: probe-set rows where it holds (``c``).
        n: probe-set rows (``N``).
        p_given_e: smoothed ``p(d | E)``.
        p: smoothed ``p(d)``.
        score: ``log p(d | E) − λ log p(d)``.
    """

    candidate: Candidate
    count_e: int
    n_e: int
    count: int
    n: int
    p_given_e: float
    p: float
    score: float

    @property
    def lift(self) -> float:
        """``p(d | E) / p(d)``."""
        return self.p_given_e / self.p


class Grounder:
    """Counts candidates over one grounding probe set, caching ``c(d)`` by key.

    Args:
        probe: the whole probe set (text :class:`ProbeSet` or image
            :class:`~interp.labeling.vision.ImageProbe`); exemplar rows index into it.
        rows: the grounding rows ``c(d)`` is counted over (default all); never the
            held-out rows used for scoring.
    """

    def __init__(self, probe: Any, rows: Int[Tensor, " n_ground"] | None = None):
        self.full = probe
        self.probe = probe if rows is None else probe.subset(rows)
        text = isinstance(probe, ProbeSet)  # image probes answer every atom from their own table
        self.table = lexical_table(probe.vocab) if text else None
        self.base = count_columns(self.probe) if text else {}
        self._counts: dict[str, int] = {}

    def count(self, cand: Candidate) -> int:
        """Rows of the probe set where ``cand`` holds (counts of atoms come from bincounts)."""
        if cand.key in self._counts:
            return self._counts[cand.key]
        if cand.op == "atom" and cand.kind in self.base:
            c = int(self.base[cand.kind][int(cand.arg)])
        else:
            c = int(cand.holds(self.probe, self.table).sum())
        self._counts[cand.key] = c
        return c

    def ground(self, cands: list[Candidate], rows: Int[Tensor, " m"], lam: float) -> list[Grounded]:
        """Ground every candidate in the exemplar rows ``rows`` (see the module docstring)."""
        sub = self.full.subset(rows)
        n_e, n = len(rows), len(self.probe)
        out = []
        for c in cands:
            c_e = int(c.holds(sub, self.table).sum())
            c_all = max(self.count(c), c_e)
            p_e = (c_e + ALPHA) / (n_e + 2 * ALPHA)
            p = (c_all + ALPHA) / (n + 2 * ALPHA)
            out.append(Grounded(c, c_e, n_e, c_all, n, p_e, p, pmi_score(p_e, p, lam)))
        return out


def _earns_place(g: Grounded, parts: dict[str, Grounded], margin: float) -> bool:
    """Whether a composition beats its parts by ``margin`` (rules in the module docstring)."""
    a, b = (parts.get(p.key) for p in g.candidate.parts)
    if a is None or b is None:
        return False
    op = g.candidate.op
    if op == "and":
        return g.count <= (1 - margin) * min(a.count, b.count)
    if op == "or":
        return min(g.count_e - a.count_e, g.count_e - b.count_e) >= margin * g.n_e
    return g.count <= (1 - margin) * a.count  # andnot


def rank(grounder: Grounder, atoms: list[Candidate], rows: Int[Tensor, " m"], *, lam: float = DEFAULT_LAMBDA,
         n_compose: int = 5, margin: float = 0.1) -> list[Grounded]:
    """All atoms and the compositions that earn their place, best first.

    Args:
        grounder: counts over the grounding probe set.
        atoms: candidate atoms (:func:`interp.labeling.candidates.propose_atoms`).
        rows: the unit's exemplar rows ``[m]``.
        lam: λ, the weight of ``−log p(d)``.
        n_compose: the best this many atoms are composed pairwise.
        margin: the least improvement a composition must bring over its parts.
    """
    if not 0 <= lam <= 1:
        raise InputError(f"lambda must lie in [0, 1] (MILAN uses 0.2), got {lam}.")
    if len(rows) == 0:
        raise InputError("the unit has no exemplar rows: it never fires above its threshold on the probe set.")
    grounded = grounder.ground(atoms, rows, lam)
    by_key = {g.candidate.key: g for g in grounded}
    best = sorted(grounded, key=_order)[:n_compose]
    comps = [g for g in grounder.ground(compose([g.candidate for g in best]), rows, lam)
             if g.candidate.key not in by_key and _earns_place(g, by_key, margin)]
    return sorted(grounded + comps, key=_order)


def _order(g: Grounded) -> tuple[float, int, str]:
    """Best score first; fewer atoms, then key, break ties (rounded so float noise is a tie)."""
    return (-round(g.score, 9), g.candidate.n_atoms, g.candidate.key)


def distinct(grounder: Grounder, ranked: list[Grounded], n: int,
             max_overlap: float = 0.9) -> list[tuple[Grounded, list[str]]]:  # fmt: skip
    """The first ``n`` of ``ranked`` with near-synonyms folded into the better candidate.

    A candidate whose rows on the grounding probe set overlap a better one's with
    Jaccard index ≥ ``max_overlap`` says the same thing in other words (``red
    pixels`` and the ``red`` concept mask, ``A or B`` and ``A or B'`` for
    near-equal ``B``, ``B'``); it is listed as a synonym of the better one instead
    of crowding the runner-up list.

    Returns:
        ``(candidate, keys of its synonyms)`` pairs, best first.
    """
    kept: list[tuple[Grounded, Any, list[str]]] = []
    for i, g in enumerate(ranked):
        if len(kept) == n and i >= 4 * n:  # synonyms sit near what they repeat
            break
        rows = g.candidate.holds(grounder.probe, grounder.table)
        same = next((k for k in kept if float((rows & k[1]).sum()) >= max_overlap * float((rows | k[1]).sum())), None)
        if same is not None:
            same[2].append(g.candidate.key)
        elif len(kept) < n:
            kept.append((g, rows, []))
    return [(g, syn) for g, _, syn in kept]
