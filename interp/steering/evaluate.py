"""Steering measured as effect against cost: a sweep over coefficients (and hooks) with baselines.

For every coefficient, and every hook when several are given, a steering
method is scored on three small text sets, per sample and on average:

effect
    on ``prompts``: the lift of the target tokens' log-probability (log of their
    summed probability) at each prompt's last position, steered minus unsteered.
KL cost
    on ``neutral`` texts: KL(unsteered || steered) of the next-token
    distributions, averaged over each text's positions.
loss cost
    on ``heldout`` texts: next-token cross-entropy, steered minus unsteered.

Baselines (AxBench practice): ``random`` vectors of the same norm at the same
hooks and coefficients, and ``prompting`` — the instruction ``prompt_prefix``
put before every text, scored on the text's own positions, with no edit.

>>> res = steering_sweep(model, {"blocks.6.hook_resid_post": v}, " dog", prompts, neutral, heldout,
...                      coefficients=[0, 2, 4, 8], prompt_prefix="Talk about dogs.")      # doctest: +SKIP
>>> res.save("runs/steer")        # sweep.json + sweep.html (plotly, offline)             # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.cache import atomic_write_text
from interp.errors import InputError
from interp.interventions import Intervention, intervene
from interp.models.contract import COEFFICIENT_FIX, check_finite, prepare_inputs
from interp.steering.neurons import token_id
from interp.steering.vectors import Steer

__all__ = ["SweepRow", "SweepResult", "steering_sweep", "random_like", "target_lift"]

#: ``edits(hook, coefficient) -> interventions``: one steering method.
Method = Callable[[str, float], Sequence[Intervention]]


@dataclass
class SweepRow:
    """One (method, hook, coefficient) point with per-sample values.

    Attributes:
        method: ``vector``, ``random``, ``prompting`` or a custom method name.
        hook: the steered hook (``None`` for prompting).
        coefficient: the steering scale (``None`` for prompting).
        effect: per prompt, target log-probability lift (nats).
        target_prob: per prompt, the target tokens' probability under this setting.
        kl: per neutral text, mean KL(unsteered || steered) per position (nats).
        loss_delta: per held-out text, next-token loss change (nats).
        accuracy: per held-out image, change of correctness (-1, 0, +1); vision sweeps only
            (:mod:`interp.steering.vision`).
    """

    method: str
    hook: str | None
    coefficient: float | None
    effect: list[float] = field(default_factory=list)
    target_prob: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    loss_delta: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)

    def means(self) -> dict[str, float]:
        """Mean and standard deviation of every per-sample list."""
        out = {}
        for k in ("effect", "target_prob", "kl", "loss_delta") + (("accuracy",) if self.accuracy else ()):
            t = torch.tensor(getattr(self, k), dtype=torch.float64)
            out[f"{k}_mean"] = float(t.mean()) if len(t) else math.nan
            out[f"{k}_std"] = float(t.std()) if len(t) > 1 else 0.0
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the per-sample lists and their means."""
        d = asdict(self)
        if not self.accuracy:
            del d["accuracy"]
        return d | self.means()


@dataclass
class SweepResult:
    """All rows of a sweep plus what was measured (targets, text counts, unsteered reference values)."""

    rows: list[SweepRow]
    meta: dict[str, Any]

    def table(self) -> str:
        """A plain-text table of the means."""
        lines = [f"{'method':<10} {'hook':<28} {'coef':>7} {'effect':>8} {'p(target)':>9} {'KL':>8} {'dloss':>8}"]
        for r in self.rows:
            m = r.means()
            coef = "-" if r.coefficient is None else f"{r.coefficient:g}"
            lines.append(
                f"{r.method:<10} {r.hook or '-':<28} {coef:>7} {m['effect_mean']:>8.3f} "
                f"{m['target_prob_mean']:>9.4f} {m['kl_mean']:>8.4f} {m['loss_delta_mean']:>8.4f}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (see :meth:`save`)."""
        return {"meta": self.meta, "rows": [r.to_dict() for r in self.rows]}

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``sweep.json`` and ``sweep.html`` (plotly, its JS inlined: opens offline) to ``out_dir``."""
        from interp.reports.offline import write_figures_html
        from interp.steering.figure import sweep_figure

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "sweep.json", json.dumps(self.to_dict(), indent=2) + "\n")
        write_figures_html(sweep_figure(self), out / "sweep.html", title="steering sweep")
        return {"json": out / "sweep.json", "html": out / "sweep.html"}


def random_like(vector: Float[Tensor, "*d"], seed: int) -> Float[Tensor, "*d"]:
    """A random Gaussian direction with the same norm as ``vector`` (the equal-norm baseline)."""
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(vector.shape, generator=g, dtype=torch.float32)
    return (r * (vector.float().norm() / r.norm())).to(vector.dtype)


@dataclass
class _Texts:
    """Tokenised inputs and the unsteered reference values."""

    prompts: list[Tensor]
    neutral: list[Tensor]
    heldout: list[Tensor]
    targets: list[int]
    base_target: list[float] = field(default_factory=list)  # per prompt, log p(targets)
    base_logp: list[Tensor] = field(default_factory=list)  # per neutral text, [pos, vocab]
    base_loss: list[float] = field(default_factory=list)  # per held-out text


def _tokenise(model: Any, texts: Sequence[str] | str | Tensor, what: str) -> list[Int[Tensor, "1 pos"]]:
    items = [texts] if isinstance(texts, str) else list(texts)
    if not items:
        raise InputError(f"no {what} texts given. Pass a non-empty list of strings.")
    out = [prepare_inputs(model, t) for t in items]
    short = [i for i, t in enumerate(out) if t.shape[1] < 2]
    if short:
        raise InputError(f"{what} texts {short} have fewer than 2 tokens; next-token measures need at least 2.")
    return out


def _run(model: Any, texts: list[Tensor], edits: Sequence[Intervention], prefix: Tensor | None,
         what: str) -> list[Float[Tensor, "pos vocab"]]:  # fmt: skip
    """Log-probabilities of each text at its own positions, all texts in one right-padded forward pass.

    Right padding leaves a causal model's real positions unchanged. With a
    prompt prefix each row is ``[BOS, prefix..., text...]`` and position ``p + j``
    predicts what position ``j`` did without it.
    """
    if prefix is not None:
        texts = [torch.cat([t[:, :1], prefix.to(t.device), t[:, 1:]], dim=1) for t in texts]
    p = 0 if prefix is None else prefix.shape[1]
    lens = [t.shape[1] for t in texts]
    batch = torch.zeros(len(texts), max(lens), dtype=torch.long, device=texts[0].device)  # [n, max_pos]
    for i, t in enumerate(texts):
        batch[i, : lens[i]] = t[0]
    with intervene(model, *edits):
        logits = model(batch)  # [n, max_pos, vocab]
    out = [logits[i, p : lens[i]] for i in range(len(texts))]  # each [pos_i, vocab]
    for o in out:
        check_finite(o, f"{what}: the logits", COEFFICIENT_FIX)
    return [torch.log_softmax(o.float(), -1) for o in out]


def _target_logp(logp: Float[Tensor, "pos vocab"], targets: list[int]) -> float:
    return float(torch.logsumexp(logp[-1, targets], 0))


def _loss(logp: Float[Tensor, "pos vocab"], tokens: Int[Tensor, "1 pos"]) -> float:
    nxt = tokens[0, 1:].to(logp.device)  # [pos - 1]
    return float(-logp[:-1].gather(1, nxt[:, None]).mean())


@torch.no_grad()
def target_lift(model: Any, prompts: Sequence[str] | Tensor, target: str | int | Sequence[str | int],
                edits: Sequence[Intervention]) -> list[float]:  # fmt: skip
    """Per prompt, the lift of the target tokens' log-probability at its last position under ``edits`` (nats).

    The effect measure of :func:`steering_sweep`, alone: two batched forward passes, no baselines.
    """
    targets = [token_id(model, t) for t in ([target] if isinstance(target, (str, int)) else target)]
    toks = _tokenise(model, prompts, "prompt")
    base = [_target_logp(lp, targets) for lp in _run(model, toks, [], None, "the unsteered run")]
    edited = [_target_logp(lp, targets) for lp in _run(model, toks, edits, None, "the steered run")]
    return [e - b for e, b in zip(edited, base, strict=True)]


def _reference(model: Any, texts: _Texts) -> None:
    what = "the unsteered run"
    texts.base_target = [_target_logp(lp, texts.targets) for lp in _run(model, texts.prompts, [], None, what)]
    texts.base_logp = _run(model, texts.neutral, [], None, what)
    texts.base_loss = [_loss(lp, t) for lp, t in zip(_run(model, texts.heldout, [], None, what), texts.heldout,
                                                     strict=True)]  # fmt: skip


def _measure(model: Any, texts: _Texts, row: SweepRow, edits: Sequence[Intervention],
             prefix: Tensor | None = None) -> SweepRow:  # fmt: skip
    """Fill ``row`` with per-sample effect, target probability, KL and loss change."""
    what = f"{row.method} at {row.hook} with coefficient {row.coefficient}"
    for lp, base in zip(_run(model, texts.prompts, edits, prefix, what), texts.base_target, strict=True):
        tl = _target_logp(lp, texts.targets)
        row.effect.append(tl - base)
        row.target_prob.append(math.exp(tl))
    for lp, base in zip(_run(model, texts.neutral, edits, prefix, what), texts.base_logp, strict=True):
        row.kl.append(float((base.exp() * (base - lp)).sum(-1).mean()))  # KL(unsteered || steered) per position
    heldout = _run(model, texts.heldout, edits, prefix, what)
    for lp, t, base in zip(heldout, texts.heldout, texts.base_loss, strict=True):
        row.loss_delta.append(_loss(lp, t) - base)
    return row


def _vectors(model: Any, vectors: Tensor | Mapping[str, Tensor], hooks: str | Sequence[str] | None
             ) -> dict[str, Tensor]:  # fmt: skip
    from interp.capture.memory import resolve_hooks

    if isinstance(vectors, Tensor):
        if hooks is None:
            raise InputError("a single steering vector needs hooks=<hook or list of hooks> to steer.")
        names = resolve_hooks(model, hooks)
        return {h: vectors for h in names}
    resolve_hooks(model, list(vectors))
    return dict(vectors)


@torch.no_grad()
def steering_sweep(
    model: Any,
    vectors: Tensor | Mapping[str, Tensor],
    target: str | int | Sequence[str | int],
    prompts: Sequence[str] | Tensor,
    neutral: Sequence[str] | Tensor,
    heldout: Sequence[str] | Tensor,
    coefficients: Sequence[int | float] = (0.0, 2.0, 4.0, 8.0),
    *,
    hooks: str | Sequence[str] | None = None,
    n_random: int = 1,
    prompt_prefix: str | Tensor | None = None,
    methods: Mapping[str, Method] | None = None,
    seed: int = 0,
) -> SweepResult:
    """Sweep steering coefficients (and hooks), measuring effect against cost, with baselines.

    Args:
        model: a decoder ``HookedTransformer`` with all its blocks.
        vectors: ``{hook: vector}`` (a layer sweep when several), or one vector with ``hooks=``.
        target: the token(s) the steering should promote (strings of one token, or ids).
        prompts: texts (or token ids ``[n, pos]``, one row per text) whose next token is measured (effect).
        neutral: texts on which the steered distribution should not move (KL cost).
        heldout: texts for the next-token loss change (loss cost).
        coefficients: steering scales.
        hooks: hooks for a single vector.
        n_random: random equal-norm vectors per hook (0: no random baseline).
        prompt_prefix: an instruction for the prompting baseline, text or ids ``[1, p]`` (``None``: none).
        methods: extra methods ``{name: fn(hook, coef) -> edits}``, e.g. SAE clamps, swept like the vector.
        seed: seeds the random vectors.

    Returns:
        A :class:`SweepResult` (``.table()``, ``.save(dir)``).
    """
    vecs = _vectors(model, vectors, hooks)
    if n_random < 0:
        raise InputError(f"n_random must be >= 0, got {n_random}.")
    targets = [token_id(model, t) for t in ([target] if isinstance(target, (str, int)) else target)]
    texts = _Texts(_tokenise(model, prompts, "prompt"), _tokenise(model, neutral, "neutral"),
                   _tokenise(model, heldout, "held-out"), targets)  # fmt: skip
    _reference(model, texts)
    all_methods: dict[str, Method] = {"vector": lambda h, c: [Steer(h, vecs[h], scale=c)]}
    for i in range(n_random):
        rand = {h: random_like(v, seed + 1000 * i + j) for j, (h, v) in enumerate(vecs.items())}
        all_methods[f"random{i}" if n_random > 1 else "random"] = lambda h, c, r=rand: [Steer(h, r[h], scale=c)]
    all_methods |= dict(methods or {})
    rows = []
    for name, fn in all_methods.items():
        for h in vecs:
            for c in coefficients:
                rows.append(_measure(model, texts, SweepRow(name, h, float(c)), fn(h, float(c))))
    if prompt_prefix is not None and (len(prompt_prefix) if isinstance(prompt_prefix, str) else prompt_prefix.numel()):
        prefix = prepare_inputs(model, prompt_prefix, prepend_bos=False)  # [1, p]
        rows.append(_measure(model, texts, SweepRow("prompting", None, None), [], prefix))
    meta = {"targets": targets, "target_strings": _names(model, targets), "hooks": list(vecs),
            "coefficients": [float(c) for c in coefficients], "vector_norms": {h: float(v.float().norm())
            for h, v in vecs.items()}, "n_prompts": len(texts.prompts), "n_neutral": len(texts.neutral),
            "n_heldout": len(texts.heldout), "prompt_prefix": prompt_prefix if isinstance(prompt_prefix, str | None)
            else prompt_prefix.tolist(), "n_random": n_random, "seed": seed,
            "base_target_logprob": texts.base_target, "base_loss": texts.base_loss}  # fmt: skip
    return SweepResult(rows, meta)


def _names(model: Any, ids: list[int]) -> list[str]:
    tok = getattr(model, "tokenizer", None)
    return [tok.decode([i]) if tok is not None else str(i) for i in ids]
