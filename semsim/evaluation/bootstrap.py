"""Paired bootstrap 95% intervals of base-vs-tuned metric deltas, from per-item scores of both models.

"Paired": every resample draws the same queries, pairs or reviews for both models, so what the two
models share (an easy query, a hard pair) cancels out of the delta and the interval is about the
difference alone. Percentile intervals, 1,000 seeded resamples by default, numpy only and vectorised:
each statistic maps a (resamples, n) matrix of drawn item positions to one value per resample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
# Draws held at once (resamples x items): 1,000 resamples of 4,000 items is one block; larger sets are
# drawn in several blocks of the same random stream, so memory stays flat.
BLOCK = 4_000_000

Statistic = Callable[[np.ndarray], np.ndarray]  # (resamples, n) item positions -> (resamples,) values


def resample_blocks(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> Iterator[np.ndarray]:
    """Blocks of resampled item positions, (rows, n) each, `resamples` rows in all."""
    if n < 1:
        raise ValueError("nothing to resample: no items")
    rng = np.random.default_rng(seed)
    per_block = max(1, BLOCK // n)
    for start in range(0, resamples, per_block):
        yield rng.integers(0, n, size=(min(per_block, resamples - start), n))


def _counts(positions: np.ndarray, n: int) -> np.ndarray:
    """How often each item was drawn in each resample: (rows, n)."""
    rows = positions.shape[0]
    flat = (positions + (np.arange(rows) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank), as Spearman needs."""
    from scipy.stats import rankdata

    return rankdata(values, axis=-1)


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    numerator = (x * y).sum(axis=-1)
    denominator = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    return np.divide(numerator, denominator, out=np.full(numerator.shape, np.nan), where=denominator > 0)


# -- statistics ---------------------------------------------------------------------------------
def mean_statistic(values: Sequence[float] | np.ndarray) -> Statistic:
    """The mean of a per-item score (recall@k of each query, whether each review was right, ...)."""
    values = np.asarray(values, dtype=np.float64)
    return lambda positions: values[positions].mean(axis=-1)


def pair_statistics(scores: np.ndarray, gold: np.ndarray) -> dict[str, Statistic]:
    """Spearman and Pearson correlation of a model's scores (cosines) with gold scores, over the drawn pairs.

    Spearman re-ranks within each resample: a pair drawn twice is two tied observations, as it would be
    in a data set that held it twice."""
    scores, gold = np.asarray(scores, dtype=np.float64), np.asarray(gold, dtype=np.float64)
    return {"spearman": lambda p: _pearson_rows(_ranks(scores[p]), _ranks(gold[p])),
            "pearson": lambda p: _pearson_rows(scores[p], gold[p])}


def classification_statistics(true: Sequence[str], predicted: Sequence[str], probabilities: np.ndarray | None,
                              labels: Sequence[str]) -> dict[str, Statistic]:
    """Accuracy, macro F1 and ROC AUC over the drawn reviews, defined as in classification_metrics
    (`labels` in the classifier's order, one probability column each; binary AUC is the second label's)."""
    labels = [str(x) for x in labels]
    index = {name: i for i, name in enumerate(labels)}
    true_ids = np.array([index[str(x)] for x in true])
    predicted_ids = np.array([index[str(x)] for x in predicted])
    correct = (true_ids == predicted_ids).astype(np.float64)
    classes = len(labels)
    true_hot = np.eye(classes)[true_ids]
    predicted_hot = np.eye(classes)[predicted_ids]
    n = len(true_ids)

    def f1_macro(positions: np.ndarray) -> np.ndarray:
        counts = _counts(positions, n)
        hits = counts @ (true_hot * correct[:, None])
        said, actual = counts @ predicted_hot, counts @ true_hot
        precision = np.divide(hits, said, out=np.zeros_like(hits), where=said > 0)
        recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
        total = precision + recall
        return np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0).mean(axis=-1)

    statistics: dict[str, Statistic] = {"accuracy": mean_statistic(correct), "f1_macro": f1_macro}
    if probabilities is not None and classes >= 2:
        probabilities = np.asarray(probabilities, dtype=np.float64)

        def auc_of(column: int, positions: np.ndarray) -> np.ndarray:
            positive = true_ids[positions] == column
            ranks = _ranks(probabilities[positions, column])
            count = positive.sum(axis=-1).astype(np.float64)
            other = positive.shape[-1] - count
            statistic = (ranks * positive).sum(axis=-1) - count * (count + 1) / 2
            denominator = count * other
            return np.divide(statistic, denominator, out=np.full(statistic.shape, np.nan), where=denominator > 0)

        if classes == 2:
            statistics["roc_auc"] = lambda p: auc_of(1, p)
        else:
            statistics["roc_auc"] = lambda p: np.nanmean(np.stack([auc_of(c, p) for c in range(classes)]), axis=0)
    return statistics


# -- the comparison -----------------------------------------------------------------------------
def compare(base: Mapping[str, Statistic], tuned: Mapping[str, Statistic] | None, n: int,
            metrics: Sequence[str] | None = None, resamples: int = RESAMPLES, seed: int = SEED) -> list[dict[str, Any]]:
    """One row per metric: base, tuned, delta (tuned - base) and the paired bootstrap 95% interval of the
    delta; `significant` is False when the interval contains 0. Without `tuned`: the base values alone.

    Both models' statistics see the very same resampled items (that is what makes it paired)."""
    names = [m for m in (metrics or list(base)) if m in base and (tuned is None or m in tuned)]
    everything = np.arange(n)[None, :]
    rows = []
    for name in names:
        value = float(base[name](everything)[0])
        rows.append({"metric": name, "base": value, "tuned": None, "delta": None, "ci95": None,
                     "significant": None})
    if tuned is None or not names:
        return rows
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    deltas: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for positions in resample_blocks(n, resamples, seed):
        for name in names:
            deltas[name].append(tuned[name](positions) - base[name](positions))
    tail = 100 * (1 - LEVEL) / 2
    for row in rows:
        name = row["metric"]
        value = float(tuned[name](everything)[0])
        drawn = np.concatenate(deltas[name])
        drawn = drawn[np.isfinite(drawn)]  # a resample without both classes has no AUC
        low, high = (float(x) for x in np.percentile(drawn, [tail, 100 - tail])) if len(drawn) else (np.nan,) * 2
        row.update(tuned=value, delta=value - row["base"], ci95=[low, high],
                   significant=bool(np.isfinite(low) and (low > 0 or high < 0)))
    return rows
