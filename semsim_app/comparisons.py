"""Base-vs-tuned comparisons as plain DataFrames (no Streamlit): rank changes, metric deltas, the Similarity
page's default texts. (Heatmap scales, relative similarity, maps and neighbourhoods: semsim.embedding_compare.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

UP, DOWN, SAME, NEW, DROPPED = "up", "down", "same", "new", "dropped"

# The Similarity page starts from these (and the comparison report draws its heatmaps from them, or from
# what the user typed there): pairs of related job titles from several families.
SIMILARITY_TEXTS = ("Data scientist", "Statistician", "Software engineer", "Web developer", "Staff nurse", "Midwife",
                    "Primary school teacher", "Lecturer", "HGV driver", "Bus driver", "Chef", "Kitchen porter")


def _key(text: Any) -> str:
    return str(text).strip().casefold()


def compare_rankings(base_hits: Sequence[dict[str, Any]], tuned_hits: Sequence[dict[str, Any]],
                     extra_columns: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two result tables with how each text moved between the base and the tuned top-k.

    tuned table: `change` is "▲ n" (moved up n places), "▼ n", "=" or "new" (not in the base top-k);
    base table: "→ n" (rank n in the tuned list) or "dropped" (gone from the tuned top-k).
    `move` holds the category (up/down/same/new/dropped) that the styling colours.
    """
    base_rank = {_key(h["text"]): int(h["rank"]) for h in base_hits}
    tuned_rank = {_key(h["text"]): int(h["rank"]) for h in tuned_hits}

    def rows(hits: Sequence[dict[str, Any]], other: dict[str, int], tuned: bool) -> pd.DataFrame:
        out = []
        for hit in hits:
            rank, there = int(hit["rank"]), other.get(_key(hit["text"]))
            if tuned:
                if there is None:
                    change, move, delta = "new", NEW, None
                elif there > rank:
                    change, move, delta = f"▲ {there - rank}", UP, there - rank
                elif there < rank:
                    change, move, delta = f"▼ {rank - there}", DOWN, there - rank
                else:
                    change, move, delta = "=", SAME, 0
            else:
                if there is None:
                    change, move, delta = "dropped", DROPPED, None
                else:
                    change, move, delta = f"→ {there}", SAME, rank - there
            row = {"rank": rank, "text": str(hit["text"]), "score": float(hit["score"]), "change": change,
                   "Δ rank": delta, "move": move}
            for column in extra_columns:
                row[column] = "" if hit.get(column) is None else str(hit.get(column))
            out.append(row)
        frame = pd.DataFrame(out, columns=["rank", "text", "score", "change", "Δ rank", "move",
                                           *extra_columns])
        frame["Δ rank"] = frame["Δ rank"].astype("Int64")
        return frame

    return rows(base_hits, tuned_rank, tuned=False), rows(tuned_hits, base_rank, tuned=True)


def results_for_download(query: str, base: pd.DataFrame, tuned: pd.DataFrame, base_model: str,
                         tuned_model: str) -> pd.DataFrame:
    """One long table of both result lists, for a CSV download."""
    parts = []
    for model, side, frame in ((base_model, "base", base), (tuned_model, "tuned", tuned)):
        part = frame.drop(columns=["move"]).copy()
        part.insert(0, "model", model)
        part.insert(0, "side", side)
        part.insert(0, "query", query)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def metric_rows(task: str, dataset: str, base: dict[str, Any], tuned: dict[str, Any],
                metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of the evaluation table: one per metric present in both results, with tuned - base."""
    out = []
    for metric in metrics:
        b, t = base.get(metric), tuned.get(metric)
        if isinstance(b, int | float) and isinstance(t, int | float):
            out.append({"task": task, "dataset": dataset, "metric": metric, "base": float(b),
                        "tuned": float(t), "delta": float(t) - float(b)})
    return out
