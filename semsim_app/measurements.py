"""The Evaluate page's measurements: one model's per-item scores on held-out data (seeded samples), the rows
of its table with paired bootstrap intervals, and the map and neighbourhoods of a corpus sample.

Each item function takes a loaded encoder or classifier; semsim_ui.resources caches their results per
(model, sample size), so a rerun is free and only the (cheap) bootstrap runs again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from semsim.data import sample_rows
from semsim.evaluation import paired

PAIR_METRICS = paired.PAIR_METRICS
RETRIEVAL_METRICS = paired.RETRIEVAL_METRICS
CLASSIFICATION_METRICS = paired.CLASSIFICATION_METRICS
SEED = 0


def pair_set(dataset: str, rows: int | None) -> Any:
    """A PairSimilarityEvaluator over (a seeded sample of) a test split ("sts-b" or "job-title-pairs")."""
    from semsim import data
    from semsim.evaluation import PairSimilarityEvaluator

    frame = data.load_sts("test") if dataset == "sts-b" else data.load_bundled("job-title-pairs", "test")
    return PairSimilarityEvaluator.from_frame(sample_rows(frame, rows, SEED), name=dataset)


def pair_items(encoder: Any, dataset: str, rows: int | None) -> dict[str, Any]:
    """Each pair's cosine under the encoder, with the gold scores (for correlations and their intervals)."""
    return paired.pair_items(pair_set(dataset, rows), encoder)


def retrieval_set(queries: int | None, corpus: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The bundled ESCO set, optionally with fewer queries and a smaller corpus.

    A smaller corpus keeps every text relevant to a chosen query and fills up with a random sample of
    the rest, so each query still has its answers among distractors.
    """
    from semsim import data

    all_queries, all_corpus = data.load_bundled("esco-retrieval")
    chosen = sample_rows(all_queries, queries, SEED)
    if corpus is None or len(all_corpus) <= corpus:
        return chosen, all_corpus
    needed = {item for ids in chosen["relevant"] for item in ids}
    keep = all_corpus["id"].isin(needed)
    others = all_corpus[~keep]
    fill = max(0, corpus - int(keep.sum()))
    extra = others.sample(n=min(fill, len(others)), random_state=SEED)
    return chosen, pd.concat([all_corpus[keep], extra]).reset_index(drop=True)


def retrieval_items(encoder: Any, queries: int | None, corpus: int | None) -> dict[str, Any]:
    """Each query's recall@k, MRR and nDCG under the encoder on (a sample of) the bundled ESCO set."""
    from semsim.evaluation import RetrievalEvaluator

    query_frame, corpus_frame = retrieval_set(queries, corpus)
    return paired.retrieval_items(RetrievalEvaluator(query_frame, corpus_frame, name="esco-retrieval"), encoder)


def classification_items(classifier: Any, rows: int | None) -> dict[str, Any]:
    """Each review's true and predicted label and probabilities, on (a sample of) the Rotten Tomatoes test split."""
    from semsim import data
    from semsim.evaluation import ClassificationEvaluator

    frame = sample_rows(data.load_bundled("rotten-tomatoes", "test"), rows, SEED)
    return paired.classification_items(ClassificationEvaluator.from_frame(frame, "rotten-tomatoes test"), classifier)


def rows_for(task: str, dataset: str, kind: str, base: dict[str, Any], tuned: dict[str, Any] | None,
             metrics: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of the metrics table from both models' items on the same data: base, tuned, delta and the paired
    bootstrap 95% interval (ci low, ci high, significant); without a tuned model, the base numbers alone."""
    out = []
    for row in paired.metric_rows(kind, base, tuned, metrics):
        low, high = row["ci95"] or (None, None)
        out.append({"task": task, "dataset": dataset, "metric": row["metric"], "base": row["base"],
                    "tuned": row["tuned"], "delta": row["delta"], "ci low": low, "ci high": high,
                    "significant": row["significant"], "n": paired.item_count(kind, base)})
    return out


# -- the map and the neighbourhoods -------------------------------------------------------------
def map_frame(base: np.ndarray, tuned: np.ndarray | None) -> Any:
    """One 2-D frame for both models' embeddings of the same texts (semsim.embedding_compare.aligned_map)."""
    from semsim.embedding_compare import aligned_map

    return aligned_map(base, tuned)


def neighbourhoods(texts: list[str], base: np.ndarray, tuned: np.ndarray, k: int) -> tuple[float, pd.DataFrame]:
    """(mean Jaccard overlap, per-text table lowest first) of each text's top-k neighbours among `texts`."""
    from semsim.embedding_compare import neighbourhood_overlap, overlap_table

    overlap = neighbourhood_overlap(base, tuned, k)
    return float(overlap.jaccard.mean()), overlap_table(texts, overlap)
