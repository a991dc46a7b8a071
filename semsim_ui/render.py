"""Tables and charts: result lists with rank changes, heatmaps, model cards, metrics with intervals, the aligned
map and neighbourhood tables, training curves.

User text only ever reaches the screen as dataframe cells or chart hover text, never as HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from semsim import figures
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


# Heatmaps and the aligned map are built in semsim.figures (the HTML report draws the same ones).
heatmap = figures.heatmap
shared_range = figures.shared_range
aligned_map = figures.aligned_map


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


NOISE_STYLE = "color: #6b7280"


def _interval_styles(frame: pd.DataFrame) -> pd.DataFrame:
    """Deltas coloured green/red only when their interval excludes 0; grey when it may be noise."""
    styles = pd.DataFrame("", index=frame.index, columns=frame.columns)
    for i, row in frame.iterrows():
        if row.get("significant") is False:
            styles.loc[i, [c for c in ("delta", "ci low", "ci high") if c in frame.columns]] = NOISE_STYLE
        else:
            styles.loc[i, "delta"] = _delta_style(row.get("delta"))
    return styles


def metrics_table(frame: pd.DataFrame, key: str) -> None:
    """Numbers to 4 decimals, `delta` columns signed and coloured (green better, red worse). With interval
    columns (ci low, ci high, significant), a delta whose interval contains 0 is grey, not coloured."""
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and c != "n"]
    deltas = [c for c in numeric if "delta" in str(c) or str(c).startswith("ci ")]
    styled = frame.style.format({c: "{:+.4f}" if c in deltas else "{:.4f}" for c in numeric}, na_rep="—")
    config: dict[str, Any] = {}
    if "significant" in frame.columns:
        styled = styled.apply(_interval_styles, axis=None)
        styled = styled.format({"significant": lambda v: "—" if v is None or pd.isna(v) else
                                ("yes" if v else "no: may be noise")})
        config = {"ci low": st.column_config.TextColumn("95% CI low", help="paired bootstrap interval of the delta"),
                  "ci high": st.column_config.TextColumn("95% CI high", help="paired bootstrap interval of the delta"),
                  "significant": st.column_config.TextColumn("significant", help="the interval excludes 0")}
    elif deltas:
        styled = styled.map(_delta_style, subset=deltas)
    st.dataframe(styled, hide_index=True, key=key, width="stretch", column_config=config)


def overlap_table(frame: pd.DataFrame, key: str) -> None:
    """Neighbourhoods (semsim.embedding_compare.overlap_table): Jaccard as a bar, neighbours that came and went."""
    st.dataframe(frame, hide_index=True, key=key, width="stretch",
                 column_config={"text": st.column_config.TextColumn("text", width="medium"),
                                "jaccard": st.column_config.ProgressColumn("Jaccard", min_value=0.0, max_value=1.0,
                                                                           format="%.2f",
                                                                           help="overlap of the top-k neighbours "
                                                                                "under base and tuned"),
                                "kept": st.column_config.NumberColumn("kept", help="neighbours in both top-k"),
                                "came": st.column_config.ListColumn("came (new in tuned)", width="large"),
                                "went": st.column_config.ListColumn("went (gone from tuned)", width="large")})


def confusion_figure(result: dict[str, Any], title: str) -> Any:
    import plotly.express as px

    labels = [plot_text(x) for x in result["labels"]]
    figure = px.imshow(np.asarray(result["confusion_matrix"]), x=labels, y=labels, text_auto=True,
                       color_continuous_scale="Blues", labels={"x": "predicted", "y": "true", "color": "count"},
                       title=plot_text(title))
    figure.update_layout(height=320, margin={"l": 10, "r": 10, "t": 50, "b": 10}, coloraxis_showscale=False)
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


def dimension_charts(frame: pd.DataFrame, key: str) -> None:
    """Quality against dimension, one line per model, for each metric of semsim_app.dimensions.quality_table."""
    left, right = st.columns(2)
    for column, metric in zip((left, right), ("STS-B Spearman x100", "ESCO nDCG@10"), strict=True):
        wide = frame.pivot_table(index="dim", columns="model", values=metric).sort_index()
        column.caption(metric)
        column.line_chart(wide, x_label="dimensions kept", y_label=metric, key=f"{key}.{metric}")
    st.dataframe(frame, hide_index=True, width="stretch", key=f"{key}.table")
