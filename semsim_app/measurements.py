"""The Evaluate page's measurements: one model on held-out data (seeded samples), and the rows of its table.

Each function takes a loaded encoder or classifier; semsim_ui.resources caches their results per
(model, sample size), so a rerun is free.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from semsim_app import comparisons
from semsim_app.sampling import sample_rows

PAIR_METRICS = ("spearman", "pearson")
RETRIEVAL_METRICS = ("ndcg@10", "mrr@10", "recall@1", "recall@10")
CLASSIFICATION_METRICS = ("accuracy", "f1_macro", "roc_auc")
SEED = 0


def pair_scores(encoder: Any, dataset: str, rows: int | None) -> dict[str, Any]:
    """Correlation of the encoder's cosines with the gold scores of a test split ("sts-b" or "job-title-pairs")."""
    from semsim import data
    from semsim.evaluation import PairSimilarityEvaluator

    frame = data.load_sts("test") if dataset == "sts-b" else data.load_bundled("job-title-pairs", "test")
    return PairSimilarityEvaluator.from_frame(sample_rows(frame, rows, SEED), name=dataset)(encoder)


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


def retrieval_scores(encoder: Any, queries: int | None, corpus: int | None) -> dict[str, Any]:
    """Recall@k, MRR and nDCG of the encoder on (a sample of) the bundled ESCO retrieval set."""
    from semsim.evaluation import RetrievalEvaluator

    query_frame, corpus_frame = retrieval_set(queries, corpus)
    return RetrievalEvaluator(query_frame, corpus_frame, name="esco-retrieval")(encoder)


def classification_scores(classifier: Any, rows: int | None) -> dict[str, Any]:
    """Accuracy, F1 and ROC AUC of a classifier on (a sample of) the Rotten Tomatoes test split."""
    from semsim import data
    from semsim.evaluation import ClassificationEvaluator

    frame = sample_rows(data.load_bundled("rotten-tomatoes", "test"), rows, SEED)
    return ClassificationEvaluator.from_frame(frame, "rotten-tomatoes test")(classifier)


def rows_for(task: str, dataset: str, base: dict[str, Any], tuned: dict[str, Any] | None,
             metrics: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of the metrics table; without a tuned result, the base numbers alone."""
    if tuned is None:
        return [{"task": task, "dataset": dataset, "metric": m, "base": float(base[m]), "tuned": None,
                 "delta": None} for m in metrics if isinstance(base.get(m), int | float)]
    return comparisons.metric_rows(task, dataset, base, tuned, metrics)


# -- the PCA map ----------------------------------------------------------------------------------
def map_sample(rows: int) -> pd.DataFrame:
    """A seeded sample of the bundled job titles, with their major group for colour."""
    from semsim import data

    frame = data.read_csv(data.bundled_path("job-titles"), ("title", "major_group_name"))
    return sample_rows(frame[["title", "major_group_name"]].reset_index(drop=True), rows, SEED)


def pca_coordinates(vectors: np.ndarray, reference: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(2-D coordinates, explained variance) of embeddings; axes flipped to match `reference` when given,
    so the base and the tuned map of one sample face the same way."""
    coords, explained = comparisons.pca_2d(vectors)
    if reference is not None:
        coords = comparisons.align_signs(reference, coords)
    return coords, explained
