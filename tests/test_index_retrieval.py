"""Retrieval metrics against hand-computed values, and the evaluator end to end with a fake encoder."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from semsim.evaluation.retrieval import RetrievalEvaluator, parse_relevant, retrieval_metrics
from tests.test_index_fakes import TrigramEncoder


def test_metrics_on_a_hand_computed_example():
    # Query 1 finds its one relevant item first; query 2 finds it second.
    metrics = retrieval_metrics([["a", "b", "c"], ["a", "c", "b"]], [{"a"}, {"c"}], ks=(1, 2), cutoff=3)
    assert metrics["recall@1"] == pytest.approx(0.5)
    assert metrics["recall@2"] == pytest.approx(1.0)
    assert metrics["accuracy@1"] == pytest.approx(0.5)
    assert metrics["mrr@3"] == pytest.approx(0.75)  # (1 + 1/2) / 2
    assert metrics["ndcg@3"] == pytest.approx((1 + 1 / math.log2(3)) / 2)  # 0.8155


def test_metrics_with_several_relevant_items_and_misses():
    # Two relevant items, one found at rank 3: recall@5 = 1/2, MRR = 1/3,
    # nDCG = (1/log2(4)) / (1/log2(2) + 1/log2(3)).
    one = retrieval_metrics([["x", "y", "r1", "z", "w"]], [{"r1", "r2"}], ks=(1, 5), cutoff=5)
    assert one["recall@1"] == 0 and one["recall@5"] == pytest.approx(0.5)
    assert one["mrr@5"] == pytest.approx(1 / 3)
    assert one["ndcg@5"] == pytest.approx(0.5 / (1 + 1 / math.log2(3)))
    missed = retrieval_metrics([["x", "y"]], [{"r"}], ks=(1,), cutoff=2)
    assert missed["mrr@2"] == 0 and missed["ndcg@2"] == 0 and missed["recall@1"] == 0
    perfect = retrieval_metrics([["a", "b"]], [{"a", "b"}], ks=(2,), cutoff=10)
    assert perfect["recall@2"] == 1 and perfect["ndcg@10"] == pytest.approx(1.0)


def test_metrics_refuse_bad_input():
    with pytest.raises(ValueError, match="no queries"):
        retrieval_metrics([], [])
    with pytest.raises(ValueError, match="relevant"):
        retrieval_metrics([["a"]], [set()])


def test_parse_relevant():
    assert parse_relevant("a| b ||c") == ["a", "b", "c"]
    assert parse_relevant(["x", " y "]) == ["x", "y"]


CORPUS = pd.DataFrame({"id": ["c1", "c2", "c3", "c4"],
                       "text": ["data scientist", "registered nurse", "bus driver", "head chef"]})
QUERIES = pd.DataFrame({"query_id": ["q1", "q2", "q3"],
                        "query": ["data scientist", "nurse", "chef de cuisine"],
                        "relevant_ids": ["c1", "c2|c4", "c4"]})


def test_evaluator_returns_sentence_transformers_style_metrics():
    evaluator = RetrievalEvaluator(QUERIES, CORPUS, name="toy")
    result = evaluator(TrigramEncoder())
    assert result["primary_metric"] == "ndcg@10" and result["n_queries"] == 3 and result["n_corpus"] == 4
    for key in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"):
        assert 0.0 <= result[key] <= 1.0
    assert result["recall@10"] == pytest.approx(1.0)  # the corpus is smaller than 10: everything is found
    assert result["name"] == "toy" and result["model"] == "fake-trigram"
    assert result["recall@1"] >= 1 / 3  # "data scientist" finds itself first


def test_evaluator_details_per_query():
    result = RetrievalEvaluator(QUERIES, CORPUS)(TrigramEncoder(), per_query=True)
    first = result["per_query"][0]
    assert first["query_id"] == "q1" and first["first_relevant_rank"] == 1 and first["top"] == "data scientist"


def test_evaluator_checks_its_tables():
    with pytest.raises(ValueError, match="not in the corpus"):
        RetrievalEvaluator(QUERIES.assign(relevant_ids=["c1", "c2|zz", "c4"]), CORPUS)
    with pytest.raises(ValueError, match="unique"):
        RetrievalEvaluator(QUERIES, pd.concat([CORPUS, CORPUS]))
    with pytest.raises(ValueError, match="lacks"):
        RetrievalEvaluator(QUERIES, CORPUS.rename(columns={"text": "title"}))


def test_evaluator_from_files(tmp_path):
    QUERIES.to_csv(tmp_path / "q.csv", index=False)
    CORPUS.to_csv(tmp_path / "c.csv", index=False)
    evaluator = RetrievalEvaluator.from_files(tmp_path / "q.csv", tmp_path / "c.csv", ks=(1, 3))
    result = evaluator(TrigramEncoder())
    assert "recall@3" in result and "ndcg@10" in result and result["n_queries"] == 3
