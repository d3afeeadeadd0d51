"""The atlas job: every stage of the neuron atlas, each into its folder of a run directory.

:func:`build_atlas` is what ``interp atlas`` calls; each stage writes into
``runs/<name>/<stage>/`` and records ``done.json``, so a rerun skips finished
stages (:class:`~interp.runs.RunDir`). The stages:

* ``weights`` (unless ``weights=False``): data-free scores of every MLP neuron, and ``figures.html``;
* ``activations`` (``store``): streamed activation statistics;
* ``correlation`` (``compare``): universal neurons against a second model on the same tokens;
* ``entropy`` (``entropy``): the causal entropy-neuron check of the top null-space candidates;
* ``retrieval`` (``sae``, ``retrieval``): Bible-book retrieval by SAE codes, raw activations and MiniLM;
* ``search`` (``sae`` and ``search``): a pool's documents ranked by similarity to query documents;
* ``rosetta`` (``rosetta``): Rosetta neurons between DINOv2 and the concept ViT on the same images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.errors import InputError

__all__ = ["AtlasConfig", "build_atlas", "load_atlas_model"]


@dataclass(frozen=True)
class AtlasConfig:
    """What an atlas run computes.

    Attributes:
        model: registry name, local directory, or ``bible-lm-s0`` / ``bible-lm-s1`` (shipped Bible LMs).
        layers: layers to score (``None``: all).
        null_k: dimensions of ``W_U``'s effective null space.
        k_tokens: top and bottom tokens per neuron.
        store: activation store holding ``blocks.L.mlp.hook_post`` (activation statistics), or ``None``.
        compare: a second model on the same tokenizer (cross-model correlation), or ``None``.
        data: corpus for the comparison (held-out split).
        tokens: tokens for the comparison.
        figures: write ``figures.html``.
        weights: score the weights (off for runs that only want other stages; ``entropy`` needs it).
        entropy: entropy-neuron candidates to test causally (0: skip), with as many random neurons.
        entropy_layer: layer of the candidates (default the model's last).
        entropy_contexts: held-out contexts of 64 tokens of ``data`` the check runs on.
        sae: an SAE folder (SAELens layout) on ``model``, for ``retrieval`` and ``search``.
        retrieval: precision@5 of Bible-book retrieval by SAE codes, raw activations and MiniLM.
        search: query documents (a file: .txt, .jsonl, .parquet) to search ``pool`` for, by SAE codes,
            raw activations and MiniLM.
        pool: documents to search (a file or a corpus name; default ``data``'s held-out split).
        top: results per representation of ``search``.
        doc_tokens: tokens read per document by ``retrieval`` and ``search``.
        rosetta: correlate DINOv2-S/14 with the concept ViT (independent of ``model``).
        images: held-out concept images of ``rosetta``.
    """

    model: str = "smollm2-135m"
    layers: list[int] | None = None
    null_k: int = 10
    k_tokens: int = 10
    store: str | None = None
    compare: str | None = None
    data: str = "bible"
    tokens: int = 32768
    figures: bool = True
    weights: bool = True
    entropy: int = 0
    entropy_layer: int | None = None
    entropy_contexts: int = 16
    sae: str | None = None
    retrieval: bool = False
    search: str | None = None
    pool: str | None = None
    top: int = 20
    doc_tokens: int = 128
    rosetta: bool = False
    images: int = 256

    def __post_init__(self) -> None:
        if self.tokens < 64:
            raise InputError(f"tokens must be at least 64 for a correlation, got {self.tokens}.")
        if self.entropy < 0 or self.entropy_contexts < 1 or self.top < 1 or self.images < 2:
            raise InputError(f"--entropy ({self.entropy}) must be >= 0, --entropy-contexts ({self.entropy_contexts}) "
                             f"and --top ({self.top}) >= 1, --images ({self.images}) >= 2.")  # fmt: skip
        if self.entropy and not self.weights:
            raise InputError("--entropy picks its candidates from the weight scores; drop --no-weights.")
        if (self.search is not None or self.retrieval) and self.sae is None:
            raise InputError("--search and --retrieval represent documents by SAE codes: pass the SAE folder "
                             "with --sae too.")  # fmt: skip
        if self.sae is not None and self.search is None and not self.retrieval:
            raise InputError("--sae needs a stage to use it: --retrieval (the Bible-book evaluation) and/or "
                             "--search FILE.")  # fmt: skip
        if self.doc_tokens < 2:
            raise InputError(f"--doc-tokens must be at least 2 (BOS and one token), got {self.doc_tokens}.")


def load_atlas_model(name: str) -> Any:
    """A registry model, or one of the shipped Bible LMs (``bible-lm-s0``, ``bible-lm-s1``)."""
    if name.startswith("bible-lm"):
        from interp.atlas.bible_lms import load_bible_lm

        return load_bible_lm(name)
    import interp

    return interp.load_model(name)


def build_atlas(config: AtlasConfig, *, name: str = "atlas", root: str | Path = "runs", overwrite: bool = False,
                progress: bool = False) -> dict[str, Path]:  # fmt: skip
    """Run the atlas stages ``config`` asks for into ``root/name``.

    Returns:
        ``{what: path}`` of the results (tables folders, figures, summaries).
    """
    from interp.atlas.figures import write_figures
    from interp.atlas.tables import load_tables, save_tables
    from interp.atlas.weights import WeightConfig, weight_scores
    from interp.runs import RunDir

    needs_model = config.weights or config.compare is not None or config.entropy or config.sae is not None
    model = load_atlas_model(config.model) if needs_model else None  # an unknown name fails before the run dir
    run = RunDir(name, config, root=root, overwrite=overwrite)
    files: dict[str, Path] = {"run": run.path}
    if config.weights:
        if not run.is_done("weights"):
            wc = WeightConfig(k_tokens=config.k_tokens, null_k=config.null_k)
            table = weight_scores(model, config.layers, wc, progress=progress)
            save_tables(table, run.stage("weights"))
            run.mark_done("weights", {"neurons": len(table), "null_k": config.null_k,
                                      "singular_values_tail": table.attrs["singular_values_tail"]})  # fmt: skip
        files["weights"] = run.path / "weights"
        if config.figures:
            files["figures"] = write_figures(load_tables(files["weights"]), run.path / "figures.html")
    if config.store is not None:
        files["activations"] = _activation_stage(run, config, progress)
    if config.compare is not None:
        files["correlation"] = _correlation_stage(run, model, config, progress)
    if config.entropy:
        files["entropy"] = _entropy_stage(run, model, config)
    if config.sae is not None:
        files |= _sae_stages(run, model, config)
    if config.rosetta:
        files["rosetta"] = _rosetta_stage(run, config)
    return files


def _activation_stage(run: Any, config: AtlasConfig, progress: bool) -> Path:
    from interp.atlas.activations import store_activation_stats
    from interp.atlas.tables import save_tables

    if not run.is_done("activations"):
        table = store_activation_stats(config.store, layers=config.layers, progress=progress)
        save_tables(table, run.stage("activations"))
        run.mark_done("activations", {"neurons": len(table), "store": config.store})
    return run.path / "activations"


def _correlation_stage(run: Any, model: Any, config: AtlasConfig, progress: bool) -> Path:
    from interp.atlas.tables import save_tables
    from interp.atlas.universal import model_correlation

    if not run.is_done("correlation"):
        other = load_atlas_model(config.compare)
        result = model_correlation(model, other, config.data, layers=config.layers, n_tokens=config.tokens,
                                   progress=progress)  # fmt: skip
        save_tables(result.table, run.stage("correlation"))
        run.mark_done("correlation", result.summary())
    return run.path / "correlation"


def _entropy_stage(run: Any, model: Any, config: AtlasConfig) -> Path:
    """Total vs direct entropy effect of the top null-space neurons of one layer, against random ones."""
    from interp.atlas.entropy import entropy_candidates, entropy_effects
    from interp.atlas.figures import entropy_figure
    from interp.atlas.tables import load_tables, write_parquet
    from interp.atlas.universal import comparison_tokens
    from interp.reports.offline import write_figures_html

    out = run.path / "entropy"
    if not run.is_done("entropy"):
        layer = int(model.cfg.n_layers) - 1 if config.entropy_layer is None else config.entropy_layer
        ctx = min(64, int(model.cfg.n_ctx))
        tokens, _ = comparison_tokens(model, model, config.data, config.entropy_contexts * (ctx - 1), ctx)
        table = load_tables(run.path / "weights")
        df = entropy_effects(model, tokens, entropy_candidates(table, layer, config.entropy), n_random=config.entropy)
        write_parquet(df, run.stage("entropy") / "effects.parquet")
        write_figures_html({"entropy": entropy_figure(df)}, out / "effects.html", title="entropy neurons")
        med = df.groupby("group").ratio.median()
        best = df[df.group == "candidate"].nlargest(1, "ratio").iloc[0]
        run.mark_done("entropy", {"layer": layer, "tokens": int(tokens.numel()), "candidates": config.entropy,
                                  "median_ratio": {k: float(v) for k, v in med.items()},
                                  "top_candidate": f"{int(best.layer)}:{int(best.neuron)}",
                                  "top_ratio": float(best.ratio)})  # fmt: skip
    return out


def _sae_stages(run: Any, model: Any, config: AtlasConfig) -> dict[str, Path]:
    """The retrieval evaluation and the search, by the SAE's codes against raw activations and MiniLM."""
    from interp.atlas.retrieval import evaluate_retrieval, search_documents
    from interp.atlas.tables import write_parquet
    from interp.cache import atomic_write_text
    from interp.datasets.text import TEXT_DATASETS, load_texts
    from sae_training.saelens_io import load_sae

    sae = load_sae(config.sae)
    hook = sae.cfg.metadata.hook_name
    if hook not in model.hook_dict:
        raise InputError(f"the SAE at {config.sae} reads {hook!r}, which {config.model} does not have. "
                         "Pass the --model the SAE was trained on.")  # fmt: skip
    files = {}
    if config.retrieval:
        files["retrieval"] = run.path / "retrieval"
        if not run.is_done("retrieval"):
            df = evaluate_retrieval(model, hook, sae, max_tokens=config.doc_tokens)
            write_parquet(df, run.stage("retrieval") / "precision.parquet")
            mean = df[df.book == -1]
            run.mark_done("retrieval", {"hook": hook, "sae": config.sae, "precision_at_5": {
                f"{r.representation}/{r.similarity}": float(r.precision) for r in mean.itertuples()},
                "chance": float(mean.chance.iloc[0])})  # fmt: skip
    if config.search is not None:
        files["search"] = run.path / "search"
        if not run.is_done("search"):
            queries = load_texts(config.search, "all").docs
            pool_name = config.pool or config.data
            pool = load_texts(pool_name, "heldout" if pool_name in TEXT_DATASETS else "all").docs
            df = search_documents(model, hook, sae, queries, pool, top=config.top, max_tokens=config.doc_tokens)
            write_parquet(df, run.stage("search") / "results.parquet")
            atomic_write_text(run.path / "search" / "results.csv",
                              df.assign(text=df.text.str.slice(0, 300)).to_csv(index=False))  # fmt: skip
            run.mark_done("search", {"queries": len(queries), "pool": len(pool), "pool_source": pool_name,
                                     "top": config.top, "hook": hook})  # fmt: skip
    return files


def _rosetta_stage(run: Any, config: AtlasConfig) -> Path:
    from interp.atlas.tables import save_tables
    from interp.atlas.vision import dinov2_vs_concept_vit

    if not run.is_done("rosetta"):
        result = dinov2_vs_concept_vit(config.images)
        save_tables(result.table, run.stage("rosetta"))
        run.mark_done("rosetta", result.summary())
    return run.path / "rosetta"

