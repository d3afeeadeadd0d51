"""The atlas's classic plots as plotly figures, written to one offline HTML file.

* output-weight norm against null-space fraction (entropy-neuron candidates
  sit top right: large norm, much of it invisible to the unembedding);
* the input-output cosine distribution by layer, and the share of each IO class
  (enrichment early, depletion late, in Gerstner & Schütze's models);
* vocabulary kurtosis against skew (prediction neurons: high kurtosis, positive
  skew; suppression neurons: high kurtosis, negative skew).

:func:`entropy_figure` plots the causal check (:mod:`interp.atlas.entropy`):
each tested neuron's total entropy effect against its direct one, on log
axes with the diagonal, so entropy neurons stand far above it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["atlas_figures", "write_figures", "entropy_figure"]


def _hover(table: Any) -> list[str]:
    tops = table["top_tokens"] if "top_tokens" in table else [[]] * len(table)
    return [f"L{r.layer}:{r.neuron} top {list(t)[:5]}" for r, t in zip(table.itertuples(), tops, strict=True)]


def atlas_figures(table: Any) -> dict[str, Any]:
    """``{name: plotly Figure}`` for the three classic plots of a weight-score table."""
    import plotly.express as px
    import plotly.graph_objects as go

    t = table.assign(hover=_hover(table), layer_name=table["layer"].astype(str))
    figs: dict[str, Any] = {}
    figs["norm_vs_null"] = px.scatter(
        t, x="null_frac", y="w_out_norm", color="layer", hover_name="hover", opacity=0.6,
        title="Output-weight norm vs fraction in W_U's effective null space (entropy-neuron candidates: top right)",
        labels={"null_frac": "fraction of ||w_out||² in the null space", "w_out_norm": "||w_out||"})  # fmt: skip
    box = go.Figure()
    for col in [c for c in ("cos_in_out", "cos_gate_out", "cos_gate_in") if c in t]:
        box.add_trace(go.Box(x=t["layer"], y=t[col], name=col, boxpoints=False))
    box.update_layout(boxmode="group", title="Input-output cosines by layer (enrichment > 0 > depletion)",
                      xaxis_title="layer", yaxis_title="cosine")  # fmt: skip
    figs["io_cosines"] = box
    share = t.groupby("layer")["io_class"].value_counts(normalize=True).rename("share").reset_index()
    figs["io_classes"] = px.bar(share, x="layer", y="share", color="io_class", title="IO class share by layer")
    figs["kurtosis_vs_skew"] = px.scatter(
        t, x="vocab_skew", y="vocab_kurtosis", color="layer", hover_name="hover", log_y=True, opacity=0.6,
        title="Vocabulary kurtosis vs skew of w_out·W_U (prediction: skew > 0, suppression: skew < 0)")  # fmt: skip
    return figs


def write_figures(table: Any, path: Path | str) -> Path:
    """Write :func:`atlas_figures` into one HTML file with plotly.js inlined once (opens offline)."""
    from interp.reports.offline import write_figures_html

    return write_figures_html(atlas_figures(table), path, title="neuron atlas")


def entropy_figure(effects: Any) -> Any:
    """Total against direct mean |Δ entropy| per neuron (an :func:`~interp.atlas.entropy_effects` table).

    Log axes; the dashed line is total = direct. Candidates are coloured apart from
    the random neurons of the same layers.
    """
    import plotly.express as px
    import plotly.graph_objects as go

    t = effects.assign(name=[f"L{r.layer}:{r.neuron} (ratio {r.ratio:.2f})" for r in effects.itertuples()])
    fig = px.scatter(t, x="direct_abs", y="total_abs", color="group", hover_name="name", log_x=True, log_y=True,
                     title="Entropy neurons: total (mean ablation) vs direct (frozen final norm) entropy effect",
                     labels={"direct_abs": "direct mean |ΔH| (nats)",
                             "total_abs": "total mean |ΔH| (nats)"})  # fmt: skip
    ends = [float(min(t.direct_abs.min(), t.total_abs.min())), float(max(t.direct_abs.max(), t.total_abs.max()))]
    fig.add_trace(go.Scatter(x=ends, y=ends, mode="lines", name="total = direct",
                             line={"dash": "dash", "color": "grey"}))  # fmt: skip
    return fig
