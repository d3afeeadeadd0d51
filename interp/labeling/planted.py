"""Planted text units: activations with a known rule, and a harness that checks the labels.

Real text (a packaged corpus, split into words and punctuation by a tiny
word-level tokenizer that keeps case) is the probe set; each planted unit fires
by a rule that is itself a :class:`~interp.labeling.candidates.Candidate`, so
its true label is that candidate's key. The kinds:

==============  =================================================
``token``       one token
``class``       a lexical class (capitalised, digits, punctuation)
``position``    a position bucket
``and``         two atoms at once (bigram, class at late position)
``or``          either of two atoms, equal strength
``polysemantic`` two unrelated concepts at different strengths
``noisy``       one token plus 1% random firing anywhere
==============  =================================================

Activations are ``strength · (1 + 0.1 ε)`` where the rule holds plus
``relu(0.02 ε)`` background. :func:`evaluate` reports top-1 / top-3 accuracy
(is the true key the chosen label / among the first three ranked candidates?)
and the held-out AUROC of each chosen label.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from interp.labeling.candidates import Candidate, atom, combine
from interp.labeling.probe import ProbeSet, probe_from_contexts
from interp.labeling.results import LabelSet

__all__ = ["PlantedUnit", "PlantedReport", "word_probe", "planted_units", "planted_activations", "evaluate"]

_WORD = re.compile(r"[A-Za-z]+|\d+|[^\w\s]")


def word_probe(corpus: str = "fortunes", n_tokens: int = 64_000, context: int = 64) -> ProbeSet:
    """A probe set of ``n_tokens`` words / punctuation marks of a packaged corpus, in contexts of ``context``."""
    from interp.datasets.text import load_texts

    words: list[str] = []
    for doc in load_texts(corpus, "all").docs:
        words += _WORD.findall(doc)
        if len(words) >= n_tokens:
            break
    words = words[: (min(n_tokens, len(words)) // context) * context]
    vocab = [w for w, _ in Counter(words).most_common()]
    index = {w: i for i, w in enumerate(vocab)}
    ids = torch.tensor([index[w] for w in words]).reshape(-1, context)  # [n_ctx, ctx]
    return probe_from_contexts(ids, vocab)


@dataclass(frozen=True)
class PlantedUnit:
    """A unit with a known rule.

    Attributes:
        name: short name (``token-1``, ``and-bigram``, …).
        kind: one of the kinds in the module docstring.
        truth: the candidate the unit encodes (its key is the true label).
        parts: ``(candidate, strength)`` terms of the activation.
        noise_rate: fraction of rows that fire at random (``noisy`` units).
    """

    name: str
    kind: str
    truth: Candidate
    parts: tuple[tuple[Candidate, float], ...]
    noise_rate: float = 0.0


def _words(probe: ProbeSet, lo: float, hi: float, n: int, skip: int = 0) -> list[int]:
    """Ids of ``n`` lower-case word tokens with frequency in ``[lo, hi)`` (most frequent first)."""
    freq = torch.bincount(probe.token, minlength=len(probe.vocab)).float() / len(probe)
    ok = [i for i, w in enumerate(probe.vocab) if w.isalpha() and w.islower() and lo <= float(freq[i]) < hi]
    return ok[skip:skip + n]


def _bigram(probe: ProbeSet) -> tuple[int, int]:
    """The most frequent (previous, token) pair of two lower-case words."""
    pairs = Counter(zip(probe.prev.tolist(), probe.token.tolist(), strict=True))
    for (a, b), _ in pairs.most_common():
        if a >= 0 and probe.vocab[a].isalpha() and probe.vocab[a].islower() and probe.vocab[b].isalpha() and a != b:
            return a, b
    raise ValueError("no bigram of two words in the probe set")


def planted_units(probe: ProbeSet) -> list[PlantedUnit]:
    """Sixteen planted units of every kind, with tokens chosen from the probe set's frequencies."""
    v = probe.vocab
    t = [atom("tok", i, v) for i in _words(probe, 0.0008, 0.004, 9)]
    cls = {c: atom("class", c) for c in ("capitalised", "digits", "punctuation")}
    a, b = _bigram(probe)
    single = [(x, 1.0) for x in (t[0], t[1], t[2])]
    units = [PlantedUnit(f"token-{i}", "token", c, ((c, 1.0),)) for i, (c, _) in enumerate(single)]
    units += [PlantedUnit(f"class-{n}", "class", c, ((c, 1.0),)) for n, c in cls.items()]
    units += [PlantedUnit(f"position-{n}", "position", atom("pos", n), ((atom("pos", n), 1.0),))
              for n in ("pos<=0", "pos<=3")]
    for name, x, y in (("and-bigram", atom("prev", a, v), atom("tok", b, v)),
                       ("and-late-punct", cls["punctuation"], atom("pos", "pos>=32"))):
        truth = combine("and", x, y)
        units.append(PlantedUnit(name, "and", truth, ((truth, 1.0),)))
    for name, x, y in (("or-tokens", t[3], t[4]), ("or-digit-token", cls["digits"], t[5])):
        units.append(PlantedUnit(name, "or", combine("or", x, y), ((x, 1.0), (y, 1.0))))
    for name, x, y in (("poly-tokens", t[6], t[7]), ("poly-token-start", t[8], atom("pos", "pos<=0"))):
        units.append(PlantedUnit(name, "polysemantic", combine("or", x, y), ((x, 1.0), (y, 0.8))))
    for i, c in enumerate((t[1], t[2])):
        units.append(PlantedUnit(f"noisy-{i}", "noisy", c, ((c, 1.0),), noise_rate=0.01))
    return units


def planted_activations(probe: ProbeSet | Any, units: list[PlantedUnit], seed: int = 0) -> Float[Tensor, "n u"]:
    """Activations ``[n_rows, n_units]`` of the planted units on ``probe`` (see the module docstring).

    ``probe`` is any probe the candidates ground in: a text :class:`ProbeSet`, or an image
    probe (rows are patches; :func:`interp.labeling.groundtruth.planted_image_activations`).
    """
    g = torch.Generator().manual_seed(seed)
    n = len(probe)
    out = torch.empty(n, len(units))
    for j, unit in enumerate(units):
        act = torch.zeros(n)
        for cand, strength in unit.parts:
            act = torch.maximum(act, cand.holds(probe).float() * strength)
        act = act * (1 + 0.1 * torch.randn(n, generator=g)) + (0.02 * torch.randn(n, generator=g)).clamp(min=0)
        if unit.noise_rate:
            hit = torch.rand(n, generator=g) < unit.noise_rate
            act = torch.where(hit, torch.maximum(act, 0.2 + 0.7 * torch.rand(n, generator=g)), act)
        out[:, j] = act
    return out


@dataclass
class PlantedReport:
    """Accuracy of labels against planted truth.

    Attributes:
        top1 / top3: fraction of units whose true key is the label / among the first three candidates
            (or a synonym of one of them: see :attr:`UnitLabel.synonyms`).
        auroc_mean / auroc_min: held-out AUROC of the chosen labels of the units labelled correctly (top-1).
        truth_auroc_min: lowest held-out AUROC of the *true* label where it was chosen or not.
        rows: per unit ``(name, kind, true label, chosen label, rank of truth or None, auroc)``.
    """

    top1: float
    top3: float
    auroc_mean: float
    auroc_min: float
    rows: list[tuple[str, str, str, str, int | None, float]]

    def table(self) -> str:
        """A plain-text table of the rows and the totals."""
        lines = [f"{'unit':<18} {'kind':<13} {'rank':>4} {'auroc':>6}  label  [truth]"]
        for name, kind, truth, label, r, auc in self.rows:
            lines.append(f"{name:<18} {kind:<13} {r if r is not None else '-':>4} {auc:>6.3f}  {label}  [{truth}]")
        lines.append(f"top-1 {self.top1:.0%}  top-3 {self.top3:.0%}  AUROC mean {self.auroc_mean:.3f} "
                     f"min {self.auroc_min:.3f}")
        return "\n".join(lines)


def evaluate(labels: LabelSet, units: list[PlantedUnit]) -> PlantedReport:
    """Compare ``labels`` (units in the order of ``units``) with the planted truth."""
    rows = []
    for unit, lab in zip(units, labels.units, strict=True):
        # a candidate's synonyms (same rows, other words; image labeling) count as that candidate
        keys = [{lab.key, *lab.synonyms}] + [{a["key"], *a.get("synonyms", [])} for a in lab.alternatives]
        r = next((i + 1 for i, k in enumerate(keys) if unit.truth.key in k), None)
        auc = float(lab.scores.get("auroc", float("nan")))
        rows.append((unit.name, unit.kind, unit.truth.label, lab.label, r, auc))
    n = len(rows)
    aucs = [row[5] for row in rows if row[4] == 1]
    return PlantedReport(top1=sum(r[4] == 1 for r in rows) / n,
                         top3=sum(r[4] is not None and r[4] <= 3 for r in rows) / n,
                         auroc_mean=sum(aucs) / len(aucs) if aucs else float("nan"),
                         auroc_min=min(aucs) if aucs else float("nan"), rows=rows)
