"""The plotly figure of a steering sweep: effect by coefficient, effect against cost, per-sample spread.

Three panels, one trace per (method, hook): mean target log-probability lift
by coefficient with per-sample points; mean lift against mean KL on neutral
text (the trade-off; each marker a coefficient); held-out loss change by
coefficient. The prompting baseline is one star in each panel. The figure is
written with plotly's JavaScript inlined, so the HTML opens offline.
"""

from __future__ import annotations

from typing import Any

__all__ = ["sweep_figure"]

#: Axis titles of a text sweep; a result's ``meta["axes"]`` overrides them (vision sweeps).
_TEXT_AXES = {"x": "coefficient", "effect": "target log-prob lift (nats)", "kl": "KL on neutral text (nats/token)",
              "loss": "loss change (nats/token)"}  # fmt: skip
_PALETTE = ("#1f77b4", "#7f7f7f", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def _groups(result: Any) -> dict[tuple[str, str | None], list[Any]]:
    groups: dict[tuple[str, str | None], list[Any]] = {}
    for r in result.rows:
        if r.coefficient is not None:
            groups.setdefault((r.method, r.hook), []).append(r)
    return groups


def _prompting(fig: Any, row: Any) -> None:
    m = row.means()
    star = {"symbol": "star", "size": 14, "color": "#d62728"}
    for col, (x, y) in enumerate([(0.0, m["effect_mean"]), (m["kl_mean"], m["effect_mean"]),
                                  (0.0, m["loss_delta_mean"])], start=1):  # fmt: skip
        fig.add_scatter(x=[x], y=[y], mode="markers", marker=star, name="prompting", legendgroup="prompting",
                        showlegend=col == 1, row=1, col=col)  # fmt: skip


def sweep_figure(result: Any) -> Any:
    """A plotly ``Figure`` of a :class:`~interp.steering.evaluate.SweepResult`."""
    from plotly.subplots import make_subplots

    axes = _TEXT_AXES | result.meta.get("axes", {})
    fig = make_subplots(rows=1, cols=3, subplot_titles=(
        f"effect by {axes['x']}", "effect against cost", "held-out loss change"))  # fmt: skip
    for i, ((method, hook), rows) in enumerate(_groups(result).items()):
        colour = _PALETTE[i % len(_PALETTE)]
        name = f"{method} @ {hook}"
        coefs = [r.coefficient for r in rows]
        means = [r.means() for r in rows]
        eff = [m["effect_mean"] for m in means]
        fig.add_scatter(x=coefs, y=eff, mode="lines+markers", name=name, legendgroup=name, line={"color": colour},
                        error_y={"type": "data", "array": [m["effect_std"] for m in means]}, row=1, col=1)  # fmt: skip
        xs = [c for r in rows for c in [r.coefficient] * len(r.effect)]
        fig.add_scatter(x=xs, y=[e for r in rows for e in r.effect], mode="markers", legendgroup=name,
                        showlegend=False, marker={"color": colour, "size": 4, "opacity": 0.4}, row=1, col=1)
        fig.add_scatter(x=[m["kl_mean"] for m in means], y=eff, mode="lines+markers", legendgroup=name,
                        text=[f"coef {c:g}" for c in coefs], showlegend=False, line={"color": colour},
                        row=1, col=2)  # fmt: skip
        fig.add_scatter(x=coefs, y=[m["loss_delta_mean"] for m in means], mode="lines+markers", legendgroup=name,
                        showlegend=False, line={"color": colour}, row=1, col=3)  # fmt: skip
    for r in result.rows:
        if r.method == "prompting":
            _prompting(fig, r)
    targets = ", ".join(repr(t) for t in result.meta.get("target_strings", []))
    fig.update_xaxes(title_text=axes["x"], row=1, col=1)
    fig.update_xaxes(title_text=axes["kl"], row=1, col=2)
    fig.update_xaxes(title_text=axes["x"], row=1, col=3)
    fig.update_yaxes(title_text=axes["effect"], row=1, col=1)
    fig.update_yaxes(title_text=axes["effect"], row=1, col=2)
    fig.update_yaxes(title_text=axes["loss"], row=1, col=3)
    verb = "ablating units for" if result.meta.get("kind") == "ablation" else "steering toward"
    fig.update_layout(title=f"{verb} {targets}: effect against cost", height=450, width=1350)
    return fig
