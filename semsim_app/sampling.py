"""Seeded samples of data frames: the same rows on every run, so cached results and reruns agree."""

from __future__ import annotations

import pandas as pd


def sample_rows(frame: pd.DataFrame, rows: int | None, seed: int = 0) -> pd.DataFrame:
    """`rows` rows of `frame` drawn with `seed` (all of it when rows is None or the frame is no larger)."""
    if rows is None or len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=seed).reset_index(drop=True)
