"""Pair-classification evaluation: accuracy, macro-F1, per-class precision/recall and the confusion matrix of a pair classifier."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from semsim.evaluation.classification import classification_metrics


class PairClassificationEvaluator:
    """Calling it with a pair classifier (anything with `predict_proba(texts_a, texts_b)` and `labels`)
    returns classification_metrics plus the dataset name; primary metric: accuracy."""

    def __init__(self, texts_a: Sequence[str], texts_b: Sequence[str], labels: Sequence[str],
                 name: str = "pairs", batch_size: int = 64):
        if not (len(texts_a) == len(texts_b) == len(labels)):
            raise ValueError("texts_a, texts_b and labels must have the same length")
        if not len(labels):
            raise ValueError("no pairs to evaluate")
        self.texts_a, self.texts_b = list(texts_a), list(texts_b)
        self.labels = [str(x) for x in labels]
        self.name, self.batch_size = name, batch_size

    @classmethod
    def from_frame(cls, frame: Any, name: str = "pairs", **kwargs: Any) -> PairClassificationEvaluator:
        return cls(frame["text_a"].tolist(), frame["text_b"].tolist(), frame["label"].tolist(), name=name, **kwargs)

    def __call__(self, model: Any) -> dict[str, Any]:
        unknown = sorted(set(self.labels) - set(model.labels))
        if unknown:
            raise ValueError(f"{self.name} has labels {unknown} the model does not know ({', '.join(model.labels)})")
        probabilities = model.predict_proba(self.texts_a, self.texts_b, batch_size=self.batch_size)
        predicted = [model.labels[i] for i in probabilities.argmax(axis=1)]
        return {"dataset": self.name, **classification_metrics(self.labels, predicted, probabilities, model.labels)}
