"""The Evaluate page's measurements: each one cached per (model, sample size), so a rerun is free."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from semsim_ui import catalog, compare, resources
from semsim_ui.text import plot_text

PAIR_METRICS = ("spearman", "pearson")
RETRIEVAL_METRICS = ("ndcg@10", "mrr@10", "recall@1", "recall@10")
CLASSIFICATION_METRICS = ("accuracy", "f1_macro", "roc_auc")
SEED = 0


def _sample(frame: pd.DataFrame, rows: int | None) -> pd.DataFrame:
    if rows is None or len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=SEED).reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=64)
def _pairs(spec: str, stamp: float | None, dataset: str, rows: int | None) -> dict[str, Any]:
    from semsim import data
    from semsim.evaluation import PairSimilarityEvaluator

    frame = data.load_sts("test") if dataset == "sts-b" else data.load_bundled("job-title-pairs", "test")
    return PairSimilarityEvaluator.from_frame(_sample(frame, rows), name=dataset)(resources.cached_encoder(spec, stamp))


def retrieval_set(queries: int | None, corpus: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The bundled ESCO set, optionally with fewer queries and a smaller corpus.

    A smaller corpus keeps every text relevant to a chosen query and fills up with a random sample of
    the rest, so each query still has its answers among distractors.
    """
    from semsim import data

    all_queries, all_corpus = data.load_bundled("esco-retrieval")
    chosen = _sample(all_queries, queries)
    if corpus is None or len(all_corpus) <= corpus:
        return chosen, all_corpus
    needed = {item for ids in chosen["relevant"] for item in ids}
    keep = all_corpus["id"].isin(needed)
    others = all_corpus[~keep]
    fill = max(0, corpus - int(keep.sum()))
    extra = others.sample(n=min(fill, len(others)), random_state=SEED)
    return chosen, pd.concat([all_corpus[keep], extra]).reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=32)
def _retrieval(spec: str, stamp: float | None, queries: int | None, corpus: int | None) -> dict[str, Any]:
    from semsim.evaluation import RetrievalEvaluator

    query_frame, corpus_frame = retrieval_set(queries, corpus)
    return RetrievalEvaluator(query_frame, corpus_frame, name="esco-retrieval")(resources.cached_encoder(spec, stamp))


@st.cache_data(show_spinner=False, max_entries=32)
def _classification(folder: str, stamp: float | None, rows: int | None) -> dict[str, Any]:
    from semsim import data
    from semsim.evaluation import ClassificationEvaluator

    frame = _sample(data.load_bundled("rotten-tomatoes", "test"), rows)
    return ClassificationEvaluator.from_frame(frame, "rotten-tomatoes test")(
        resources.cached_classifier(folder, stamp))


def pairs(spec: str, dataset: str, rows: int | None) -> dict[str, Any]:
    return _pairs(spec, catalog.model_stamp(spec), dataset, rows)


def retrieval(spec: str, queries: int | None, corpus: int | None) -> dict[str, Any]:
    return _retrieval(spec, catalog.model_stamp(spec), queries, corpus)


def classification(folder: str, rows: int | None) -> dict[str, Any]:
    return _classification(folder, catalog.model_stamp(folder), rows)


def rows_for(task: str, dataset: str, base: dict[str, Any], tuned: dict[str, Any] | None,
             metrics: tuple[str, ...]) -> list[dict[str, Any]]:
    if tuned is None:
        return [{"task": task, "dataset": dataset, "metric": m, "base": float(base[m]), "tuned": None,
                 "delta": None} for m in metrics if isinstance(base.get(m), int | float)]
    return compare.metric_rows(task, dataset, base, tuned, metrics)


# -- the PCA map ----------------------------------------------------------------------------------
def map_sample(rows: int) -> pd.DataFrame:
    """A seeded sample of the bundled job titles, with their major group for colour."""
    from semsim import data

    frame = data.read_csv(data.bundled_path("job-titles"), ("title", "major_group_name"))
    return _sample(frame[["title", "major_group_name"]].reset_index(drop=True), rows)


def pca_frame(spec: str, sample: pd.DataFrame, reference: np.ndarray | None = None
              ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(points with x, y, title, group; coordinates; explained variance) of a sample under one model."""
    vectors = resources.embeddings(spec, sample["title"].tolist())
    coords, explained = compare.pca_2d(vectors)
    if reference is not None:
        coords = compare.align_signs(reference, coords)
    points = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1],
                           "title": [plot_text(t) for t in sample["title"]],
                           "group": [plot_text(g) for g in sample["major_group_name"]]})
    return points, coords, explained
