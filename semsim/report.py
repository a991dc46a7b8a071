"""A self-contained HTML comparison report (model cards, metric tables with intervals, heatmaps, the aligned
map, neighbourhood changes) for people who will not run the app: one file, plotly.js inline, so it opens
offline. Every piece of user text goes through html.escape (or, inside figures, plotly's JSON escaping and
figures.plot_text); nothing is pasted in raw."""

from __future__ import annotations

import html
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semsim import embedding_compare, figures
from semsim.names import MODEL_CARD_JSON

HEATMAP_TEXTS = 12
MAP_TEXTS = 300
CHANGED_PAIRS = 10
CHANGED_NEIGHBOURHOODS = 15


@dataclass
class ModelSummary:
    """What the report says about one model: its spec and, for a folder, its model card."""

    role: str  # "base" or "tuned"
    spec: str
    card: dict[str, Any] | None = None
    description: str = ""


def model_summary(role: str, spec: str) -> ModelSummary:
    """Read a folder's model_card.json (a bundled spec gets its description instead)."""
    from semsim.encoders import BUNDLED_MODELS

    card = None
    path = Path(spec).expanduser()
    if path.is_dir():
        try:
            value = json.loads((path / MODEL_CARD_JSON).read_text(encoding="utf-8"))
            card = value if isinstance(value, dict) else None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            card = None
    description = BUNDLED_MODELS[spec][2] if spec in BUNDLED_MODELS else ""
    return ModelSummary(role, spec, card, description)


@dataclass
class MetricTable:
    """One data set's metric rows (semsim.evaluation.paired.metric_rows) for the report."""

    dataset: str
    unit: str  # pairs, queries, texts
    n: int
    rows: list[dict[str, Any]]
    resamples: int = 1000
    seed: int = 0


@dataclass
class Section:
    """A heading with a caption and figures (plotly) and/or tables (DataFrames)."""

    heading: str
    caption: str = ""
    figures: list[Any] = field(default_factory=list)
    tables: list[Any] = field(default_factory=list)


# -- sections from embeddings -------------------------------------------------------------------
def heatmap_section(texts: Sequence[str], base: np.ndarray, tuned: np.ndarray, base_reference: np.ndarray | None,
                    tuned_reference: np.ndarray | None, reference_name: str = "") -> Section:
    """Both similarity matrices on one colour scale, the change in relative similarity, and the pairs
    that changed most (ranked on the relative view when references are given)."""
    base_sim, tuned_sim = (embedding_compare.similarity_matrix(v) for v in (base, tuned))
    zrange = figures.shared_range(base_sim, tuned_sim)
    shown = [figures.heatmap(base_sim, texts, "Base · cosine", zrange=zrange),
             figures.heatmap(tuned_sim, texts, "Tuned · cosine (same colour scale)", zrange=zrange)]
    base_relative = tuned_relative = None
    if base_reference is not None and tuned_reference is not None:
        base_relative = embedding_compare.percentiles(base_sim, base_reference)
        tuned_relative = embedding_compare.percentiles(tuned_sim, tuned_reference)
        shown.append(figures.heatmap(tuned_relative - base_relative, texts,
                                     "Tuned − base · relative similarity (percentile points)", diverging=True,
                                     value_name="Δ percentile", decimals=0))
    else:
        shown.append(figures.heatmap(tuned_sim - base_sim, texts, "Tuned − base · cosine", diverging=True,
                                     value_name="Δ cosine"))
    pairs = embedding_compare.pair_changes(texts, base_sim, tuned_sim, base_relative, tuned_relative)
    view = (f"relative similarity (each model's percentile among its own random pairs of {reference_name})"
            if pairs.attrs["ranked_by"] == "relative" else "raw cosine")
    caption = (f"{len(texts)} texts. Both cosine heatmaps share one colour range, "
               f"{zrange[0]:.2f} to {zrange[1]:.2f}. Pairs that changed most are ranked on {view}.")
    return Section("Similarity of a few texts", caption, shown, [("Pairs that changed most", pairs.head(CHANGED_PAIRS))])


def map_section(texts: Sequence[str], base: np.ndarray, tuned: np.ndarray, groups: Sequence[Any] | None = None,
                group_name: str = "group", k: int = embedding_compare.NEIGHBOURS) -> Section:
    """The aligned map of both models (with each text's move) and the texts whose neighbourhoods changed most."""
    frame = embedding_compare.aligned_map(base, tuned)
    figure = figures.aligned_map(texts, frame.base, frame.tuned, groups=groups, group_name=group_name,
                                 show_moves=True, title="Base (circles) and tuned (diamonds) in one frame",
                                 explained=frame.explained)
    overlap = embedding_compare.neighbourhood_overlap(base, tuned, k)
    table = embedding_compare.overlap_table(texts, overlap, CHANGED_NEIGHBOURHOODS)
    caption = (f"{len(texts)} texts; {frame.method}. Neighbourhoods: top-{overlap.k} neighbours of each text among "
               f"these texts; mean Jaccard overlap base vs tuned {float(overlap.jaccard.mean()):.3f} "
               f"(1 = unchanged).")
    return Section("Map and neighbourhoods", caption, [figure], [("Neighbourhoods that changed most", table)])


# -- HTML ---------------------------------------------------------------------------------------
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #111827; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #e5e7eb; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #e5e7eb; padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #f9fafb; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.better { color: #047857; font-weight: 600; } .worse { color: #b91c1c; font-weight: 600; }
.noise { color: #6b7280; } .caption { color: #4b5563; font-size: .9rem; }
.cards { display: flex; gap: 1.5rem; flex-wrap: wrap; } .card { flex: 1 1 340px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return _e(value)
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _table(frame: Any) -> str:
    """A DataFrame as an HTML table, every cell escaped (lists joined with ' · ')."""
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, list | tuple):
                cells.append(f"<td>{_e(' · '.join(str(v) for v in value))}</td>")
            elif isinstance(value, float | np.floating):
                cells.append(f"<td class='num'>{value:.3f}</td>")
            else:
                cells.append(f"<td>{_e(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _metric_table(table: MetricTable) -> str:
    rows = []
    for row in table.rows:
        delta, interval, significant = row.get("delta"), row.get("ci95"), row.get("significant")
        style = "" if delta is None else ("noise" if not significant else ("better" if delta > 0 else "worse"))
        ci = "—" if not interval else f"[{interval[0]:+.4f}, {interval[1]:+.4f}]"
        flag = "—" if significant is None else ("yes" if significant else "no (interval contains 0)")
        rows.append(f"<tr><td>{_e(row['metric'])}</td><td class='num'>{_number(row.get('base'))}</td>"
                    f"<td class='num'>{_number(row.get('tuned'))}</td>"
                    f"<td class='num {style}'>{_number(delta, signed=True)}</td><td class='num'>{_e(ci)}</td>"
                    f"<td>{_e(flag)}</td></tr>")
    return (f"<h3>{_e(table.dataset)} · {table.n:,} {_e(table.unit)}</h3>"
            "<table><thead><tr><th>metric</th><th>base</th><th>tuned</th><th>delta</th><th>95% interval</th>"
            f"<th>significant</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _card(model: ModelSummary) -> str:
    parts = [f"<div class='card'><h3>{_e(model.role.capitalize())}: {_e(Path(model.spec).name or model.spec)}</h3>",
             f"<p class='caption'>spec: {_e(model.spec)}</p>"]
    if model.description:
        parts.append(f"<p>{_e(model.description)}</p>")
    card = model.card
    if card:
        training = card.get("training") or {}
        facts = [("task", card.get("task")), ("base model", card.get("base_model")),
                 ("objective", card.get("objective")), ("epochs run", training.get("epochs_run")),
                 ("steps", training.get("steps")), ("training seconds", training.get("seconds")),
                 ("device", training.get("device"))]
        facts += [(f"data: {role}", (info or {}).get("name")) for role, info in (card.get("datasets") or {}).items()]
        parts.append("<table><tbody>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts
                                                if v is not None) + "</tbody></table>")
        comparison = card.get("comparison") or []
        if comparison:
            parts.append("<p>Model card, base vs tuned (no intervals):</p><table><thead><tr><th>data</th>"
                         "<th>metric</th><th>base</th><th>tuned</th><th>delta</th></tr></thead><tbody>"
                         + "".join(f"<tr><td>{_e(r.get('dataset'))}</td><td>{_e(r.get('metric'))}</td>"
                                   f"<td class='num'>{_number(r.get('base'))}</td>"
                                   f"<td class='num'>{_number(r.get('tuned'))}</td>"
                                   f"<td class='num'>{_number(r.get('delta'), signed=True)}</td></tr>"
                                   for r in comparison) + "</tbody></table>")
    parts.append("</div>")
    return "".join(parts)


def render(title: str, models: Sequence[ModelSummary], metric_tables: Sequence[MetricTable] = (),
           sections: Sequence[Section] = (), notes: Sequence[str] = ()) -> str:
    """The whole report as one HTML string."""
    import plotly.io as pio

    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
           "<meta name='viewport' content='width=device-width, initial-scale=1'>",
           f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
           f"<h1>{_e(title)}</h1>",
           f"<p class='caption'>Written by semsim on {_e(time.strftime('%Y-%m-%d %H:%M'))}. "
           "Everything in this file works offline.</p>",
           "<h2>Models</h2><div class='cards'>", *(_card(m) for m in models), "</div>"]
    if metric_tables:
        first = metric_tables[0]
        out.append("<h2>Metrics</h2><p class='caption'>Delta = tuned − base. The 95% interval is a paired bootstrap: "
                   f"{first.resamples:,} resamples (seed {first.seed}) of the same pairs, queries or texts for both "
                   "models. A delta whose interval contains 0 is not significant (grey): it may be noise.</p>")
        out += [_metric_table(t) for t in metric_tables]
    plotly_included = False
    for section in sections:
        out.append(f"<h2>{_e(section.heading)}</h2>")
        if section.caption:
            out.append(f"<p class='caption'>{_e(section.caption)}</p>")
        for figure in section.figures:
            # plotly.js goes inline once, with the first figure; the JSON of every figure escapes <, > and /.
            out.append(pio.to_html(figure, full_html=False, include_plotlyjs=not plotly_included,
                                   config={"displaylogo": False, "responsive": True}, default_width="100%"))
            plotly_included = True
        for heading, frame in section.tables:
            out.append(f"<h3>{_e(heading)}</h3>{_table(frame)}")
    for note in notes:
        out.append(f"<p class='caption'>{_e(note)}</p>")
    out.append("</body></html>")
    return "\n".join(out)


def write(path: str | os.PathLike, document: str) -> Path:
    """Write the report atomically (a temporary file renamed into place): never half a file."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name such as report.html")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: the folder {path.parent} does not exist")
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(document)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
