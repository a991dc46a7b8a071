"""Evaluators, sentence-transformers style: `evaluator(model) -> dict` with a `primary_metric` key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats


def _unique_encode(encoder: Any, texts: Sequence[str], batch_size: int) -> dict[str, np.ndarray]:
    """Encode each distinct text once (STS-B repeats many sentences)."""
    unique = list(dict.fromkeys(texts))
    vectors = encoder.encode(unique, batch_size=batch_size)
    return dict(zip(unique, vectors, strict=True))


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
        cosine = self.cosine_scores(encoder)
        pearson = float(stats.pearsonr(cosine, self.scores)[0])
        spearman = float(stats.spearmanr(cosine, self.scores)[0])
        return {"dataset": self.name, "n_pairs": len(self.scores), "pearson": pearson, "spearman": spearman,
                "pearson_x100": round(pearson * 100, 2), "spearman_x100": round(spearman * 100, 2),
                "primary_metric": "spearman"}


def binary_roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC from the Mann-Whitney rank statistic (ties get average ranks)."""
    labels = np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def classification_metrics(true_labels: Sequence[str], predicted_labels: Sequence[str],
                           probabilities: np.ndarray | None = None,
                           label_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy, per-class and macro precision/recall/F1, confusion matrix, ROC AUC when probabilities exist.

    `probabilities` has one column per entry of `label_names` (in that order).
    """
    true_labels = np.asarray([str(x) for x in true_labels])
    predicted_labels = np.asarray([str(x) for x in predicted_labels])
    names = list(label_names) if label_names is not None else sorted(set(true_labels) | set(predicted_labels))
    index = {name: i for i, name in enumerate(names)}
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    for t, p in zip(true_labels, predicted_labels, strict=True):
        confusion[index[t], index[p]] += 1
    tp = np.diag(confusion).astype(np.float64)
    precision = np.divide(tp, confusion.sum(axis=0), out=np.zeros_like(tp), where=confusion.sum(axis=0) > 0)
    recall = np.divide(tp, confusion.sum(axis=1), out=np.zeros_like(tp), where=confusion.sum(axis=1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp),
                   where=(precision + recall) > 0)
    result: dict[str, Any] = {
        "n": int(len(true_labels)),
        "accuracy": float(tp.sum() / max(len(true_labels), 1)),
        "precision_macro": float(precision.mean()), "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(confusion[i].sum())} for i, name in enumerate(names)},
        "labels": names, "confusion_matrix": confusion.tolist(), "primary_metric": "accuracy",
    }
    if probabilities is not None and len(names) >= 2:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        aucs = [binary_roc_auc(true_labels == name, probabilities[:, i]) for i, name in enumerate(names)]
        # Binary: the AUC of the second class (the positive one); multi-class: one-vs-rest macro average.
        result["roc_auc"] = aucs[1] if len(names) == 2 else float(np.nanmean(aucs))
    return result


class ClassificationEvaluator:
    """Accuracy, precision, recall, F1, ROC AUC and the confusion matrix of a text classifier."""

    def __init__(self, texts: Sequence[str], labels: Sequence[str], name: str = "classification"):
        self.texts, self.labels, self.name = list(texts), [str(x) for x in labels], name

    @classmethod
    def from_frame(cls, frame: Any, name: str = "classification") -> ClassificationEvaluator:
        return cls(frame["text"].tolist(), frame["label"].tolist(), name=name)

    def __call__(self, classifier: Any) -> dict[str, Any]:
        probabilities = classifier.predict_proba(self.texts)
        predicted = [classifier.labels[i] for i in probabilities.argmax(axis=1)]
        return {"dataset": self.name, **classification_metrics(self.labels, predicted, probabilities,
                                                               classifier.labels)}
