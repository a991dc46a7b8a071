"""Base vs tuned on the same held-out data: each model's per-item scores (one per pair, query or review) and
every metric's delta with its paired bootstrap 95% interval (semsim.evaluation.bootstrap)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from semsim.evaluation import bootstrap
from semsim.evaluation.retrieval import per_query_metrics

PAIR_METRICS = ("spearman", "pearson")
RETRIEVAL_METRICS = ("ndcg@10", "mrr@10", "recall@1", "recall@10")
CLASSIFICATION_METRICS = ("accuracy", "f1_macro", "roc_auc")
METRICS = {"pairs": PAIR_METRICS, "retrieval": RETRIEVAL_METRICS, "classification": CLASSIFICATION_METRICS}
UNITS = {"pairs": "pairs", "retrieval": "queries", "classification": "texts"}


# -- per-item scores of one model -----------------------------------------------------------------
def pair_items(evaluator: Any, encoder: Any) -> dict[str, np.ndarray]:
    """A PairSimilarityEvaluator's pairs through one model: each pair's score (an encoder's cosine, or a
    pair model's own score_pairs), and the gold scores."""
    score_pairs = getattr(encoder, "score_pairs", None)
    scores = (score_pairs(evaluator.texts_a, evaluator.texts_b, batch_size=evaluator.batch_size)
              if callable(score_pairs) else evaluator.cosine_scores(encoder))
    return {"cosine": np.asarray(scores, dtype=np.float64), "gold": np.asarray(evaluator.scores, dtype=np.float64)}


def retrieval_items(evaluator: Any, encoder: Any, progress: Any = None) -> dict[str, np.ndarray]:
    """A RetrievalEvaluator's queries through one encoder: each query's recall@k, MRR and nDCG."""
    ranked = evaluator.rank(encoder, progress)
    return per_query_metrics(ranked, evaluator.relevant, evaluator.ks, evaluator.cutoff)


def classification_items(evaluator: Any, classifier: Any) -> dict[str, Any]:
    """A ClassificationEvaluator's texts through one classifier: true and predicted labels, probabilities."""
    probabilities = np.asarray(classifier.predict_proba(evaluator.texts), dtype=np.float64)
    labels = [str(x) for x in classifier.labels]
    unknown = sorted(set(evaluator.labels) - set(labels))
    if unknown:
        raise ValueError(f"the data has labels {unknown} that the classifier does not know ({labels})")
    return {"true": list(evaluator.labels), "predicted": [labels[i] for i in probabilities.argmax(axis=1)],
            "probabilities": probabilities, "labels": labels}


def item_count(kind: str, items: dict[str, Any]) -> int:
    if kind == "pairs":
        return len(items["gold"])
    if kind == "classification":
        return len(items["true"])
    return len(next(iter(items.values())))


def statistics(kind: str, items: dict[str, Any]) -> dict[str, bootstrap.Statistic]:
    """The bootstrap statistics of one model's items."""
    if kind == "pairs":
        return bootstrap.pair_statistics(items["cosine"], items["gold"])
    if kind == "retrieval":
        return {name: bootstrap.mean_statistic(values) for name, values in items.items()}
    if kind == "classification":
        return bootstrap.classification_statistics(items["true"], items["predicted"], items["probabilities"],
                                                   items["labels"])
    raise ValueError(f"unknown kind {kind!r}: pairs, retrieval or classification")


def metric_rows(kind: str, base: dict[str, Any], tuned: dict[str, Any] | None,
                metrics: Sequence[str] | None = None, resamples: int = bootstrap.RESAMPLES,
                seed: int = bootstrap.SEED) -> list[dict[str, Any]]:
    """metric, base, tuned, delta, ci95 [low, high] and significant for each metric, from both models'
    items on the same data (the base values alone when `tuned` is None)."""
    n = item_count(kind, base)
    if tuned is not None:
        if item_count(kind, tuned) != n:
            raise ValueError(f"a paired comparison needs the same items: base has {n}, tuned "
                             f"{item_count(kind, tuned)}")
        if kind == "pairs" and not np.array_equal(base["gold"], tuned["gold"]):
            raise ValueError("a paired comparison needs the same pairs for both models")
        if kind == "classification" and list(base["true"]) != list(tuned["true"]):
            raise ValueError("a paired comparison needs the same texts for both classifiers")
    return bootstrap.compare(statistics(kind, base), None if tuned is None else statistics(kind, tuned), n,
                             metrics or METRICS[kind], resamples=resamples, seed=seed)
