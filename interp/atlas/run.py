"""The atlas job: weight scores, optional activation statistics and cross-model correlation, in a run directory.

:func:`build_atlas` is what ``interp atlas`` calls; each stage writes into
``runs/<name>/<stage>/`` and records ``done.json``, so a rerun skips finished
stages (:class:`~interp.runs.RunDir`).
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

    def __post_init__(self) -> None:
        if self.tokens < 64:
            raise InputError(f"tokens must be at least 64 for a correlation, got {self.tokens}.")


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

    run = RunDir(name, config, root=root, overwrite=overwrite)
    model = load_atlas_model(config.model)
    files: dict[str, Path] = {"run": run.path}
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
        files["activations"] = _activation_stage(run, model, config, progress)
    if config.compare is not None:
        files["correlation"] = _correlation_stage(run, model, config, progress)
    return files


def _activation_stage(run: Any, model: Any, config: AtlasConfig, progress: bool) -> Path:
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
