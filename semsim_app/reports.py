"""The Evaluate page's comparison report (semsim.report): its metric tables from the page's rows, and its
heatmaps, map and neighbourhoods from embeddings the page supplies (cached there)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from semsim import report
from semsim.evaluation import bootstrap

UNITS = {"similarity": "pairs", "retrieval": "queries", "classification": "reviews"}
Embed = Callable[[str, list[str]], np.ndarray]  # (model spec, texts) -> unit vectors


def metric_tables(rows: Sequence[dict[str, Any]]) -> list[report.MetricTable]:
    """The page's metric rows (measurements.rows_for) grouped into one table per data set."""
    tables: dict[str, report.MetricTable] = {}
    for row in rows:
        name = f"{row['dataset']} ({row['task']})"
        unit = next((u for prefix, u in UNITS.items() if str(row["task"]).startswith(prefix)), "items")
        table = tables.setdefault(name, report.MetricTable(name, unit, int(row.get("n") or 0), [],
                                                           bootstrap.RESAMPLES, bootstrap.SEED))
        low, high = row.get("ci low"), row.get("ci high")
        table.rows.append({"metric": row["metric"], "base": row["base"], "tuned": row["tuned"], "delta": row["delta"],
                           "ci95": None if low is None or pd.isna(low) else [low, high],
                           "significant": row.get("significant")})
    return list(tables.values())


def build(base_spec: str, tuned_spec: str, rows: Sequence[dict[str, Any]], embed: Embed,
          reference: Callable[[str], np.ndarray] | None, reference_name: str, texts: Sequence[str],
          sample: pd.DataFrame | None, colour: str | None = None, k: int = 10) -> str:
    """The whole report as HTML: model cards, `rows` with their intervals, the heatmaps of `texts` (relative
    to `reference` when given) and the aligned map and neighbourhoods of the corpus `sample`."""
    sections = []
    texts = list(texts)
    if len(texts) >= 2:
        sections.append(report.heatmap_section(
            texts, embed(base_spec, texts), embed(tuned_spec, texts),
            reference(base_spec) if reference else None, reference(tuned_spec) if reference else None,
            reference_name))
    if sample is not None and len(sample) >= 3:
        map_texts = sample["text"].tolist()
        groups = sample[colour].astype(str).tolist() if colour and colour in sample.columns else None
        sections.append(report.map_section(map_texts, embed(base_spec, map_texts), embed(tuned_spec, map_texts),
                                           groups, colour or "group", k))
    return report.render(f"semsim comparison · {Path(base_spec).name or base_spec} vs "
                         f"{Path(tuned_spec).name or tuned_spec}",
                         [report.model_summary("base", base_spec), report.model_summary("tuned", tuned_spec)],
                         metric_tables(rows), sections,
                         notes=["Made on the Evaluate page of the semsim app. Metrics: seeded samples of each test "
                                "set (see each table's size); the model cards hold the full-size numbers."])
