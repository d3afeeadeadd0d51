"""The neuron atlas: per-neuron scores from weights, activations, cross-model correlation and causal checks.

Modules: :mod:`~interp.atlas.weights` (data-free scores of every MLP neuron:
input-output cosines and IO class, vocabulary moments and top tokens,
null-space fraction, frequency alignment), :mod:`~interp.atlas.frequency`
(cached unigram counts), :mod:`~interp.atlas.activations` (streamed activation
statistics, running correlations), :mod:`~interp.atlas.universal` (universal
neurons between two models in one pass), :mod:`~interp.atlas.bible_lms` (the
project's two-seed Bible LMs), :mod:`~interp.atlas.tables` /
:mod:`~interp.atlas.figures` (Parquet per layer, plotly HTML),
:mod:`~interp.atlas.entropy` (the causal entropy-neuron check),
:mod:`~interp.atlas.retrieval` (search in SAE-feature space),
:mod:`~interp.atlas.vision` (Rosetta neurons between ViTs),
:mod:`~interp.atlas.run` (the ``interp atlas`` job).

>>> table = weight_scores(model)                          # doctest: +SKIP
>>> res = model_correlation(load_bible_lm("bible-lm-s0"), load_bible_lm("bible-lm-s1"), "bible")  # doctest: +SKIP

Names resolve on first use.
"""

from __future__ import annotations

from interp._lazy import lazy_exports

_EXPORTS = {
    "WeightConfig": "interp.atlas.weights",
    "weight_scores": "interp.atlas.weights",
    "layer_weight_scores": "interp.atlas.weights",
    "null_space": "interp.atlas.weights",
    "unigram_counts": "interp.atlas.frequency",
    "log_frequency": "interp.atlas.frequency",
    "ActivationStats": "interp.atlas.activations",
    "RunningCorrelation": "interp.atlas.activations",
    "store_activation_stats": "interp.atlas.activations",
    "CorrelationResult": "interp.atlas.universal",
    "model_correlation": "interp.atlas.universal",
    "comparison_tokens": "interp.atlas.universal",
    "load_bible_lm": "interp.atlas.bible_lms",
    "save_tables": "interp.atlas.tables",
    "load_tables": "interp.atlas.tables",
    "atlas_columns": "interp.atlas.tables",
    "load_atlas": "interp.atlas.tables",
    "write_figures": "interp.atlas.figures",
    "atlas_figures": "interp.atlas.figures",
    "entropy_effects": "interp.atlas.entropy",
    "entropy_candidates": "interp.atlas.entropy",
    "document_vectors": "interp.atlas.retrieval",
    "text_embeddings": "interp.atlas.retrieval",
    "rank_by_similarity": "interp.atlas.retrieval",
    "precision_at_k": "interp.atlas.retrieval",
    "evaluate_retrieval": "interp.atlas.retrieval",
    "vision_correlation": "interp.atlas.vision",
    "dinov2_vs_concept_vit": "interp.atlas.vision",
    "AtlasConfig": "interp.atlas.run",
    "build_atlas": "interp.atlas.run",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
