"""Label every unit of a layer: exemplars -> candidates -> PMI search -> held-out scores.

:func:`label_store` labels a hook's units (or an SAE's latents) in an activation
store and is what ``interp label`` runs; :func:`label_units` is its core. Its input is any
stream of unit activations in row order (:func:`~interp.labeling.exemplars.unit_batches`
for a store, :func:`~interp.labeling.exemplars.array_batches` for arrays) and
the :class:`~interp.labeling.probe.ProbeSet` of those rows. Documents with
``doc % heldout_every == heldout_every - 1`` are held out: never used to find
exemplars, propose or ground candidates, only to score the chosen label.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jaxtyping import Float
from torch import Tensor

from interp.errors import InputError
from interp.labeling.candidates import count_columns, propose_atoms
from interp.labeling.exemplars import Exemplars, collect
from interp.labeling.pmi import DEFAULT_LAMBDA, Grounded, Grounder, rank
from interp.labeling.probe import ProbeSet
from interp.labeling.results import LabelSet, Snippet, UnitLabel
from interp.labeling.scoring import score_label

__all__ = ["LabelConfig", "label_units", "label_store", "label_from_exemplars"]


@dataclass(frozen=True)
class LabelConfig:
    """Settings of a labeling run.

    Attributes:
        k: exemplar contexts per unit (MILAN: 15).
        ground_rows: the exemplar set ``E`` also holds the active rows among the unit's
            top ``ground_rows`` rows. MILAN's 15 image exemplars carry masks of many
            pixels; a text context's mask holds a few tokens, too few to see a second
            concept of a polysemantic unit. ``0`` grounds in the k contexts' masks alone.
        lam: λ of the PMI score ``log p(d|E) − λ log p(d)`` (MILAN: 0.2).
        quantile: active threshold level over all grounding positions (MILAN: 0.99).
        heldout_every: one document in this many is held out for scoring.
        n_compose: the best this many atoms are composed (and / or / and not).
        margin: least gain a composition must bring over its parts.
        max_atoms: most token / previous / next-token atoms proposed per kind.
        n_alternatives: runner-up candidates kept per unit.
        window: tokens shown each side of an exemplar's peak.
        n_samples: lower-quantile and non-activating samples kept per unit.
        seed: seeds the reservoir and the shuffled baseline.
    """

    k: int = 15
    ground_rows: int = 200
    lam: float = DEFAULT_LAMBDA
    quantile: float = 0.99
    heldout_every: int = 5
    n_compose: int = 5
    margin: float = 0.1
    max_atoms: int = 12
    n_alternatives: int = 5
    window: int = 8
    n_samples: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k < 1 or self.n_compose < 0 or self.max_atoms < 1 or self.window < 0:
            raise InputError(f"k, max_atoms must be ≥ 1 and n_compose, window ≥ 0; got {self}.")
        if not 0 <= self.lam <= 1:
            raise InputError(f"lam must lie in [0, 1] (MILAN: 0.2), got {self.lam}.")


def label_units(batches: Iterable[Float[Tensor, "b u"]], probe: ProbeSet, config: LabelConfig | None = None, *,
                unit_ids: list[int] | None = None, output_tokens: list[list[int]] | None = None,
                output_bottom: list[list[int]] | None = None, meta: dict | None = None) -> LabelSet:
    """Label every unit whose activations ``batches`` stream (one pass).

    Args:
        batches: unit activations ``[b, u]`` covering the probe set's rows in order.
        probe: the rows' tokens.
        config: settings (:class:`LabelConfig`).
        unit_ids: the unit index of each column (default ``0..u-1``).
        output_tokens: per unit, token ids it promotes (logit lens): proposed as ``next`` atoms and shown.
        output_bottom: per unit, token ids it suppresses (shown only).
        meta: provenance stored in the result (hook, store, SAE …).
    """
    cfg = config or LabelConfig()
    held = probe.heldout_mask(cfg.heldout_every)
    ex = collect(batches, held, top_rows=max(cfg.ground_rows, 20 * cfg.k), quantile=cfg.quantile,
                 seed=cfg.seed)
    return label_from_exemplars(ex, probe, cfg, unit_ids=unit_ids, output_tokens=output_tokens,
                                output_bottom=output_bottom, meta=meta)


def label_store(store: Any, hook: str, config: LabelConfig | None = None, *, model: Any = None, sae: Any = None,
                sae_key: str | None = None, units: list[int] | None = None, meta: dict | None = None) -> LabelSet:
    """Label the units of ``hook`` in an activation store (neurons, heads, or an SAE's latents).

    Args:
        store: a :class:`~interp.store.Store` or its path.
        hook: the stored hook whose units (or whose SAE latents) are labelled.
        config: settings (:class:`LabelConfig`).
        model: the store's model, already loaded: gives token strings and, for MLP
            neurons and SAE latents, the promoted/suppressed tokens (logit lens).
        sae: a SAELens SAE on ``hook``: label its latents instead of the hook's units.
        sae_key: cache key of the SAE's vocabulary projection (e.g. its folder).
        units: unit (or latent) indices to label; default all.
        meta: provenance stored in the result.
    """
    from interp.labeling.exemplars import unit_batches
    from interp.labeling.probe import probe_from_store, token_strings
    from interp.store import Store, open_store

    store = store if isinstance(store, Store) else open_store(store)
    width = int(sae.cfg.d_sae) if sae is not None else store.shape(hook)[0]
    units = list(range(width)) if units is None else list(units)
    if not units or min(units) < 0 or max(units) >= width:
        raise InputError(f"units must lie in 0..{width - 1} for {hook}{' (SAE)' if sae is not None else ''}.")
    vocab = token_strings(model.tokenizer) if getattr(model, "tokenizer", None) is not None else None
    top, bottom = _output_tokens(model, hook, sae, sae_key, units) if model is not None else (None, None)
    return label_units(unit_batches(store, hook, sae=sae, units=units), probe_from_store(store, vocab), config,
                       unit_ids=units, output_tokens=top, output_bottom=bottom, meta=meta)


def _output_tokens(model: Any, hook: str, sae: Any, sae_key: str | None, units: list[int],
                   n: int = 10) -> tuple[Any, Any]:
    """Promoted / suppressed token ids per unit, or ``(None, None)`` when the hook has no output direction."""
    from interp.labeling.vocab import vocab_projection

    try:
        proj = vocab_projection(model)
    except InputError:
        return None, None
    if sae is not None:
        dirs, key = proj.sae_directions(sae), f"sae:{sae_key or hook}"
    elif hook.endswith("mlp.hook_post"):
        dirs, key = proj.neuron_directions(int(hook.split(".")[1])), hook
    else:
        return None, None
    top = proj.top_tokens(dirs, k=n, key=key)
    return top.top_ids[units].tolist(), top.bottom_ids[units].tolist()


def label_from_exemplars(ex: Exemplars, probe: ProbeSet, cfg: LabelConfig, *, unit_ids: list[int] | None = None,
                         output_tokens: list[list[int]] | None = None, output_bottom: list[list[int]] | None = None,
                         meta: dict | None = None) -> LabelSet:
    """The candidate, PMI and scoring stages on already collected exemplars."""
    held = probe.heldout_mask(cfg.heldout_every)
    grounder = Grounder(probe, (~held).nonzero().flatten())
    base = count_columns(grounder.probe)
    held_probe = probe.subset(ex.heldout_rows) if len(ex.heldout_rows) else None
    ids = unit_ids or list(range(ex.n_units))
    units = []
    for u in range(ex.n_units):
        out_ids = output_tokens[u] if output_tokens is not None else []
        units.append(_label_one(u, ids[u], ex, probe, grounder, base, held_probe, cfg, out_ids,
                                output_bottom[u] if output_bottom is not None else []))
    info = {"k": cfg.k, "ground_rows": cfg.ground_rows, "lambda": cfg.lam, "quantile": cfg.quantile,
            "heldout_every": cfg.heldout_every,
            "n_grounding_rows": ex.n_rows, "n_heldout_rows": len(ex.heldout_rows),
            "estimator": "p(d|E)=(c_E+0.5)/(n_E+1), p(d)=(c+0.5)/(N+1), score=log p(d|E) - lambda log p(d)"}
    return LabelSet(units, info | (meta or {}))


def _label_one(u: int, unit_id: int, ex: Exemplars, probe: ProbeSet, grounder: Grounder, base: dict,
               held_probe: ProbeSet | None, cfg: LabelConfig, out_ids: list[int], out_bottom: list[int]) -> UnitLabel:
    """Propose, rank and score the label of column ``u``."""
    rows = ex.exemplar_rows(u, probe, cfg.k, cfg.ground_rows)
    shown = {"threshold": float(ex.threshold[u]), "frac_positive": float(ex.frac_positive[u]), "max": float(ex.max[u]),
             "output_top": [probe.vocab[t] for t in out_ids], "output_bottom": [probe.vocab[t] for t in out_bottom]}
    counts, edges = ex.histogram(u)
    views = {"exemplars": _snippets(ex, u, probe, cfg), "histogram": {"counts": counts, "edges": edges},
             "lower": [_snippet(ex, u, probe, int(r), cfg.window) for r in ex.lower_samples(u, cfg.n_samples)],
             "inactive": [_snippet(ex, u, probe, int(r), cfg.window) for r in ex.inactive_samples(u, cfg.n_samples)]}
    if len(rows) == 0:
        return UnitLabel(unit_id, "(never active)", "", float("nan"), float("nan"), float("nan"), 0, 0,
                         **shown, **views)  # fmt: skip
    atoms = [c for c, _, _ in propose_atoms(probe, rows, output_tokens=out_ids, max_atoms=cfg.max_atoms,
                                            base_counts=base)]
    ranked = rank(grounder, atoms, rows, lam=cfg.lam, n_compose=cfg.n_compose, margin=cfg.margin)
    best = ranked[0]
    scores = {}
    if held_probe is not None:
        match = best.candidate.holds(held_probe, grounder.table)
        scores = score_label(match, ex.heldout[:, u], float(ex.threshold[u]), cfg.seed).to_dict()
    return UnitLabel(unit_id, best.candidate.label, best.candidate.key, best.score, best.p_given_e, best.p,
                     best.count_e, best.n_e, scores=scores, kind=best.candidate.kind or "composition",
                     alternatives=[_alt(g) for g in ranked[1:1 + cfg.n_alternatives]], **shown, **views)


def _alt(g: Grounded) -> dict:
    """A runner-up candidate as a plain dict."""
    return {"label": g.candidate.label, "key": g.candidate.key, "pmi": g.score, "p_given_e": g.p_given_e,
            "p": g.p, "count_e": g.count_e, "count": g.count}


def _snippets(ex: Exemplars, u: int, probe: ProbeSet, cfg: LabelConfig) -> list[Snippet]:
    """Token windows around the peaks of the top-k exemplar contexts, masks marked."""
    known = dict(zip(ex.top_rows[u].tolist(), ex.top_values[u].tolist(), strict=True))
    out = []
    for e in ex.contexts(u, probe, cfg.k):
        rows, centre = probe.window(e.peak_row, cfg.window)
        active = set(e.active_rows)
        out.append(Snippet([probe.vocab[int(probe.token[r])] for r in rows], [known.get(r) for r in rows],
                           [r in active for r in rows], centre, e.peak, e.context))
    return out


def _snippet(ex: Exemplars, u: int, probe: ProbeSet, row: int, window: int) -> Snippet:
    """A token window around a sampled row (only the centre's activation is known)."""
    rows, centre = probe.window(row, window)
    value = float(ex.reservoir[(ex.reservoir_rows == row).nonzero()[0, 0], u])
    acts: list[float | None] = [value if r == row else None for r in rows]
    return Snippet([probe.vocab[int(probe.token[r])] for r in rows], acts, [False] * len(rows), centre, value,
                   int(probe.context[row]))

