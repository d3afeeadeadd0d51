"""An interactive plotly drawing of a circuit: nodes by layer, edges coloured by sign, width by |score|.

Columns are layers (``input`` left, ``logits`` right; an MLP sits half a column
after its layer's heads). A receiver's q/k/v edges from one upstream node are
drawn as one line scored by their sum; hovering an edge's midpoint lists the
parts. ``fig.write_html(path, include_plotlyjs=True)`` gives a file that works
offline.
"""

from __future__ import annotations

from typing import Any

from circuits.result import Circuit, node_order

__all__ = ["circuit_figure", "node_positions"]

_POS_COLOR, _NEG_COLOR = "#2166ac", "#b2182b"


def node_positions(circuit: Circuit) -> dict[str, tuple[float, float]]:
    """``{node: (x, y)}`` for every node of the graph (KV groups beside their query heads)."""
    g = circuit.graph
    pos: dict[str, tuple[float, float]] = {"input": (-1.0, (g.n_heads - 1) / 2)}
    for layer in range(g.n_layers):
        for h in range(g.n_heads):
            pos[f"a{layer}.h{h}"] = (float(layer), float(h))
        if g.gqa:
            per = g.n_heads // g.n_kv_heads
            for kv in range(g.n_kv_heads):
                pos[f"a{layer}.kv{kv}"] = (layer - 0.25, kv * per + (per - 1) / 2)
        if g.has_mlp:
            pos[f"m{layer}"] = (layer + 0.5, (g.n_heads - 1) / 2)
    pos["logits"] = (float(g.n_layers), (g.n_heads - 1) / 2)
    return pos


def _node_edges(circuit: Circuit) -> dict[tuple[str, str], list[tuple[str, float]]]:
    """Circuit edges grouped by (upstream node, receiving node): [(receiver, score), ...]."""
    grouped: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for name, score in circuit.edges().items():
        u, r = name.split("->")
        grouped.setdefault((u, circuit.graph.receiver_node(r)), []).append((r, score))
    return grouped


def circuit_figure(circuit: Circuit, *, title: str | None = None, max_width: float = 8.0, bins: int = 6) -> Any:
    """Draw ``circuit`` (its selected edges) as a plotly figure.

    Args:
        circuit: the circuit; select first (``circuit.top_k(50)``) for large graphs.
        title: figure title (default: method and edge count).
        max_width: line width of the largest |score|.
        bins: edges are drawn in this many width classes per sign (one trace each, fast for many edges).

    Returns:
        A ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    pos = node_positions(circuit)
    grouped = _node_edges(circuit)
    totals = {k: sum(s for _, s in v) for k, v in grouped.items()}
    top = max((abs(s) for s in totals.values()), default=1.0) or 1.0
    traces: dict[tuple[bool, int], tuple[list, list]] = {}
    mid_x, mid_y, mid_text, mid_color = [], [], [], []
    for (u, v), total in totals.items():
        (x0, y0), (x1, y1) = pos[u], pos[v]
        b = min(int(abs(total) / top * bins), bins - 1)
        xs, ys = traces.setdefault((total >= 0, b), ([], []))
        xs += [x0, x1, None]
        ys += [y0, y1, None]
        mid_x.append((x0 + x1) / 2)
        mid_y.append((y0 + y1) / 2)
        parts = "<br>".join(f"{u}->{r}: {s:+.4g}" for r, s in grouped[(u, v)])
        mid_text.append(f"<b>{u} → {v}</b>: {total:+.4g}<br>{parts}")
        mid_color.append(_POS_COLOR if total >= 0 else _NEG_COLOR)
    fig = go.Figure()
    for (positive, b), (xs, ys) in sorted(traces.items()):
        width = max_width * (b + 1) / bins
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                                 line={"width": width, "color": _POS_COLOR if positive else _NEG_COLOR},
                                 opacity=0.7))  # fmt: skip
    fig.add_trace(go.Scatter(x=mid_x, y=mid_y, mode="markers", marker={"size": 6, "color": mid_color, "opacity": 0.4},
                             hovertext=mid_text, hoverinfo="text", name="edges"))  # fmt: skip
    nodes = sorted({n for pair in grouped for n in pair}, key=node_order)
    fig.add_trace(go.Scatter(x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers+text",
                             text=nodes, textposition="top center", hovertext=nodes, hoverinfo="text",
                             marker={"size": 14, "color": "#444"}, name="nodes"))  # fmt: skip
    g = circuit.graph
    fig.update_layout(
        title=title or f"{circuit.method or 'circuit'}: {circuit.n_edges} edges",
        xaxis={"title": "layer", "tickvals": list(range(-1, g.n_layers + 1)),
               "ticktext": ["input"] + [str(i) for i in range(g.n_layers)] + ["logits"]},
        yaxis={"title": "head", "autorange": "reversed"},
        plot_bgcolor="white", height=max(400, 40 * g.n_heads + 200),
    )  # fmt: skip
    return fig
