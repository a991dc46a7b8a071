"""Plotly figures of base-vs-tuned comparisons (heatmaps on one shared scale, the aligned map), shared by the
app and the HTML report; plotly is imported inside each function.

Labels and hover text may come from users: `plot_text` escapes the few HTML tags Plotly reads in them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Values are printed in the cells up to this many texts (above it they are in the hover only), and each
# cell is at least CELL_PX high so two decimals fit in it.
MAX_CELL_VALUES = 20
CELL_PX = 34
LABEL_CHARS = 26
ROLE_COLOURS = {"base": "#2563eb", "tuned": "#ea580c"}


def plot_text(text: Any) -> str:
    """User text inside a Plotly label or hover: Plotly reads a few HTML tags there, so escape them."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shared_range(*matrices: np.ndarray | None) -> tuple[float, float]:
    """One colour range for several similarity matrices: from the lowest value of any to 1 (the diagonal)."""
    values = [np.asarray(m, dtype=np.float64) for m in matrices if m is not None and np.size(m)]
    low = min(float(v.min()) for v in values) if values else 0.0
    return (min(low, 0.999), 1.0)


def _short(label: str) -> str:
    return plot_text(label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…")


def heatmap(matrix: np.ndarray, labels: Sequence[str], title: str, *, zrange: tuple[float, float] | None = None,
            diverging: bool = False, value_name: str = "cosine", decimals: int = 2) -> Any:
    """A similarity matrix with its values in the cells (up to MAX_CELL_VALUES texts) and in the hover.

    `zrange`: the colour range; give the same one to every model's heatmap so equal colours mean equal
    values. Diverging (a difference): symmetric around 0, blue-white-red."""
    import plotly.graph_objects as go

    matrix = np.asarray(matrix, dtype=np.float64)
    n = len(labels)
    full = [plot_text(label) for label in labels]
    if diverging:
        limit = max(float(np.max(np.abs(matrix))) if matrix.size else 0.0, 1e-6)
        zrange = zrange or (-limit, limit)
    zmin, zmax = zrange or (float(matrix.min()), float(matrix.max()))
    show_values = n <= MAX_CELL_VALUES
    # Cell text as strings: the figure carries exactly what is printed, at the precision shown.
    text = [[f"{value:+.{decimals}f}" if diverging else f"{value:.{decimals}f}" for value in row] for row in matrix]
    figure = go.Figure(go.Heatmap(
        z=matrix, x=list(range(n)), y=list(range(n)), zmin=zmin, zmax=zmax,
        colorscale="RdBu_r" if diverging else "Viridis", zmid=0 if diverging else None,
        customdata=np.array([[(a, b) for b in full] for a in full], dtype=object).tolist(),
        text=text, texttemplate="%{text}" if show_values else None,
        textfont={"size": 12 if n <= 12 else 10},
        colorbar={"title": {"text": value_name}, "thickness": 12},
        hovertemplate="%{customdata[0]}<br>%{customdata[1]}<br>" + plot_text(value_name)
                      + " %{z:." + str(decimals + 1) + "f}<extra></extra>",
        xgap=1, ygap=1))
    ticks = {"tickvals": list(range(n)), "ticktext": [_short(label) for label in labels], "showgrid": False}
    longest = max((len(_short(label)) for label in labels), default=0)
    labels_px = 40 + 6 * longest
    figure.update_layout(title={"text": plot_text(title)}, height=int(90 + labels_px + CELL_PX * n),
                         margin={"l": 10, "r": 10, "t": 50, "b": 10},
                         xaxis={**ticks, "tickangle": -45, "side": "bottom"},
                         yaxis={**ticks, "autorange": "reversed"})
    return figure


def aligned_map(texts: Sequence[str], base: np.ndarray, tuned: np.ndarray | None, *, groups: Sequence[Any] | None = None,
                group_name: str = "group", show_moves: bool = False, title: str = "",
                explained: np.ndarray | None = None) -> Any:
    """Base (circles) and tuned (diamonds) points in one frame, coloured by `groups`; with show_moves a
    grey line joins each text's base and tuned position."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    base = np.asarray(base, dtype=np.float64)
    labels = [plot_text(t) for t in texts]
    group_values = ["(all)"] * len(labels) if groups is None else [plot_text(g) for g in groups]
    palette = qualitative.Plotly + qualitative.D3 + qualitative.Set3
    names = list(dict.fromkeys(group_values))
    colour = {name: palette[i % len(palette)] for i, name in enumerate(names)}
    figure = go.Figure()
    if tuned is not None and show_moves:
        xs: list[float | None] = []
        ys: list[float | None] = []
        for (bx, by), (tx, ty) in zip(base.tolist(), np.asarray(tuned).tolist(), strict=True):
            xs += [bx, tx, None]
            ys += [by, ty, None]
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": "rgba(120,120,120,0.35)", "width": 1},
                                    hoverinfo="skip", name="move", showlegend=True))
    group_array = np.array(group_values, dtype=object)
    for role, coords, symbol in (("base", base, "circle"), ("tuned", tuned, "diamond")):
        if coords is None:
            continue
        coords = np.asarray(coords, dtype=np.float64)
        for name in names:
            rows = np.flatnonzero(group_array == name)
            # Without groups the two models get a colour each; with groups, colour is the group.
            tint = colour[name] if groups is not None else ROLE_COLOURS[role]
            figure.add_trace(go.Scatter(
                x=coords[rows, 0].tolist(), y=coords[rows, 1].tolist(), mode="markers",
                marker={"symbol": symbol, "color": tint, "size": 7 if role == "base" else 8,
                        "line": {"width": 1, "color": "white"} if role == "base" else {"width": 0}},
                name=f"{name} · {role}" if groups is not None else role, legendgroup=name,
                customdata=[[labels[i], name] for i in rows],
                hovertemplate=f"%{{customdata[0]}}<br>{plot_text(group_name)}: %{{customdata[1]}}<br>{role}"
                              "<extra></extra>"))
    axis = ["axis 1", "axis 2"]
    if explained is not None:
        axis = [f"PC{i + 1} ({explained[i]:.0%} of the variance)" for i in range(2)]
    figure.update_layout(title={"text": plot_text(title)}, height=600, xaxis_title=axis[0], yaxis_title=axis[1],
                         legend={"orientation": "h", "y": -0.15}, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return figure
