"""Retrieve and rerank: FAISS candidates from a bi-encoder, re-scored by a pair model (a cross-encoder), and how much that changes retrieval metrics and latency."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_CANDIDATES = 100


def rerank(scorer: Any, query: str, hits: Sequence[dict[str, Any]], k: int | None = None,
           batch_size: int | None = None) -> list[dict[str, Any]]:
    """The hits re-ordered by `scorer.score_pairs([query] * n, texts)`, best first, the top `k` kept.

    Each hit keeps its fields (`score` stays the retrieval cosine) and gains `rerank_score`,
    `retrieval_rank` (its place in the candidate list) and `rank_change` (positive: moved up); `rank`
    becomes its new place. Ties keep the retrieval order."""
    hits = list(hits)
    if not hits:
        return []
    texts = [str(hit["text"]) for hit in hits]
    scores = np.asarray(scorer.score_pairs([query] * len(texts), texts, batch_size=batch_size or len(texts)),
                        dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    out = []
    for new_rank, i in enumerate(order[:k] if k else order, start=1):
        hit = dict(hits[i])
        retrieval_rank = int(hit.get("rank", i + 1))
        hit.update(rank=new_rank, rerank_score=float(scores[i]), retrieval_rank=retrieval_rank,
                   rank_change=retrieval_rank - new_rank)
        out.append(hit)
    return out


def search_and_rerank(encoder: Any, store: Any, scorer: Any, query: str, k: int = 10,
                      candidates: int = DEFAULT_CANDIDATES) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Top `candidates` from the index, re-scored by `scorer`, the best `k` returned; with the seconds
    each stage took ({"retrieval": ..., "rerank": ...})."""
    from semsim.search import search_index

    started = time.perf_counter()
    hits = search_index(encoder, store, query, k=max(k, candidates))
    retrieved = time.perf_counter()
    reranked = rerank(scorer, query, hits, k)
    return reranked, {"retrieval": retrieved - started, "rerank": time.perf_counter() - retrieved}


def evaluate_reranked(evaluator: Any, encoder: Any, scorer: Any, candidates: int = DEFAULT_CANDIDATES,
                      progress: Any = None) -> dict[str, Any]:
    """A RetrievalEvaluator's metrics with the bi-encoder alone and with its top `candidates` re-scored by
    `scorer`, on the same queries; plus the rerank time per query (p50/p95, one query's candidates at a time,
    as a search does)."""
    from semsim.evaluation.retrieval import retrieval_metrics

    started = time.perf_counter()
    ranked = evaluator.rank(encoder, progress, depth=candidates)
    alone = retrieval_metrics(ranked, evaluator.relevant, evaluator.ks, evaluator.cutoff)
    reranked, seconds = [], []
    for query, row in zip(evaluator.queries, ranked, strict=True):
        row = [int(i) for i in row if i >= 0]
        # Only the top `candidates` are re-scored; any deeper results (the metrics' cutoff) keep their order.
        head, tail = row[:candidates], row[candidates:]
        texts = [evaluator.corpus_texts[i] for i in head]
        begin = time.perf_counter()
        scores = np.asarray(scorer.score_pairs([query] * len(texts), texts, batch_size=max(len(texts), 1)))
        seconds.append(time.perf_counter() - begin)
        reranked.append([head[i] for i in np.argsort(-scores, kind="stable")] + tail)
    metrics = retrieval_metrics(reranked, evaluator.relevant, evaluator.ks, evaluator.cutoff)
    primary = f"ndcg@{evaluator.cutoff}"
    milliseconds = np.asarray(seconds) * 1000
    return {**metrics, "primary_metric": primary, "n_queries": len(evaluator.queries),
            "n_corpus": len(evaluator.corpus_texts), "model": getattr(encoder, "spec", None),
            "reranker": getattr(scorer, "spec", None), "scored_by": getattr(scorer, "scored_by", None),
            "name": evaluator.name, "candidates": min(candidates, int(ranked.shape[1])) if len(ranked) else 0,
            "bi_encoder_alone": alone, f"delta_{primary}": metrics[primary] - alone[primary],
            "rerank_ms_p50": float(np.percentile(milliseconds, 50)),
            "rerank_ms_p95": float(np.percentile(milliseconds, 95)),
            "seconds": round(time.perf_counter() - started, 3)}
