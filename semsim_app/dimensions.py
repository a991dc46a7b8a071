"""Quality against embedding dimension (Matryoshka) for the Evaluate page: STS-B and ESCO at each cut, per model."""

from __future__ import annotations

from typing import Any

import pandas as pd

# Cuts shown for a model of `dim` dimensions: its own, then these below it (minilm: 384, 256, 128, 64).
CUTS = (256, 128, 64)
QUICK_ROWS = 300  # STS-B pairs and ESCO queries in the quick sample (the whole ESCO corpus is searched)


def cuts_for(dim: int) -> list[int]:
    return [int(dim), *[d for d in CUTS if d < dim]]


def quality_table(encoders: dict[str, Any], quick: bool = True) -> pd.DataFrame:
    """One row per (model, dim): STS-B test Spearman x100 and ESCO nDCG@10 with vectors cut to dim.

    `encoders` maps a label ("base", "tuned") to a loaded encoder; each text is embedded once per model."""
    from semsim.matryoshka import quality_by_dimension

    rows = []
    for label, encoder in encoders.items():
        for row in quality_by_dimension(encoder, cuts_for(encoder.dim), sts_rows=QUICK_ROWS if quick else None):
            rows.append({"model": label, "dim": row["dim"], "STS-B Spearman x100": row["sts_spearman"],
                         "ESCO nDCG@10": row["esco_ndcg@10"], "pairs": row["sts_pairs"], "queries": row["esco_queries"]})
    return pd.DataFrame(rows)
