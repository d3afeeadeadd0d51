"""Plotly figures of an evaluation, written as one self-contained HTML file (plotly.js inlined: renders offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

__all__ = ["frequency_figure", "metrics_figure", "write_eval_html"]


def frequency_figure(freqs: dict[str, torch.Tensor]) -> Any:
    """Histogram of log10 latent firing frequency, one trace per hook (dead latents at -10)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for hook, f in freqs.items():
        fig.add_trace(go.Histogram(x=torch.log10(f.double() + 1e-10).tolist(), name=hook, nbinsx=60, opacity=0.75))
    fig.update_layout(title="Latent firing frequency on held-out data", barmode="overlay",
                      xaxis_title="log10 fraction of tokens a latent fires on (dead: -10)",
                      yaxis_title="latents")  # fmt: skip
    return fig


def metrics_figure(results: dict[str, dict[str, Any]]) -> Any:
    """A table of the headline metrics per hook."""
    import plotly.graph_objects as go

    keys = ["l0", "fvu", "explained_variance", "mse", "dead_fraction", "dense_fraction", "ce_loss_recovered", "kl_div",
            "ce_clean", "ce_spliced", "tokens"]  # fmt: skip
    hooks = list(results)
    cells = [[k for k in keys]] + [[_fmt(results[h].get(k)) for k in keys] for h in hooks]
    fig = go.Figure(go.Table(header={"values": ["metric", *hooks]}, cells={"values": cells}))
    fig.update_layout(title="SAE evaluation (held-out)")
    return fig


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def write_eval_html(results: dict[str, dict[str, Any]], freqs: dict[str, torch.Tensor], path: Path | str) -> Path:
    """Write the metrics table and the frequency histogram to ``path`` (atomically)."""
    from interp.reports.offline import write_figures_html

    figs = {"metrics": metrics_figure(results), "frequency": frequency_figure(freqs)}
    return write_figures_html(figs, path, title="SAE evaluation")
