"""Pair similarity evaluation: Pearson and Spearman correlation of cosine similarity with gold scores."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats


def _unique_encode(encoder: Any, texts: Sequence[str], batch_size: int) -> dict[str, np.ndarray]:
    """Encode each distinct text once (STS-B repeats many sentences)."""
    unique = list(dict.fromkeys(texts))
    vectors = encoder.encode(unique, batch_size=batch_size)
    return dict(zip(unique, vectors, strict=True))


def correlations(predicted: np.ndarray, gold: np.ndarray) -> tuple[float, float, str | None]:
    """(Pearson, Spearman, None), or (NaN, NaN, why) when either side is constant: a correlation with a
    constant is undefined, and saying so beats scipy's warning and a bare NaN (which --json cannot print)."""
    if np.ptp(gold) == 0:
        return math.nan, math.nan, (f"every gold score is {gold[0]:g}, so a correlation with them is undefined; "
                                    f"use pairs with different scores")
    if np.ptp(predicted) == 0:
        return math.nan, math.nan, "the model gave every pair the same similarity, so a correlation is undefined"
    return float(stats.pearsonr(predicted, gold)[0]), float(stats.spearmanr(predicted, gold)[0]), None


class PairSimilarityEvaluator:
    """Pearson and Spearman correlation between cosine similarity and gold scores of text pairs."""

    def __init__(self, texts_a: Sequence[str], texts_b: Sequence[str], scores: Sequence[float],
                 name: str = "pairs", batch_size: int = 64):
        if not (len(texts_a) == len(texts_b) == len(scores)):
            raise ValueError("texts_a, texts_b and scores must have the same length")
        if len(scores) < 2:
            raise ValueError("need at least two pairs to compute a correlation")
        self.texts_a, self.texts_b = list(texts_a), list(texts_b)
        self.scores = np.asarray(scores, dtype=np.float64)
        self.name = name
        self.batch_size = batch_size

    @classmethod
    def from_frame(cls, frame: Any, name: str = "pairs", **kwargs: Any) -> PairSimilarityEvaluator:
        return cls(frame["text_a"].tolist(), frame["text_b"].tolist(), frame["score"].tolist(), name=name,
                   **kwargs)

    def cosine_scores(self, encoder: Any) -> np.ndarray:
        vectors = _unique_encode(encoder, self.texts_a + self.texts_b, self.batch_size)
        a = np.stack([vectors[t] for t in self.texts_a])
        b = np.stack([vectors[t] for t in self.texts_b])
        return np.sum(a * b, axis=1)

    def __call__(self, encoder: Any) -> dict[str, Any]:
        # A pair model (cross-encoder, regression head) scores each pair itself; an encoder by cosine.
        score_pairs = getattr(encoder, "score_pairs", None)
        cosine = (np.asarray(score_pairs(self.texts_a, self.texts_b, batch_size=self.batch_size), dtype=np.float64)
                  if callable(score_pairs) else self.cosine_scores(encoder))
        pearson, spearman, undefined = correlations(cosine, self.scores)
        result = {"dataset": self.name, "n_pairs": len(self.scores), "pearson": pearson, "spearman": spearman,
                  "pearson_x100": round(pearson * 100, 2), "spearman_x100": round(spearman * 100, 2),
                  "primary_metric": "spearman"}
        if undefined:
            result["undefined_because"] = undefined
        return result
