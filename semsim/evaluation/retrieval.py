"""Retrieval evaluation: recall@k, MRR@10 and nDCG@10 of an encoder on queries against a corpus, or on pairs."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

ProgressFn = Callable[[int, int], None]


def parse_relevant(cell: Any) -> list[str]:
    """Relevant ids from a cell: a `|`-joined string or a list."""
    if isinstance(cell, str):
        return [part.strip() for part in cell.split("|") if part.strip()]
    if isinstance(cell, list | tuple | np.ndarray):
        return [str(part).strip() for part in cell if str(part).strip()]
    return []


def per_query_metrics(ranked: Sequence[Sequence[Any]], relevant: Sequence[set[Any]],
                      ks: Sequence[int] = (1, 5, 10), cutoff: int = 10) -> dict[str, np.ndarray]:
    """Each query's recall@k (and accuracy@k), MRR@cutoff and nDCG@cutoff, binary relevance: one array
    per metric, one value per query (a paired bootstrap resamples these; retrieval_metrics averages them).

    recall@k = |relevant in top k| / |relevant|; accuracy@k = 1 if any relevant is in the top k;
    MRR = 1 / rank of the first relevant hit within the cutoff (0 if none);
    nDCG = sum over hits of 1/log2(rank+1), divided by the same sum for a perfect ranking.
    """
    if len(ranked) != len(relevant):
        raise ValueError(f"{len(ranked)} rankings for {len(relevant)} relevance sets")
    if not len(ranked):
        raise ValueError("no queries to evaluate")
    values: dict[str, list[float]] = {f"recall@{k}": [] for k in ks}
    values.update({f"accuracy@{k}": [] for k in ks})
    values[f"mrr@{cutoff}"], values[f"ndcg@{cutoff}"] = [], []
    for found, wanted in zip(ranked, relevant, strict=True):
        if not wanted:
            raise ValueError("every query needs at least one relevant id")
        found = list(found)
        for k in ks:
            hits = sum(1 for item in found[:k] if item in wanted)
            values[f"recall@{k}"].append(hits / len(wanted))
            values[f"accuracy@{k}"].append(float(hits > 0))
        ranks = [rank for rank, item in enumerate(found[:cutoff], start=1) if item in wanted]
        values[f"mrr@{cutoff}"].append(1.0 / ranks[0] if ranks else 0.0)
        dcg = sum(1.0 / math.log2(rank + 1) for rank in ranks)
        ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(wanted), cutoff) + 1))
        values[f"ndcg@{cutoff}"].append(dcg / ideal)
    return {key: np.asarray(column, dtype=np.float64) for key, column in values.items()}


def retrieval_metrics(ranked: Sequence[Sequence[Any]], relevant: Sequence[set[Any]],
                      ks: Sequence[int] = (1, 5, 10), cutoff: int = 10) -> dict[str, float]:
    """Mean recall@k (and accuracy@k), MRR@cutoff and nDCG@cutoff over queries (see per_query_metrics)."""
    return {key: float(column.mean()) for key, column in per_query_metrics(ranked, relevant, ks, cutoff).items()}


class RetrievalEvaluator:
    """Embed a corpus and queries with an encoder, rank the corpus exactly, score the rankings.

    queries_df: `query_id, query, relevant_ids` (`|`-joined corpus ids, or lists in a `relevant`
    column); corpus_df: `id, text`. Calling it with an encoder returns a dict with recall@k and
    accuracy@k for each k, mrr@10, ndcg@10, primary_metric ("ndcg@10"), n_queries, n_corpus and
    seconds; sentence-transformers evaluators work the same way.
    """

    def __init__(self, queries_df: pd.DataFrame, corpus_df: pd.DataFrame, ks: Sequence[int] = (1, 5, 10),
                 name: str = "", batch_size: int = 64, cutoff: int = 10):
        for frame, columns, what in ((queries_df, ("query",), "queries"), (corpus_df, ("id", "text"), "corpus")):
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise ValueError(f"the {what} table lacks column(s) {missing}; it has {list(frame.columns)}")
        if "relevant" not in queries_df.columns and "relevant_ids" not in queries_df.columns:
            raise ValueError("the queries table needs a relevant_ids column (`|`-joined corpus ids)")
        if not ks or any(int(k) < 1 for k in ks):
            raise ValueError(f"ks must be positive integers, got {ks!r}")
        self.ks = tuple(sorted({int(k) for k in ks}))
        self.cutoff = int(cutoff)
        self.name = name
        self.batch_size = batch_size
        self.corpus_ids = [str(i).strip() for i in corpus_df["id"].tolist()]
        self.corpus_texts = [str(t) for t in corpus_df["text"].tolist()]
        position = {cid: i for i, cid in enumerate(self.corpus_ids)}
        if len(position) != len(self.corpus_ids):
            raise ValueError("corpus ids must be unique")
        cells = queries_df["relevant"] if "relevant" in queries_df.columns else queries_df["relevant_ids"]
        self.queries: list[str] = []
        self.query_ids: list[str] = []
        self.relevant: list[set[int]] = []
        unknown: list[str] = []
        ids = queries_df["query_id"].tolist() if "query_id" in queries_df.columns else range(len(queries_df))
        for query_id, query, cell in zip(ids, queries_df["query"].tolist(), cells.tolist(), strict=True):
            wanted = parse_relevant(cell)
            unknown.extend(w for w in wanted if w not in position)
            known = {position[w] for w in wanted if w in position}
            if not known:
                raise ValueError(f"query {query_id!r} has no relevant id in the corpus")
            self.queries.append(str(query))
            self.query_ids.append(str(query_id))
            self.relevant.append(known)
        if unknown:
            raise ValueError(f"{len(unknown)} relevant id(s) are not in the corpus, e.g. {unknown[:3]}")
        if not self.queries:
            raise ValueError("no queries to evaluate")

    @classmethod
    def from_files(cls, queries_path: str | os.PathLike, corpus_path: str | os.PathLike,
                   id_column: str | None = None, text_column: str | None = None,
                   **kwargs: Any) -> RetrievalEvaluator:
        """From the two CSVs, checked by semsim.data (clear errors with row numbers); the corpus's id and
        text columns are found by name (`id`, `doc_id`, `_id`, `corpus_id`...) unless given."""
        from semsim.data import load_retrieval

        queries, corpus = load_retrieval(queries_path, corpus_path, id_column=id_column, text_column=text_column)
        return cls(queries, corpus, **kwargs)

    @classmethod
    def from_beir(cls, folder: str | os.PathLike, split: str = "test", **kwargs: Any) -> RetrievalEvaluator:
        """From a BEIR folder: corpus.jsonl, queries.jsonl and qrels/<split>.tsv."""
        from semsim.data import load_beir

        queries, corpus = load_beir(folder, split)
        return cls(queries, corpus, **kwargs)

    def rank(self, encoder: Any, progress: ProgressFn | None = None, depth: int | None = None) -> np.ndarray:
        """Corpus positions ranked best first for each query (top max(ks, cutoff), or `depth`: the
        candidates a reranker re-scores)."""
        # Imported here: `from semsim.evaluation import ...` for pair or classification metrics
        # should not load FAISS.
        from index import FlatIndex

        corpus_vectors = encoder.encode(self.corpus_texts, batch_size=self.batch_size, progress=progress)
        query_vectors = encoder.encode(self.queries, batch_size=self.batch_size)
        index = FlatIndex(corpus_vectors.shape[1])
        index.add(corpus_vectors, np.arange(len(corpus_vectors)))
        k = max(*self.ks, self.cutoff)
        if depth:  # never more candidates than the corpus has (FAISS would pad with id -1)
            k = min(max(k, depth), len(corpus_vectors))
        _, ranked = index.search(query_vectors, k)
        return ranked

    def __call__(self, encoder: Any, progress: ProgressFn | None = None,
                 per_query: bool = False) -> dict[str, Any]:
        started = time.perf_counter()
        ranked = self.rank(encoder, progress)
        metrics = retrieval_metrics(ranked, self.relevant, self.ks, self.cutoff)
        result: dict[str, Any] = {**metrics, "primary_metric": f"ndcg@{self.cutoff}",
                                  "n_queries": len(self.queries), "n_corpus": len(self.corpus_texts),
                                  "model": getattr(encoder, "spec", None), "name": self.name,
                                  "seconds": round(time.perf_counter() - started, 3)}
        if per_query:  # which queries fail, for comparing a base and a tuned model
            result["per_query"] = [
                {"query_id": qid, "query": query,
                 "first_relevant_rank": next((r for r, p in enumerate(row, start=1) if p in wanted), None),
                 "top": self.corpus_texts[row[0]] if len(row) else None}
                for qid, query, row, wanted in zip(self.query_ids, self.queries, ranked.tolist(),
                                                   self.relevant, strict=True)]
        return result


class PairRetrievalEvaluator:
    """For unscored pairs: how often text_a's nearest text_b (among all of them) is its own.

    Calling it with an encoder returns recall@1 (the primary metric) and mrr@10; a text_b scoring
    exactly as high as the pair's own does not push it down the ranking.
    """

    def __init__(self, texts_a: Sequence[str], texts_b: Sequence[str], name: str = "pairs",
                 batch_size: int = 64):
        if len(texts_a) != len(texts_b):
            raise ValueError("texts_a and texts_b must have the same length")
        if not len(texts_a):
            raise ValueError("no pairs to evaluate")
        self.texts_a, self.texts_b = list(texts_a), list(texts_b)
        self.name = name
        self.batch_size = batch_size

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, name: str = "pairs", **kwargs: Any) -> PairRetrievalEvaluator:
        return cls(frame["text_a"].tolist(), frame["text_b"].tolist(), name=name, **kwargs)

    def __call__(self, encoder: Any) -> dict[str, Any]:
        a = encoder.encode(self.texts_a, batch_size=self.batch_size)
        b = encoder.encode(self.texts_b, batch_size=self.batch_size)
        # 0-based rank of each pair's own text_b: how many other text_b score strictly higher.
        ranks = (a @ b.T > np.sum(a * b, axis=1, keepdims=True)).sum(axis=1)
        return {"dataset": self.name, "n_pairs": len(self.texts_a), "recall@1": float(np.mean(ranks == 0)),
                "mrr@10": float(np.mean(np.where(ranks < 10, 1.0 / (ranks + 1), 0.0))),
                "primary_metric": "recall@1"}
