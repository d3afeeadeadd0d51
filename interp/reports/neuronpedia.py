"""Unit labels as Neuronpedia feature records: gzipped JSONL batches to upload or compare.

:func:`write_neuronpedia` turns a :class:`~interp.labeling.results.LabelSet`
into ``batch-0.jsonl.gz``, ``batch-1.jsonl.gz``, … (one JSON object per line,
one line per unit), each record laid out like a Neuronpedia feature (its
``Neuron`` row with the ``explanations`` and ``activations`` nested, as
Neuronpedia's feature API returns them):

* ``modelId``, ``layer`` (the source id, e.g. ``"6-res-sae"``), ``index`` (a string, as in Neuronpedia),
  ``sourceSetName``;
* stats: ``maxActApprox`` (the unit's maximum), ``frac_nonzero`` (exact fraction of positions > 0);
* histograms: ``freq_hist_data_bar_heights`` / ``freq_hist_data_bar_values`` (the labeling's
  activation histogram: counts and bin CENTRES, parallel arrays of equal length, as Neuronpedia's
  hover needs); ``logits_hist_data_bar_*`` (the unit's output direction through the unembedding);
* ± logits: ``pos_str`` / ``pos_values`` and ``neg_str`` / ``neg_values``;
* ``explanations``: ``[{description, typeName, explanationModelName, scoreV1, scores}]`` where
  ``scoreV1`` is the held-out detection AUROC and ``scores`` lists every held-out score and baseline
  (``explanationScoreTypeName``, ``value``);
* ``activations``: ``[{tokens, values, maxValue, maxValueTokenIndex, minValue, binMin, binMax,
  binContains, qualifyingTokenIndex, dataIndex, …}]``: the top exemplars with ``binMin = -1`` (Neuronpedia's
  mark of the top group, ``binMax`` the unit's maximum), then the lower-quantile samples grouped into
  ``n_bins`` equal-width intervals of ``(0, threshold)`` (``binContains``: the fraction of positions in
  the interval, from the histogram);
* ``interp``: what Neuronpedia has no field for (label, key, kind, PMI, threshold, the output-token
  strings, image exemplars), for lossless comparisons.

What needs a model: the ± logit values and the logits histogram come from the unit's output
direction (row of ``W_out`` for MLP neurons, of the SAE's ``W_dec`` for latents) times ``W_U``, so
they are filled only when ``model`` (and ``sae`` for latents) is passed. Without them the
labeling keeps only token strings; these go to ``interp.output_top`` / ``interp.output_bottom`` and
``pos_*``/``neg_*`` stay empty, because Neuronpedia reads ``pos_str[i]`` with ``pos_values[i]``.

Numbers: NaN and ±inf become ``null`` in scalar fields Neuronpedia allows to be null and ``0`` in arrays
and non-null fields (``frac_nonzero``, ``scoreV1``); a token whose activation the labeling did not keep
(outside the top rows) is written as ``0``. Image units get no ``activations`` (Neuronpedia's are
token sequences); their exemplars are listed under ``interp.images``.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path
from typing import Any

from interp.cache import atomic_write
from interp.errors import InputError
from interp.labeling.results import LabelSet, Snippet, UnitLabel

__all__ = ["write_neuronpedia", "read_neuronpedia", "neuronpedia_records", "default_layer_id"]

_HOOK_KINDS = {"hook_resid_pre": "res-pre", "hook_resid_mid": "res-mid", "hook_resid_post": "res",
               "hook_mlp_out": "mlp-out", "hook_attn_out": "att-out", "mlp.hook_post": "mlp",
               "mlp.hook_pre": "mlp-pre", "attn.hook_z": "att", "attn.hook_result": "att"}  # fmt: skip
_LOGIT_FIELDS = (
    "pos_str",
    "pos_values",
    "neg_str",
    "neg_values",
    "logits_hist_data_bar_heights",
    "logits_hist_data_bar_values",
)
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_BATCH = re.compile(r"^batch-(\d+)\.jsonl\.gz$")


def _f(x: Any) -> float | None:
    """A finite float, or ``None``."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _f0(x: Any) -> float:
    """A finite float, or 0 (array entries and Neuronpedia's non-null fields)."""
    v = _f(x)
    return 0.0 if v is None else v


def default_layer_id(labels: LabelSet) -> str:
    """Neuronpedia source id of a labeling: ``{layer}-{kind}-{sae|neurons|heads}``, e.g. ``6-res-sae``.

    Raises:
        InputError: the labels' hook (``meta["hook"]``) names no block; pass ``layer_id`` instead.
    """
    from interp.models.contract import layer_of_hook

    hook = str(labels.meta.get("hook") or "")
    layer = layer_of_hook(hook)
    if layer is None:
        raise InputError(f"cannot tell the Neuronpedia layer id of labels with hook {hook!r}. Pass layer_id "
                         "(e.g. '6-res-mysae'; `interp report --layer-id`).")  # fmt: skip
    rest = hook.split(".", 2)[2] if hook.count(".") >= 2 else ""
    kind = _HOOK_KINDS.get(rest, re.sub(r"[^a-z0-9]+", "-", rest.lower()).strip("-") or "units")
    what = "sae" if labels.meta.get("sae") else "heads" if kind == "att" else "neurons"
    return f"{layer}-{kind}-{what}"


def _ids(labels: LabelSet, model_id: str | None, layer_id: str | None) -> tuple[str, str]:
    """Validated ``(modelId, layer)``."""
    if model_id is None:
        model_id = re.sub(r"[^a-z0-9_.-]+", "-", str(labels.meta.get("model") or "").lower()).strip("-") or None
    if model_id is None:
        raise InputError("the labels name no model (meta['model']). Pass model_id (Neuronpedia's model id, e.g. "
                         "'gpt2-small'; `interp report --model-id`).")  # fmt: skip
    layer_id = layer_id or default_layer_id(labels)
    for what, v in (("model_id", model_id), ("layer_id", layer_id)):
        if not _ID.match(v):
            raise InputError(f"{what} {v!r} is not a Neuronpedia id: use lowercase letters, digits, '-', '_', '.'.")
    return model_id, layer_id


def _bar(counts: list[Any], edges: list[Any]) -> tuple[list[float], list[float]]:
    """Histogram as (heights, bin centres), equal lengths."""
    n = min(len(counts), max(len(edges) - 1, 0))
    return [_f0(c) for c in counts[:n]], [(_f0(edges[i]) + _f0(edges[i + 1])) / 2 for i in range(n)]


def _frac_between(u: UnitLabel, lo: float, hi: float) -> float:
    """Fraction of positions with activation in ``(lo, hi]``, from the histogram (resolution: its bins).

    The positions at exactly 0 (``1 - frac_positive``, exact) are taken out of the bar holding 0 first,
    so an interval starting at 0 counts only activating positions.
    """
    counts = [_f0(c) for c in u.histogram.get("counts") or []]
    edges = [_f0(e) for e in u.histogram.get("edges") or []]
    total = sum(counts)
    if not total or len(edges) < 2:
        return 0.0
    for j in range(min(len(counts), len(edges) - 1)):
        if edges[j] <= 0.0 < edges[j + 1]:
            counts[j] = max(counts[j] - (1.0 - _f0(u.frac_positive)) * total, 0.0)
            break
    inside = 0.0
    for c, a, b in zip(counts, edges[:-1], edges[1:], strict=False):
        if b > a:
            inside += c * max(0.0, min(b, hi) - max(a, lo)) / (b - a)
    return min(max(inside / total, 0.0), 1.0)


def _activation(s: Snippet, ids: dict[str, str], bin_min: float, bin_max: float, contains: float) -> dict[str, Any]:
    """One Neuronpedia activation record from a token window."""
    values = [_f0(a) for a in s.acts]
    known = [(a if _f(a) is not None else -math.inf, i) for i, a in enumerate(s.acts)]
    peak = max(known)[1] if known and max(known)[0] > -math.inf else s.centre
    return {**ids, "tokens": list(s.tokens), "values": values, "maxValue": values[peak] if values else 0.0,
            "maxValueTokenIndex": peak, "minValue": min(values) if values else 0.0, "binMin": bin_min,
            "binMax": bin_max, "binContains": contains, "qualifyingTokenIndex": s.centre,
            "dataIndex": str(s.context)}  # fmt: skip


def _activations(u: UnitLabel, ids: dict[str, str], n_bins: int, max_activations: int) -> list[dict[str, Any]]:
    """Top exemplars (``binMin = -1``), then lower-quantile samples in equal-width intervals of (0, threshold)."""
    top_max = _f(u.max) or max((_f0(s.value) for s in u.exemplars), default=0.0)
    thr = _f(u.threshold) or 0.0
    top_frac = _frac_between(u, thr, math.inf) if thr > 0 else -1.0
    out = [_activation(s, ids, -1.0, top_max, top_frac) for s in u.exemplars[:max_activations]]
    if thr > 0 and u.lower:
        width = thr / n_bins
        bins: dict[int, list[Snippet]] = {}
        for s in u.lower:
            v = _f0(s.value)
            b = math.floor(v / width + 1e-9)  # a value on an edge goes to the bin above it
            bins.setdefault(min(max(b, 0), n_bins - 1), []).append(s)
        for b in sorted(bins, reverse=True):
            lo, hi = b * width, (b + 1) * width
            contains = _frac_between(u, lo, hi)
            out += [_activation(s, ids, lo, hi, contains) for s in sorted(bins[b], key=lambda s: -_f0(s.value))]
    return out


def _explanation(u: UnitLabel, ids: dict[str, str], meta: dict[str, Any]) -> dict[str, Any]:
    """The unit's label as a Neuronpedia explanation, with its held-out scores."""
    scores = [{"explanationScoreTypeName": k, "explanationScoreModelName": "interp-heldout", "value": _f(v)}
              for k, v in u.scores.items() if k != "n" and isinstance(v, (int, float))]  # fmt: skip
    return {**ids, "description": u.text, "typeName": "interp-milan-pmi",
            "explanationModelName": f"interp-{meta.get('describer') or 'offline'}",
            "scoreV1": _f0(u.scores.get("auroc")), "scores": scores}  # fmt: skip


def _logit_tables(model: Any, sae: Any, hook: str, units: list[int], k: int) -> dict[int, dict[str, list[Any]]]:
    """Per unit: top/bottom ``k`` logit-lens tokens with values, and a 30-bin histogram of all its logits."""
    import torch

    from interp.labeling.probe import token_strings
    from interp.labeling.vocab import vocab_projection
    from interp.models.contract import layer_of_hook

    proj = vocab_projection(model)
    if sae is not None:
        dirs = proj.sae_directions(sae)
    elif hook.endswith("mlp.hook_post") and layer_of_hook(hook) is not None:
        dirs = proj.neuron_directions(int(layer_of_hook(hook)))  # type: ignore[arg-type]
    else:
        raise InputError(
            f"units of {hook!r} have no output direction, so no ± logits. Pass sae= for SAE latents, "
            "or label an MLP hook (blocks.L.mlp.hook_post); leave model out to skip the logits."
        )
    vocab = token_strings(model.tokenizer) if getattr(model, "tokenizer", None) is not None else None
    out: dict[int, dict[str, list[Any]]] = {}
    for unit in units:
        logits = proj.project(dirs[unit : unit + 1])[0]  # [d_vocab]
        top, bot = logits.topk(k), logits.topk(k, largest=False)
        counts = torch.histc(logits, bins=30, min=float(logits.min()), max=float(logits.max()) + 1e-6)
        edges = torch.linspace(float(logits.min()), float(logits.max()) + 1e-6, 31)
        name = (lambda i: vocab[i]) if vocab else str  # noqa: E731
        heights, values = _bar(counts.tolist(), edges.tolist())
        out[unit] = {"pos_str": [name(i) for i in top.indices.tolist()], "pos_values": top.values.tolist(),
                     "neg_str": [name(i) for i in bot.indices.tolist()], "neg_values": bot.values.tolist(),
                     "logits_hist_data_bar_heights": heights, "logits_hist_data_bar_values": values}  # fmt: skip
    return out


def _record(u: UnitLabel, labels: LabelSet, ids: dict[str, str], logits: dict[str, list[Any]] | None,
            n_bins: int, max_activations: int) -> dict[str, Any]:  # fmt: skip
    """One unit as a Neuronpedia feature record."""
    heights, values = _bar(u.histogram.get("counts") or [], u.histogram.get("edges") or [])
    logits = logits or {k: [] for k in _LOGIT_FIELDS}
    return {
        **ids, "sourceSetName": ids["layer"].split("-", 1)[-1],
        "maxActApprox": _f(u.max), "frac_nonzero": _f0(u.frac_positive),
        "freq_hist_data_bar_heights": heights, "freq_hist_data_bar_values": values,
        **{k: [v if k.endswith("_str") else _f0(v) for v in logits[k]] for k in _LOGIT_FIELDS},
        "explanations": [_explanation(u, ids, labels.meta)] if u.key or u.description else [],
        "activations": _activations(u, ids, n_bins, max_activations),
        "interp": {"label": u.label, "key": u.key, "kind": u.kind, "pmi": _f(u.pmi), "p_given_e": _f(u.p_given_e),
                   "p": _f(u.p), "threshold": _f(u.threshold), "output_top": list(u.output_top),
                   "output_bottom": list(u.output_bottom), "hook": str(labels.meta.get("hook") or ""),
                   "images": [{"image": e.image, "key": e.key, "value": _f(e.value)} for e in u.images]},
    }  # fmt: skip


def neuronpedia_records(
    labels: LabelSet, *, model_id: str | None = None, layer_id: str | None = None, model: Any = None,
    sae: Any = None, n_logits: int = 10, n_bins: int = 5, max_activations: int = 20,
) -> list[dict[str, Any]]:  # fmt: skip
    """One Neuronpedia feature record per unit (the layout is in the module docstring).

    Args:
        labels: the labels.
        model_id: Neuronpedia model id (default: the labels' ``meta["model"]``, lowercased).
        layer_id: Neuronpedia source id (default :func:`default_layer_id`, e.g. ``6-res-sae``).
        model: the labelled model, to compute ± logit values and the logits histogram (optional).
        sae: the SAE whose latents were labelled (with ``model``).
        n_logits: tokens in each of ``pos_str`` and ``neg_str``.
        n_bins: intervals of ``(0, threshold)`` the lower-quantile samples are grouped into.
        max_activations: most top exemplars per unit.

    Raises:
        InputError: no model id or layer id can be found or they are not Neuronpedia ids; a model
            passed for units without an output direction.
    """
    if n_bins < 1 or n_logits < 1:
        raise InputError(f"n_bins and n_logits must be ≥ 1; got {n_bins}, {n_logits}.")
    mid, lid = _ids(labels, model_id, layer_id)
    units = [u.unit for u in labels.units]
    logits = _logit_tables(model, sae, str(labels.meta.get("hook") or ""), units, n_logits) if model else {}
    return [_record(u, labels, {"modelId": mid, "layer": lid, "index": str(u.unit)}, logits.get(u.unit), n_bins,
                    max_activations) for u in labels.units]  # fmt: skip


def write_neuronpedia(
    labels: LabelSet, out_dir: Path | str, *, model_id: str | None = None, layer_id: str | None = None,
    batch_size: int = 256, model: Any = None, sae: Any = None, **kwargs: Any,
) -> list[Path]:  # fmt: skip
    """Write the labels as Neuronpedia feature records in ``out_dir/batch-N.jsonl.gz`` (atomically).

    Args:
        labels: the labels.
        out_dir: output directory (created); older ``batch-*.jsonl.gz`` beyond the new ones are removed.
        model_id / layer_id / model / sae: see :func:`neuronpedia_records`.
        batch_size: records per file.
        **kwargs: more :func:`neuronpedia_records` options (``n_logits``, ``n_bins``, ``max_activations``).

    Returns:
        The batch files, in order.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be ≥ 1; got {batch_size}.")
    records = neuronpedia_records(labels, model_id=model_id, layer_id=layer_id, model=model, sae=sae, **kwargs)
    out = Path(out_dir)
    paths = []
    for b, start in enumerate(range(0, len(records), batch_size)):
        text = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n"
                       for r in records[start : start + batch_size])  # fmt: skip
        data = gzip.compress(text.encode(), mtime=0)  # mtime 0: the same labels give the same bytes
        paths.append(out / f"batch-{b}.jsonl.gz")
        atomic_write(paths[-1], lambda f, data=data: f.write(data))
    for stale in out.glob("batch-*.jsonl.gz"):
        m = _BATCH.match(stale.name)
        if m and int(m.group(1)) >= len(paths):
            stale.unlink()
    return paths


def read_neuronpedia(directory: Path | str) -> list[dict[str, Any]]:
    """All records of the ``batch-N.jsonl.gz`` files in ``directory``, in batch order.

    Raises:
        InputError: the directory holds no batch files.
    """
    d = Path(directory)
    files = sorted((int(m.group(1)), p) for p in d.glob("batch-*.jsonl.gz") if (m := _BATCH.match(p.name)))
    if not files:
        raise InputError(f"no batch-N.jsonl.gz files in {d}. Write them with write_neuronpedia or "
                         "`interp report LABELS --neuronpedia DIR`.")  # fmt: skip
    records = []
    for _, p in files:
        with gzip.open(p, "rt", encoding="utf-8") as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records
