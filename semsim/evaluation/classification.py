"""Classification evaluation: accuracy, precision, recall, F1, ROC AUC and the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats


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
