"""Evaluators, sentence-transformers style: `evaluator(model) -> dict` with a `primary_metric` key."""

from semsim.evaluation.classification import ClassificationEvaluator, classification_metrics
from semsim.evaluation.pairs import PairSimilarityEvaluator
from semsim.evaluation.retrieval import PairRetrievalEvaluator, RetrievalEvaluator, retrieval_metrics

__all__ = ["ClassificationEvaluator", "PairRetrievalEvaluator", "PairSimilarityEvaluator", "RetrievalEvaluator",
           "classification_metrics", "retrieval_metrics"]
