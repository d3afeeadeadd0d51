"""Candidate descriptions for text units, each a predicate that can be checked on any token.

A candidate is a :class:`Candidate`: an atom or a composition of two. Atoms:

===========  ==========================================  ==================
kind         holds at a row when                         example label
===========  ==========================================  ==================
``tok``      the row's token is ``arg``                  ``token "the"``
``prev``     the previous token is ``arg`` (bigram)      ``after "of"``
``next``     the next token is ``arg`` (output side)     ``before "("``
``class``    the token is in lexical class ``arg``       ``capitalised``
``pos``      the context position satisfies ``arg``      ``position <= 3``
===========  ==========================================  ==================

Compositions are ``A and B``, ``A or B`` and ``A and not B`` of the best atoms
(see :func:`compose`). Because every candidate *is* its grounding function,
the same object grounds a label in the exemplars (:mod:`interp.labeling.pmi`)
and scores it on held-out data (:mod:`interp.labeling.scoring`).

Atoms are proposed offline from the exemplars (:func:`propose_atoms`): tokens,
previous tokens and next tokens over-represented at active positions (with
count and lift), the output-side tokens of the unit (logit lens, from
:mod:`interp.labeling.vocab`), every lexical class and every position bucket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from interp.labeling.probe import ProbeSet

__all__ = [
    "Candidate",
    "LEXICAL_CLASSES",
    "POSITION_ATOMS",
    "IMAGE_KINDS",
    "atom",
    "lexical_table",
    "propose_atoms",
    "compose",
]

#: Lexical classes: name -> test on the token's display string (leading space / ``##`` stripped).
LEXICAL_CLASSES: dict[str, str] = {
    "capitalised": "starts with an upper-case letter",
    "lowercase": "a lower-case word",
    "digits": "contains a digit",
    "punctuation": "only punctuation",
    "whitespace": "only whitespace",
    "continuation": "continues a word (no leading space, or ##)",
}
#: Position buckets: (name, operator, bound).
POSITION_ATOMS: tuple[tuple[str, str, int], ...] = (
    ("pos<=0", "<=", 0), ("pos<=1", "<=", 1), ("pos<=3", "<=", 3), ("pos<=7", "<=", 7),
    ("pos>=16", ">=", 16), ("pos>=32", ">=", 32), ("pos>=64", ">=", 64),
)  # fmt: skip
_OPS = {"and": "and", "or": "or", "andnot": "and not"}
#: Atom kinds of image patches (:mod:`interp.labeling.vision`): their truth is a column of the probe's table.
IMAGE_KINDS = ("colour", "where", "size", "texture", "label", "concept")
#: Kinds whose atoms never hold together on one row (one token per row; one dataset label per image).
_EXCLUSIVE_KINDS = ("tok", "prev", "next", "label")


@dataclass(frozen=True)
class Candidate:
    """A description and its grounding function.

    Attributes:
        key: canonical identity (``tok:17``, ``class:digits``, ``and(pos<=3,tok:5)``); two
            candidates with the same key hold on the same rows.
        label: human-readable text.
        op: ``atom``, ``and``, ``or`` or ``andnot``.
        kind: atom kind (``tok``, ``prev``, ``next``, ``class``, ``pos``, or an image kind of
            :data:`IMAGE_KINDS`); ``""`` for compositions.
        arg: atom argument (token id, class name or position bucket name).
        parts: the two operands of a composition.
    """

    key: str
    label: str
    op: str = "atom"
    kind: str = ""
    arg: int | str = ""
    parts: tuple[Candidate, ...] = field(default=(), compare=False)

    @property
    def n_atoms(self) -> int:
        """Atoms in the description (its complexity)."""
        return 1 if self.op == "atom" else sum(p.n_atoms for p in self.parts)

    def holds(self, probe: Any, table: Bool[Tensor, "vocab n_classes"] | None = None) -> Bool[Tensor, " n"]:
        """Evaluate the predicate on every row of ``probe``.

        Args:
            probe: the rows (a text :class:`ProbeSet`, or an image probe with a ``column(key)`` method).
            table: ``lexical_table(probe.vocab)`` (computed when not given; pass it when calling often).
        """
        if self.op != "atom":
            a, b = (p.holds(probe, table) for p in self.parts)
            return a & b if self.op == "and" else a | b if self.op == "or" else a & ~b
        if self.kind in IMAGE_KINDS:
            return probe.column(self.key)
        if self.kind in ("tok", "prev", "next"):
            column = {"tok": probe.token, "prev": probe.prev, "next": probe.next}[self.kind]
            return column == int(self.arg)
        if self.kind == "class":
            table = lexical_table(probe.vocab) if table is None else table
            return table[probe.token, list(LEXICAL_CLASSES).index(str(self.arg))]
        _, op, bound = next(p for p in POSITION_ATOMS if p[0] == self.arg)
        return probe.pos <= bound if op == "<=" else probe.pos >= bound


def atom(kind: str, arg: int | str, vocab: list[str] | None = None) -> Candidate:
    """The atom ``kind:arg`` with its display label (token strings from ``vocab``)."""
    if kind in ("tok", "prev", "next"):
        text = vocab[int(arg)] if vocab is not None else f"#{arg}"
        word = {"tok": "token", "prev": "after", "next": "before"}[kind]
        return Candidate(f"{kind}:{int(arg)}", f"{word} {text!r}", kind=kind, arg=int(arg))
    if kind == "class":
        if arg not in LEXICAL_CLASSES:
            raise KeyError(arg)
        return Candidate(f"class:{arg}", str(arg), kind=kind, arg=str(arg))
    spec = next((p for p in POSITION_ATOMS if p[0] == arg), None)
    if kind != "pos" or spec is None:
        raise KeyError(f"{kind}:{arg}")
    return Candidate(str(arg), f"position {spec[1]} {spec[2]}", kind="pos", arg=str(arg))


def combine(op: str, a: Candidate, b: Candidate) -> Candidate:
    """``a op b``; ``and`` / ``or`` operands are put in key order so equal descriptions share a key."""
    if op in ("and", "or") and b.key < a.key:
        a, b = b, a
    return Candidate(f"{op}({a.key},{b.key})", f"({a.label}) {_OPS[op]} ({b.label})", op=op, parts=(a, b))


def _lexical_class(s: str) -> list[bool]:
    """Membership of one token string in each of :data:`LEXICAL_CLASSES`."""
    body = s[2:] if s.startswith("##") else s.lstrip(" ")
    return [
        bool(body) and body[0].isupper(),
        bool(body) and body.isalpha() and body.islower(),
        any(c.isdigit() for c in body),
        bool(body) and all(not c.isalnum() and not c.isspace() for c in body),
        bool(s) and s.isspace(),
        s.startswith("##"),
    ]


_TABLES: dict[int, tuple[list[str], Tensor]] = {}


def lexical_table(vocab: list[str]) -> Bool[Tensor, "vocab n_classes"]:
    """Class membership of every token string (cached per vocabulary object)."""
    hit = _TABLES.get(id(vocab))
    if hit is not None and hit[0] is vocab:
        return hit[1]
    table = torch.tensor([_lexical_class(s) for s in vocab], dtype=torch.bool).reshape(len(vocab), len(LEXICAL_CLASSES))
    _TABLES.clear()  # one vocabulary at a time is the common case; keep memory flat
    _TABLES[id(vocab)] = (vocab, table)
    return table


def _top_tokens(column: Int[Tensor, " n"], rows: Int[Tensor, " m"], base: Int[Tensor, " vocab"], n_vocab: int,
                max_atoms: int, min_count: int) -> list[tuple[int, int, float]]:
    """(token id, count at ``rows``, lift) of the most frequent ids of ``column`` at the exemplar rows."""
    ids = column[rows]
    ids = ids[ids >= 0]
    if ids.numel() == 0:
        return []
    counts = torch.bincount(ids, minlength=n_vocab).float()  # [vocab]
    p_e = counts / ids.numel()
    p = (base.float() + 1) / (base.sum() + n_vocab)
    top = counts.argsort(descending=True)[:max_atoms]
    return [(int(t), int(counts[t]), float(p_e[t] / p[t])) for t in top if counts[t] >= min_count]


def propose_atoms(probe: ProbeSet, rows: Int[Tensor, " m"], *, output_tokens: list[int] | None = None,
                  max_atoms: int = 12, min_count: int = 2,
                  base_counts: dict[str, Int[Tensor, " vocab"]] | None = None) -> list[tuple[Candidate, int, float]]:
    """Candidate atoms for a unit whose exemplar (active) rows are ``rows``.

    Args:
        probe: the grounding probe set.
        rows: exemplar rows ``[m]`` (active positions of the top exemplars).
        output_tokens: token ids from the unit's output side (logit lens); each becomes a ``next`` atom.
        max_atoms: most token / previous-token / next-token atoms of each kind.
        min_count: an id must occur this often at the exemplar rows to be proposed.
        base_counts: ``{"tok"|"prev"|"next": bincount over the probe set}`` (computed when missing).

    Returns:
        ``(candidate, count at the exemplar rows, lift)`` for every atom; lift is
        ``p(atom | exemplars) / p(atom)`` for token atoms and 0 for the others.
    """
    n_vocab = len(probe.vocab)
    base_counts = base_counts or count_columns(probe)
    out: list[tuple[Candidate, int, float]] = []
    for kind, column in (("tok", probe.token), ("prev", probe.prev), ("next", probe.next)):
        for t, c, lift in _top_tokens(column, rows, base_counts[kind], n_vocab, max_atoms, min_count):
            out.append((atom(kind, t, probe.vocab), c, lift))
    seen = {c.key for c, _, _ in out}
    for t in output_tokens or []:
        cand = atom("next", int(t), probe.vocab)
        if cand.key not in seen and 0 <= int(t) < n_vocab:
            seen.add(cand.key)
            out.append((cand, int((probe.next[rows] == int(t)).sum()), 0.0))
    out += [(atom("class", name), 0, 0.0) for name in LEXICAL_CLASSES]
    out += [(atom("pos", name), 0, 0.0) for name, _, _ in POSITION_ATOMS]
    return out


def count_columns(probe: ProbeSet) -> dict[str, Int[Tensor, " vocab"]]:
    """Token-id counts of the ``tok``, ``prev`` and ``next`` columns over the probe set."""
    n_vocab = len(probe.vocab)
    return {k: torch.bincount(c[c >= 0], minlength=n_vocab) for k, c in
            (("tok", probe.token), ("prev", probe.prev), ("next", probe.next))}  # fmt: skip


def compose(best: list[Candidate]) -> list[Candidate]:
    """``A and B``, ``A or B``, ``A and not B`` for every ordered pair of ``best`` (without duplicates).

    Which compositions survive is decided by :func:`interp.labeling.pmi.rank`,
    which asks each composition to beat its parts by a margin.
    """
    out: dict[str, Candidate] = {}
    for i, a in enumerate(best):
        for b in best[i + 1 :]:
            if a.kind == b.kind and a.kind in _EXCLUSIVE_KINDS:
                ops = ("or",)  # one row has one token (an image one label): "and" is empty, "and not" is "a"
            else:
                ops = ("and", "or", "andnot")
            for op in ops:
                for x, y in ((a, b), (b, a)) if op == "andnot" else ((a, b),):
                    c = combine(op, x, y)
                    out.setdefault(c.key, c)
    return list(out.values())
