"""Tasks: clean/corrupt input pairs and a metric, templated for any tokenizer.

A :class:`Task` is what every method in :mod:`circuits` takes: clean token ids,
corrupt token ids of the same shape (the same prompt with the information the
circuit uses removed) and a metric of the logits, one value per example
(:class:`AnswerMetric`: logit difference, probability, accuracy of answer
tokens; :class:`NextTokenMetric`: next-token log-probability at many positions).

Builders (:data:`TASKS`, :func:`make_task`): :func:`induction_task` (repeated
random token ids, randomised repeat length; works without a tokenizer),
:func:`ioi_task`, :func:`greater_than_task`, :func:`docstring_task` and
:func:`multiple_choice_task`. Text builders use the model's own tokenizer and
keep only fillers (names, numbers, words) that are one token in it, so the
clean and corrupt prompts line up position by position. :class:`ImageTask`
holds clean/corrupt images for vision transformers and a metric of the model's
(or a probe's) output.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from interp.errors import InputError, UnknownNameError

__all__ = [
    "Metric",
    "AnswerMetric",
    "NextTokenMetric",
    "Task",
    "ImageTask",
    "induction_task",
    "ioi_task",
    "greater_than_task",
    "docstring_task",
    "multiple_choice_task",
    "single_token_ids",
    "TASKS",
    "make_task",
]

AnswerKind = Literal["logit_diff", "prob", "prob_diff", "logprob", "accuracy"]
#: Tokens per pass when a method is given ``batch_size=None`` (see :meth:`Task.batch_step`).
AUTO_BATCH_TOKENS = 512


@runtime_checkable
class Metric(Protocol):
    """What methods need from a metric (see the module docstring)."""

    def __call__(self, logits: Tensor) -> Tensor: ...

    def select(self, idx: Tensor) -> Metric: ...

    def positions_mask(self, batch: int, n_pos: int) -> Tensor: ...


def as_answer_sets(answers: Any, n: int, what: str) -> Int[Tensor, "batch k"]:
    """Token ids ``[batch]`` or ``[batch, k]`` (or lists of lists, ragged) as a ``-1``-padded ``[batch, k]``."""
    if isinstance(answers, Tensor):
        t = answers.long()
        t = t[:, None] if t.ndim == 1 else t
    else:
        rows = [[int(a)] if isinstance(a, int) else [int(x) for x in a] for a in answers]
        width = max((len(r) for r in rows), default=1)
        t = torch.tensor([r + [-1] * (width - len(r)) for r in rows], dtype=torch.long).reshape(len(rows), width)
    if t.ndim != 2 or t.shape[0] != n:
        raise InputError(f"{what} must give token ids for each of the {n} examples; got shape {tuple(t.shape)}.")
    if (t[:, 0] < 0).any():
        raise InputError(f"{what}: every example needs at least one token id (found an empty set).")
    return t


def _upcast(x: Tensor) -> Tensor:
    """At least float32 (half-precision logits lose the small differences patching measures)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _set_reduce(x: Float[Tensor, "batch vocab"], ids: Int[Tensor, "batch k"], how: str) -> Float[Tensor, " batch"]:
    """Mean/sum/max of ``x`` over the ``-1``-padded id sets."""
    valid = ids >= 0
    vals = x.gather(1, ids.clamp(min=0))  # [batch, k]
    if how == "max":
        return vals.masked_fill(~valid, float("-inf")).max(1).values
    total = (vals * valid).sum(1)
    return total / valid.sum(1) if how == "mean" else total


@dataclass(frozen=True, eq=False)
class AnswerMetric:
    """Correct versus wrong answer tokens at one position per example.

    Attributes:
        correct: correct answer ids ``[batch, k]`` (``-1`` pads ragged sets).
        wrong: wrong answer ids ``[batch, j]``; ``None`` for ``prob``/``logprob``/``accuracy`` over the vocabulary.
        position: the predicting position of each example ``[batch]`` (negative counts from the end).
        kind: ``logit_diff`` (mean correct logit − mean wrong logit), ``prob`` (probability of the correct
            set), ``prob_diff`` (probability of the correct set − of the wrong set), ``logprob`` (log
            probability of the correct set) or ``accuracy`` (best correct logit beats the best wrong one, or the
            top-1 token is correct when ``wrong`` is ``None``).
    """

    correct: Int[Tensor, "batch k"]
    wrong: Int[Tensor, "batch j"] | None
    position: Int[Tensor, " batch"]
    kind: AnswerKind = "logit_diff"

    def __post_init__(self) -> None:
        if self.kind not in ("logit_diff", "prob", "prob_diff", "logprob", "accuracy"):
            raise InputError(f"AnswerMetric kind {self.kind!r} is not one of logit_diff, prob, prob_diff, logprob, "
                             "accuracy.")  # fmt: skip
        if self.kind in ("logit_diff", "prob_diff") and self.wrong is None:
            raise InputError(f"AnswerMetric kind {self.kind!r} needs wrong= answer ids.")

    def __len__(self) -> int:
        return len(self.correct)

    def with_kind(self, kind: AnswerKind) -> AnswerMetric:
        """The same answers scored another way."""
        return replace(self, kind=kind)

    def final_logits(self, logits: Float[Tensor, "batch pos vocab"]) -> Float[Tensor, "batch vocab"]:
        """Logits at each example's predicting position."""
        idx = self.position.to(logits.device) % logits.shape[1]
        return logits[torch.arange(len(logits), device=logits.device), idx]

    def __call__(self, logits: Float[Tensor, "batch pos vocab"]) -> Float[Tensor, " batch"]:
        """The metric of each example."""
        x = _upcast(self.final_logits(logits))
        good, bad = self.correct.to(x.device), None if self.wrong is None else self.wrong.to(x.device)
        if self.kind == "logit_diff":
            return _set_reduce(x, good, "mean") - _set_reduce(x, bad, "mean")
        if self.kind == "accuracy":
            best = _set_reduce(x, bad, "max") if bad is not None else x.max(1).values
            return (_set_reduce(x, good, "max") >= best).float()
        logp = x.log_softmax(-1)
        if self.kind == "logprob":
            return torch.logsumexp(logp.gather(1, good.clamp(min=0)).masked_fill(good < 0, float("-inf")), 1)
        p = logp.exp()
        out = _set_reduce(p, good, "sum")
        return out - _set_reduce(p, bad, "sum") if self.kind == "prob_diff" else out

    def select(self, idx: Tensor) -> AnswerMetric:
        """The metric of examples ``idx``."""
        wrong = None if self.wrong is None else self.wrong[idx]
        return replace(self, correct=self.correct[idx], wrong=wrong, position=self.position[idx])

    def positions_mask(self, batch: int, n_pos: int) -> Bool[Tensor, "batch pos"]:
        """True at each example's predicting position."""
        mask = torch.zeros(batch, n_pos, dtype=torch.bool)
        mask[torch.arange(batch), self.position % n_pos] = True
        return mask


@dataclass(frozen=True, eq=False)
class NextTokenMetric:
    """Next-token predictions at the masked positions, averaged per example.

    Attributes:
        targets: the token each position should predict ``[batch, pos]`` (the input shifted by one).
        mask: which positions count ``[batch, pos]``.
        kind: ``logprob`` (mean log-probability of the targets; higher is better), ``loss`` (its negative)
            or ``accuracy`` (top-1).
    """

    targets: Int[Tensor, "batch pos"]
    mask: Bool[Tensor, "batch pos"]
    kind: Literal["logprob", "loss", "accuracy"] = "logprob"

    def __post_init__(self) -> None:
        if self.kind not in ("logprob", "loss", "accuracy"):
            raise InputError(f"NextTokenMetric kind {self.kind!r} is not one of logprob, loss, accuracy.")
        if self.targets.shape != self.mask.shape or not self.mask.any(1).all():
            raise InputError(
                "NextTokenMetric needs targets and mask of one shape [batch, pos], with at least one masked "
                f"position per example; got {tuple(self.targets.shape)}, {tuple(self.mask.shape)}."
            )

    def __len__(self) -> int:
        return len(self.targets)

    def with_kind(self, kind: Literal["logprob", "loss", "accuracy"]) -> NextTokenMetric:
        """The same targets scored another way."""
        return replace(self, kind=kind)

    def __call__(self, logits: Float[Tensor, "batch pos vocab"]) -> Float[Tensor, " batch"]:
        """The metric of each example."""
        tgt, mask = self.targets.to(logits.device), self.mask.to(logits.device)
        if self.kind == "accuracy":
            vals = (logits.argmax(-1) == tgt).float()
        else:
            vals = _upcast(logits).log_softmax(-1).gather(-1, tgt.clamp(min=0)[..., None])[..., 0]  # [batch, pos]
        out = (vals * mask).sum(1) / mask.sum(1)
        return -out if self.kind == "loss" else out

    def select(self, idx: Tensor) -> NextTokenMetric:
        """The metric of examples ``idx``."""
        return replace(self, targets=self.targets[idx], mask=self.mask[idx])

    def positions_mask(self, batch: int, n_pos: int) -> Bool[Tensor, "batch pos"]:
        """The masked positions."""
        return self.mask.clone()


@dataclass(frozen=True, eq=False)
class Task:
    """Clean/corrupt token ids and a metric: the unit every circuit method takes.

    Attributes:
        name: a short name (``induction``, ``ioi``, …).
        clean: clean token ids ``[batch, pos]``.
        corrupt: corrupt token ids of the same shape.
        metric: per-example metric of the logits (:class:`AnswerMetric`, :class:`NextTokenMetric` or any
            object with ``__call__``, ``select`` and ``positions_mask``).
        meta: what built it (template, seed, …), JSON-able.
    """

    name: str
    clean: Int[Tensor, "batch pos"]
    corrupt: Int[Tensor, "batch pos"]
    metric: Any
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.clean.ndim != 2 or self.clean.shape != self.corrupt.shape:
            raise InputError(f"task {self.name!r}: clean and corrupt token ids must share one shape [batch, pos]; got "
                             f"{tuple(self.clean.shape)} and {tuple(self.corrupt.shape)}.")  # fmt: skip
        if not isinstance(self.metric, Metric):
            raise InputError(f"task {self.name!r}: metric must have __call__, select and positions_mask "
                             f"(AnswerMetric, NextTokenMetric); got {type(self.metric).__name__}.")  # fmt: skip

    def __len__(self) -> int:
        return len(self.clean)

    def select(self, idx: Any) -> Task:
        """The task restricted to examples ``idx`` (a slice, indices or a bool mask)."""
        idx = torch.arange(len(self))[idx]
        return replace(self, clean=self.clean[idx], corrupt=self.corrupt[idx], metric=self.metric.select(idx))

    def batch_step(self, batch_size: int | None) -> int:
        """Examples per pass: ``batch_size``, or for ``None`` as many as fit in :data:`AUTO_BATCH_TOKENS` tokens.

        Memory of the edge methods grows with tokens per pass (on SmolLM2, EAP over 4 x 128
        tokens peaks near 4 GB, 8 x 128 near 6 GB), so the default bounds it whatever the task's size.
        """
        return batch_size or max(1, min(len(self), AUTO_BATCH_TOKENS // max(1, int(self.clean.shape[-1]))))

    def n_batches(self, batch_size: int | None) -> int:
        """How many passes :meth:`batches` makes."""
        return -(-len(self) // self.batch_step(batch_size))

    def batches(self, batch_size: int | None) -> Iterator[Task]:
        """Consecutive sub-tasks of at most ``batch_size`` examples (``None``: :meth:`batch_step`'s default)."""
        step = self.batch_step(batch_size)
        for start in range(0, len(self), step):
            yield self.select(slice(start, start + step))

    def swapped(self) -> Task:
        """Clean and corrupt exchanged (denoising instead of noising)."""
        return replace(self, clean=self.corrupt, corrupt=self.clean)


@dataclass(frozen=True, eq=False)
class ImageTask:
    """Clean/corrupt images for a vision transformer and a metric of its (or a probe's) output.

    Attributes:
        name: short name (``digit-7``, ``concept-stripes``).
        clean: images with the class or concept present ``[batch, 3, H, W]`` (model-normalised).
        corrupt: matched images without it, same shape.
        metric: ``metric(output) -> [batch]`` of the model output (or of ``readout(output)``).
        readout: optional map from the model output to what ``metric`` scores (e.g. a probe on CLS features).
    """

    name: str
    clean: Float[Tensor, "batch 3 H W"]
    corrupt: Float[Tensor, "batch 3 H W"]
    metric: Callable[[Tensor], Tensor]
    readout: Callable[[Tensor], Tensor] | None = None

    def __post_init__(self) -> None:
        if self.clean.shape != self.corrupt.shape:
            raise InputError(f"image task {self.name!r}: clean {tuple(self.clean.shape)} and corrupt "
                             f"{tuple(self.corrupt.shape)} images must have one shape.")  # fmt: skip

    def __len__(self) -> int:
        return len(self.clean)

    def score(self, output: Tensor) -> Float[Tensor, " batch"]:
        """The metric of a model output, through ``readout`` when given."""
        return self.metric(self.readout(output) if self.readout is not None else output)


def induction_task(
    model: Any = None,
    *,
    n: int = 32,
    seq_len: int = 32,
    min_repeat: int = 4,
    max_repeat: int | None = None,
    d_vocab: int | None = None,
    token_range: tuple[int, int] | None = None,
    bos: int | None | Literal["auto"] = "auto",
    seed: int = 0,
) -> Task:
    """Repeated random tokens: clean repeats a random segment, corrupt continues with fresh tokens.

    Each example is ``[bos] + r + r[:rest]`` with a random segment ``r`` of length ``L`` drawn from
    ``[min_repeat, max_repeat]``; the metric is the mean log-probability of the clean next token over
    the repeated part, where only an induction mechanism can predict it. Works at the token-id level,
    so models without a tokenizer qualify.

    Args:
        model: a ``HookedTransformer`` (vocabulary size and BOS taken from it), or ``None`` with ``d_vocab``.
        n: examples.
        seq_len: tokens per example, BOS included.
        min_repeat: shortest repeated segment.
        max_repeat: longest repeated segment (default ``(seq_len - 1) // 2``).
        d_vocab: vocabulary size when no model is given.
        token_range: draw ids from ``[lo, hi)`` (default: the whole vocabulary, skipping ids below 10 for
            models with a tokenizer, which are usually special tokens).
        bos: the BOS id, ``None`` for none, ``"auto"`` for the model tokenizer's BOS when it prepends one.
        seed: random seed.

    Returns:
        A :class:`Task` with a :class:`NextTokenMetric` (kind ``logprob``).
    """
    tok = getattr(model, "tokenizer", None)
    if bos == "auto":
        use_bos = model is not None and tok is not None and getattr(model.cfg, "default_prepend_bos", True)
        bos = (tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id) if use_bos else None
    d_vocab = d_vocab or (model.cfg.d_vocab if model is not None else None)
    if d_vocab is None:
        raise InputError("induction_task needs a model or d_vocab=.")
    lo, hi = token_range or ((10 if tok is not None else 0), d_vocab)
    body = seq_len - (bos is not None)
    max_repeat = max_repeat or body // 2
    if not 1 <= min_repeat <= max_repeat <= body - 1 or hi - lo < 2 * max_repeat:
        raise InputError(
            f"induction_task: need 1 <= min_repeat ({min_repeat}) <= max_repeat ({max_repeat}) < tokens per "
            f"example ({body}) and a token range wider than two segments; got [{lo}, {hi})."
        )
    g = torch.Generator().manual_seed(seed)
    reps = torch.randint(min_repeat, max_repeat + 1, (n,), generator=g)
    clean, corrupt = torch.empty(n, body, dtype=torch.long), torch.empty(n, body, dtype=torch.long)
    for i, length in enumerate(reps.tolist()):
        seg = lo + torch.randperm(hi - lo, generator=g)[: 2 * length]  # distinct ids: no accidental repeats
        rest = body - length
        clean[i] = torch.cat([seg[:length], seg[:length].repeat(rest // length + 1)[:rest]])
        fresh = lo + torch.randint(0, hi - lo, (rest,), generator=g)
        corrupt[i] = torch.cat([seg[:length], fresh])
    off = int(bos is not None)
    if bos is not None:
        clean, corrupt = (torch.cat([torch.full((n, 1), int(bos)), t], 1) for t in (clean, corrupt))
    targets = torch.cat([clean[:, 1:], torch.zeros(n, 1, dtype=torch.long)], 1)  # position p predicts p+1
    pos = torch.arange(seq_len)[None]
    mask = (pos + 1 >= off + reps[:, None]) & (pos + 1 < seq_len)  # the next token is a repeat
    meta = {"seed": seed, "repeat_lengths": reps.tolist(), "bos": bos}
    return Task("induction", clean, corrupt, NextTokenMetric(targets, mask), meta)


# --- text tasks, templated for the model's tokenizer ------------------------------------------------------------

_NAMES = ("Mary John Tom James Anna Paul Sarah David Lisa Mark Emma Peter Kate Michael Laura Daniel Alice Robert "
          "Susan George Jane Henry Karen Jack Linda Steve Julia Frank Amy Chris").split()  # fmt: skip
_PLACES = "store park school beach market office garden station church hospital".split()
_OBJECTS = "drink book ball gift letter key ring bag necklace basketball".split()
_IOI_TEMPLATES = (
    "When {X} and {Y} went to the {P}, {S} gave a {O} to",
    "Then, {X} and {Y} went to the {P}. {S} gave a {O} to",
    "After {X} and {Y} went to the {P}, {S} handed a {O} to",
    "While {X} and {Y} were at the {P}, {S} gave a {O} to",
)
_ARGS = "name data size value key path mode user port host text line item index count node state url query source target label".split()  # noqa: E501
_FUNCS = "load save run parse send check update build".split()
_NOUNS = "war expedition drought project festival strike campaign famine".split()
_MC_ITEMS = (
    ("Which of these is a color?", "red", ("dog", "chair", "bread")),
    ("Which of these is an animal?", "cat", ("table", "blue", "cloud")),
    ("Which of these is a fruit?", "apple", ("car", "shoe", "river")),
    ("Which of these can fly?", "bird", ("stone", "fish", "desk")),
    ("Which of these is a number?", "seven", ("tree", "house", "green")),
    ("Which of these is a drink?", "water", ("sand", "paper", "road")),
    ("Which of these is a planet?", "Mars", ("Paris", "piano", "horse")),
    ("Which of these is a season?", "winter", ("lemon", "chair", "seven")),
)


def _tokenizer(model: Any, task: str) -> Any:
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        raise InputError(f"{task} needs a model with a tokenizer; {getattr(model.cfg, 'model_name', 'this model')} "
                         "has none. Use induction_task (token ids) or build a Task from token ids.")  # fmt: skip
    return tok


def single_token_ids(model: Any, words: Sequence[str], prefix: str = " ") -> dict[str, int]:
    """``{word: id}`` for the words that ``prefix + word`` encodes as one token in the model's tokenizer."""
    tok = _tokenizer(model, "single_token_ids")
    out = {}
    for w in words:
        ids = tok.encode(prefix + w, add_special_tokens=False)
        if len(ids) == 1:
            out[w] = ids[0]
    return out


def _encode(model: Any, text: str) -> list[int]:
    tok = model.tokenizer
    ids = tok.encode(text, add_special_tokens=False)
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    return ([bos] if getattr(model.cfg, "default_prepend_bos", True) and bos is not None else []) + ids


def _build(model: Any, name: str, rows: list[tuple[str, str, Any, Any]], kind: AnswerKind, meta: dict) -> Task:
    """Task from (clean prompt, corrupt prompt, correct ids, wrong ids) rows, right-padded; unequal pairs dropped."""
    pairs = [(_encode(model, c), _encode(model, k), good, bad) for c, k, good, bad in rows]
    pairs = [p for p in pairs if len(p[0]) == len(p[1])]
    if not pairs:
        raise InputError(f"{name}: no prompt pair tokenizes to equal lengths with {model.cfg.model_name}'s tokenizer.")
    width = max(len(p[0]) for p in pairs)
    pad = model.tokenizer.pad_token_id or 0
    clean = torch.tensor([p[0] + [pad] * (width - len(p[0])) for p in pairs])
    corrupt = torch.tensor([p[1] + [pad] * (width - len(p[1])) for p in pairs])
    position = torch.tensor([len(p[0]) - 1 for p in pairs])
    n = len(pairs)
    metric = AnswerMetric(as_answer_sets([p[2] for p in pairs], n, "correct"),
                          as_answer_sets([p[3] for p in pairs], n, "wrong"), position, kind)  # fmt: skip
    return Task(name, clean, corrupt, metric, {**meta, "n": n, "dropped": len(rows) - n})


def _need(pool: dict[str, int], k: int, what: str, model: Any) -> list[str]:
    if len(pool) < k:
        raise InputError(f"only {len(pool)} {what} are single tokens in {model.cfg.model_name}'s tokenizer; need {k}.")
    return sorted(pool)


def ioi_task(model: Any, *, n: int = 32, seed: int = 0) -> Task:
    """Indirect object identification: "When Mary and John went to the store, John gave a drink to" -> " Mary".

    The corrupt prompt replaces the two names of the first clause by two other names (no indirect object to
    copy). Metric: logit difference of the indirect object over the subject.
    """
    names = single_token_ids(model, _NAMES)
    pool = _need(names, 4, "names", model)
    places = _need(single_token_ids(model, _PLACES), 1, "places", model)
    objects = _need(single_token_ids(model, _OBJECTS), 1, "objects", model)
    rng, rows = random.Random(seed), []
    for _ in range(n):
        a, b, c, d = rng.sample(pool, 4)
        t, p, o = rng.choice(_IOI_TEMPLATES), rng.choice(places), rng.choice(objects)
        x, y = (b, a) if rng.random() < 0.5 else (a, b)  # BABA and ABBA orders
        clean = t.format(X=x, Y=y, S=b, P=p, O=o)
        corrupt = t.format(X=c, Y=d, S=b, P=p, O=o)
        rows.append((clean, corrupt, names[a], names[b]))
    return _build(model, "ioi", rows, "logit_diff", {"seed": seed})


def _continuation(model: Any, prompt: str, text: str) -> int | None:
    """The one token ``text`` adds after ``prompt``, or ``None`` if it is not exactly one token there."""
    a, b = _encode(model, prompt), _encode(model, prompt + text)
    return b[-1] if len(b) == len(a) + 1 and b[: len(a)] == a else None


def greater_than_task(model: Any, *, n: int = 32, seed: int = 0) -> Task:
    """Greater-than: "The war lasted from the year 1732 to the year 17" -> a year after 1732.

    With two-digit year tokens (GPT-2 style) the answers are the tokens ``YY' > YY`` (wrong: ``<= YY``); with
    digit-by-digit tokenizers (Llama, SmolLM2) the next token is the tens digit: answers are digits above
    ``YY``'s tens digit (wrong: below). The corrupt prompt starts the span at ``YY = 01``. Metric: probability
    of the correct set minus that of the wrong set.
    """
    _tokenizer(model, "greater_than_task")
    probe = "The war lasted from the year 1732 to the year 17"
    two_digit = all(_continuation(model, probe, f"{y:02d}") is not None for y in (2, 45, 98))
    answers = ({y: _continuation(model, probe, f"{y:02d}") for y in range(100)} if two_digit
               else {d: _continuation(model, probe, str(d)) for d in range(10)})  # fmt: skip
    if any(v is None for v in answers.values()):
        raise InputError(f"{model.cfg.model_name}'s tokenizer splits years in a way greater_than_task cannot use.")
    rng, rows = random.Random(seed), []
    for _ in range(n):
        yy, noun, century = rng.randint(12, 88), rng.choice(_NOUNS), rng.randint(11, 19)
        clean = f"The {noun} lasted from the year {century}{yy:02d} to the year {century}"
        corrupt = f"The {noun} lasted from the year {century}01 to the year {century}"
        ref = yy if two_digit else yy // 10
        good = [t for k, t in answers.items() if k > ref]
        bad = [t for k, t in answers.items() if k < ref or (two_digit and k == ref)]
        rows.append((clean, corrupt, good, bad))
    return _build(model, "greater-than", rows, "prob_diff", {"seed": seed, "two_digit_years": two_digit})


def docstring_task(model: Any, *, n: int = 32, seed: int = 0) -> Task:
    """Docstring: after ``:param a:`` and ``:param b:`` lines, predict the next argument name ``c`` of the def.

    The corrupt prompt renames the def's arguments, so ``c`` is nowhere to copy from. Metric: logit difference of
    ``c`` over the other argument names in the prompt.
    """
    args = single_token_ids(model, _ARGS)
    pool = _need(args, 6, "argument names", model)
    rng, rows = random.Random(seed), []
    for _ in range(n):
        a, b, c, a2, b2, c2 = rng.sample(pool, 6)
        f = rng.choice(_FUNCS)
        body = f'):\n    """{f.capitalize()} the {a}.\n\n    :param {a}: the {a}\n    :param {b}: the {b}\n    :param'
        clean, corrupt = f"def {f}(self, {a}, {b}, {c}" + body, f"def {f}(self, {a2}, {b2}, {c2}" + body
        rows.append((clean, corrupt, args[c], [args[a], args[b], args[a2], args[b2], args[c2]]))
    return _build(model, "docstring", rows, "logit_diff", {"seed": seed})


def multiple_choice_task(model: Any, *, n: int = 32, seed: int = 0) -> Task:
    """Multiple-choice letter: a question, options ``A.``-``C.``, ``Answer:`` -> the correct option's letter.

    The corrupt prompt moves the correct option to another letter. Metric: logit difference of the correct
    letter over the two others.
    """
    letters = single_token_ids(model, ["A", "B", "C"])
    if len(letters) < 3:
        raise InputError(f"' A', ' B', ' C' are not single tokens in {model.cfg.model_name}'s tokenizer.")
    items = [it for it in _MC_ITEMS if len(single_token_ids(model, [it[1], *it[2]])) == 1 + len(it[2])]
    if not items:
        raise InputError(f"no multiple-choice item has single-token options in {model.cfg.model_name}'s tokenizer.")
    rng, rows = random.Random(seed), []

    def prompt(question: str, options: list[str]) -> str:
        lines = "".join(f"\n{letter}. {o}" for letter, o in zip("ABC", options, strict=True))
        return f"Question: {question}{lines}\nAnswer:"

    for _ in range(n):
        q, right, wrongs = rng.choice(items)
        opts = rng.sample(list(wrongs), 2)
        slot, other = rng.sample(range(3), 2)
        clean_opts, corrupt_opts = list(opts), list(opts)
        clean_opts.insert(slot, right)
        corrupt_opts.insert(other, right)
        answer = "ABC"[slot]
        rows.append((prompt(q, clean_opts), prompt(q, corrupt_opts), letters[answer],
                     [letters[x] for x in "ABC" if x != answer]))  # fmt: skip
    return _build(model, "multiple-choice", rows, "logit_diff", {"seed": seed})


#: Task builders by name: ``TASKS[name](model, n=..., seed=...)``.
TASKS: dict[str, Callable[..., Task]] = {
    "induction": induction_task,
    "ioi": ioi_task,
    "greater-than": greater_than_task,
    "docstring": docstring_task,
    "multiple-choice": multiple_choice_task,
}


def make_task(name: str, model: Any, *, n: int = 32, seed: int = 0, **kwargs: Any) -> Task:
    """Build the named task for ``model`` (see :data:`TASKS`).

    Raises:
        UnknownNameError: an unknown task name (nearest names listed).
    """
    if name not in TASKS:
        raise UnknownNameError("task", name, TASKS, fix="Build your own with circuits.tasks.Task(...).")
    return TASKS[name](model, n=n, seed=seed, **kwargs)
