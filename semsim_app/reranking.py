"""The Search page's rerank view without Streamlit: a reranked result list as a table with both scores and each result's move from its retrieval rank."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from semsim_app.comparisons import DOWN, SAME, UP

RERANK_SCORE = "cross-encoder score"
RETRIEVAL_RANK = "retrieval rank"
LEGEND = (":green-background[moved up by the cross-encoder] · :red-background[moved down] · rank change is from "
          "the result's place among the index's candidates")


def rerank_frame(hits: Sequence[dict[str, Any]], extra_columns: Sequence[str] = ()) -> pd.DataFrame:
    """semsim.rerank hits -> rank, change ("▲ n" moved up n places from its retrieval rank, "▼ n", "="), text,
    cosine (`score`), the cross-encoder's score, the retrieval rank, `Δ rank` and `move` (for the colours)."""
    rows = []
    for hit in hits:
        moved = int(hit["rank_change"])
        change, move = (f"▲ {moved}", UP) if moved > 0 else (f"▼ {-moved}", DOWN) if moved < 0 else ("=", SAME)
        row = {"rank": int(hit["rank"]), "text": str(hit["text"]), "score": float(hit["score"]), "change": change,
               RERANK_SCORE: round(float(hit["rerank_score"]), 4), RETRIEVAL_RANK: int(hit["retrieval_rank"]),
               "Δ rank": moved, "move": move}
        for column in extra_columns:
            row[column] = "" if hit.get(column) is None else str(hit.get(column))
        rows.append(row)
    return pd.DataFrame(rows, columns=["rank", "text", "score", "change", RERANK_SCORE, RETRIEVAL_RANK, "Δ rank",
                                       "move", *extra_columns])


def moved_summary(hits: Sequence[dict[str, Any]]) -> str:
    """How much the cross-encoder re-ordered: e.g. "7 of 10 results moved; 2 came from below the top 10"."""
    if not hits:
        return "no results"
    k = len(hits)
    moved = sum(1 for hit in hits if int(hit["rank_change"]) != 0)
    promoted = sum(1 for hit in hits if int(hit["retrieval_rank"]) > k)
    return f"{moved} of {k} results moved; {promoted} came from below the index's top {k}"
