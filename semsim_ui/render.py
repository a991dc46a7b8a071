"""Tables and charts: result lists with rank changes, heatmaps, model cards, metrics, training curves.

User text only ever reaches the screen as dataframe cells or chart hover text, never as HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from semsim_app.comparisons import DOWN, DROPPED, NEW, UP
from semsim_ui.text import md_escape, plot_text

MOVE_COLOURS = {UP: "background-color: #d1fae5", DOWN: "background-color: #fee2e2",
                NEW: "background-color: #dbeafe", DROPPED: "background-color: #f3f4f6; color: #6b7280"}
LEGEND = (":green-background[moved up] · :red-background[moved down] · "
          ":blue-background[new in the tuned top-k] · :gray-background[dropped from the tuned top-k]")


def _row_styles(frame: pd.DataFrame) -> pd.DataFrame:
    styles = pd.DataFrame("", index=frame.index, columns=frame.columns)
    for i, move in frame["move"].items():
        styles.loc[i, :] = MOVE_COLOURS.get(move, "")
    return styles


def results_table(frame: pd.DataFrame, key: str, extra_columns: Sequence[str] = ()) -> None:
    """A result list (from comparisons.compare_rankings) with rows coloured by how they moved."""
    styled = frame.style.apply(_row_styles, axis=None).format({"score": "{:.3f}"})
    st.dataframe(styled, key=key, hide_index=True, width="stretch",
                 column_order=["rank", "change", "text", "score", *extra_columns],
                 column_config={"rank": st.column_config.NumberColumn("#", width=40),
                                "change": st.column_config.TextColumn("Δ rank", width=70,
                                                                      help="▲ up / ▼ down vs the other model; "
                                                                           "new / dropped from its top-k"),
                                "text": st.column_config.TextColumn("text", width="medium"),
                                "score": st.column_config.TextColumn("cosine", width=60)})


def heatmap(matrix: np.ndarray, labels: Sequence[str], title: str, *, diverging: bool = False) -> Any:
    import plotly.graph_objects as go

    short = [plot_text(label if len(label) <= 28 else label[:27] + "…") for label in labels]
    labels = [plot_text(label) for label in labels]
    limit = float(np.max(np.abs(matrix))) if diverging and matrix.size else 1.0
    figure = go.Figure(go.Heatmap(
        z=matrix, x=list(range(len(labels))), y=list(range(len(labels))), customdata=np.array([[(a, b) for b in labels] for a in labels], dtype=object),
        colorscale="RdBu" if diverging else "Viridis", zmid=0 if diverging else None,
        zmin=-max(limit, 1e-6) if diverging else None, zmax=max(limit, 1e-6) if diverging else None,
        text=np.round(matrix, 2), texttemplate="%{text}" if len(labels) <= 15 else None,
        hovertemplate="%{customdata[0]}<br>%{customdata[1]}<br>" + ("Δ cosine" if diverging else "cosine")
                      + " %{z:.3f}<extra></extra>"))
    ticks = {"tickvals": list(range(len(labels))), "ticktext": short}
    figure.update_layout(title=plot_text(title), height=180 + 28 * len(labels),
                         margin={"l": 10, "r": 10, "t": 50, "b": 10},
                         xaxis={**ticks, "tickangle": -45}, yaxis={**ticks, "autorange": "reversed"})
    return figure


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def model_card(card: dict[str, Any], key: str) -> None:
    """A model card from model_card.json, as tables (its dataset names may come from user file names)."""
    training = card.get("training") or {}
    cols = st.columns(4)
    cols[0].metric("Task", str(card.get("task", "?")))
    cols[1].metric("Epochs run", str(training.get("epochs_run", "?")))
    cols[2].metric("Best epoch", str(training.get("best_epoch") or "—"))
    cols[3].metric("Training time", f"{float(training.get('seconds') or 0):.0f} s")
    st.caption(f"Base model: {md_escape(card.get('base_model', '?'))} · device: {md_escape(training.get('device', '?'))}"
               + (" · cancelled early (saved what it had)" if training.get("cancelled") else "")
               + (" · stopped early (no improvement)" if training.get("stopped_early") else ""))
    comparison = pd.DataFrame(card.get("comparison") or [])
    if not comparison.empty:
        st.markdown("**Base vs tuned**")
        metrics_table(comparison, key=f"{key}.comparison")
    left, right = st.columns(2)
    datasets = pd.DataFrame([{"role": role, **{k: _cell(v) for k, v in (info or {}).items()}}
                             for role, info in (card.get("datasets") or {}).items()])
    if not datasets.empty:
        left.markdown("**Data**")
        left.dataframe(datasets, hide_index=True, key=f"{key}.datasets", width="stretch")
    settings_rows = [{"setting": k, "value": _cell(v)} for k, v in (card.get("hyperparameters") or {}).items()]
    settings_rows += [{"setting": k, "value": _cell(training[k])} for k in
                      ("steps", "stopped_early", "cancelled", "backend", "mixed_precision", "keras_version")
                      if k in training]
    if settings_rows:
        right.markdown("**Training settings**")
        right.dataframe(pd.DataFrame(settings_rows), hide_index=True, key=f"{key}.settings", width="stretch")
    notes = card.get("notes") or []
    for note in notes:
        st.text(f"Note: {note}")


def _delta_style(value: Any) -> str:
    if not isinstance(value, int | float) or pd.isna(value) or value == 0:
        return ""
    return "color: #047857; font-weight: 600" if value > 0 else "color: #b91c1c; font-weight: 600"


def metrics_table(frame: pd.DataFrame, key: str) -> None:
    """Numbers to 4 decimals, `delta` columns signed and coloured (green better, red worse)."""
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    deltas = [c for c in numeric if "delta" in str(c)]
    styled = frame.style.format({c: "{:+.4f}" if c in deltas else "{:.4f}" for c in numeric}, na_rep="—")
    if deltas:
        styled = styled.map(_delta_style, subset=deltas)
    st.dataframe(styled, hide_index=True, key=key, width="stretch")


def confusion_figure(result: dict[str, Any], title: str) -> Any:
    import plotly.express as px

    labels = [plot_text(x) for x in result["labels"]]
    figure = px.imshow(np.asarray(result["confusion_matrix"]), x=labels, y=labels, text_auto=True,
                       color_continuous_scale="Blues", labels={"x": "predicted", "y": "true", "color": "count"},
                       title=plot_text(title))
    figure.update_layout(height=320, margin={"l": 10, "r": 10, "t": 50, "b": 10}, coloraxis_showscale=False)
    return figure


def pca_map(titles: Sequence[str], groups: Sequence[str], coords: np.ndarray, explained: np.ndarray,
            title: str) -> Any:
    """A scatter of texts at their 2-D PCA coordinates, coloured by group (labels escaped for Plotly)."""
    import plotly.express as px

    points = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "title": [plot_text(t) for t in titles],
                           "group": [plot_text(g) for g in groups]})
    figure = px.scatter(points, x="x", y="y", color="group", hover_name="title",
                        hover_data={"x": False, "y": False, "group": True}, title=plot_text(title),
                        labels={"x": f"PC1 ({explained[0]:.0%})", "y": f"PC2 ({explained[1]:.0%})"})
    figure.update_layout(height=520, legend={"orientation": "h", "y": -0.2}, margin={"l": 10, "r": 10, "t": 50})
    return figure


def training_charts(progress: dict[str, Any], key: str) -> None:
    import altair as alt

    left, right = st.columns(2)
    loss = progress["loss_series"]
    if not loss.empty:
        chart = alt.Chart(loss).mark_line(point=len(loss) < 40).encode(
            x=alt.X("step:Q", title="step"), y=alt.Y("loss:Q", title="training loss", scale=alt.Scale(zero=False)),
            tooltip=["step", alt.Tooltip("loss:Q", format=".4f")]).properties(title="Loss", height=260)
        left.altair_chart(chart, key=f"{key}.loss", width="stretch")
    else:
        left.caption("The loss curve appears with the first training steps.")
    validation = progress["validation_series"]
    if not validation.empty:
        metric = (progress.get("metric") or "validation").removeprefix("val_")
        chart = alt.Chart(validation).mark_line(point=True).encode(
            x=alt.X("epoch:Q", title="epoch (0 = before training)", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
            tooltip=["epoch", alt.Tooltip("value:Q", format=".4f")]).properties(title=f"Validation {metric}",
                                                                                 height=260)
        right.altair_chart(chart, key=f"{key}.validation", width="stretch")
    else:
        right.caption("The validation curve starts once the base model has been evaluated.")


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    value = int(round(value))
    if value < 60:
        return f"{value} s"
    if value < 3600:
        return f"{value // 60} min {value % 60:02d} s"
    return f"{value // 3600} h {value % 3600 // 60:02d} min"
