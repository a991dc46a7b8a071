"""Matryoshka: the loss at each prefix (equal to the plain loss at the full dimension alone), --dim on an index
(recorded, queries cut to match, a mismatch refused), and a short training run that uses it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from index import VectorIndexError
from semsim.matryoshka import DimensionError, TruncatedEncoder, parse_dims, quality_by_dimension, truncate

A = ["data scientist", "nurse", "software engineer", "chef", "sales manager", "teacher"]
B = ["data analyst", "doctor", "software developer", "cook", "sales analyst", "good teacher"]
SCORES = np.array([0.9, 0.2, 0.95, 0.7, 0.5, 0.6], dtype="float32")


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    from semsim.encoders import load_encoder

    return load_encoder(f"keras-hub:{tiny_bert_dir}", cache=False)


def _objectives():
    from semsim.training import objectives as o

    found = {"cosent": (o.CoSENTObjective(), None), "mnrl": (o.MultipleNegativesRankingObjective(), None)}
    if hasattr(o, "MultiTaskObjective"):  # multi-part training (#13): the wrapper must work around it too
        both = [o.CoSENTObjective(), o.MultipleNegativesRankingObjective()]
        found.update({"multi-task, cosent part": (o.MultiTaskObjective(both), 0),
                      "multi-task, mnrl part": (o.MultiTaskObjective(both), 1)})
    return found


@pytest.mark.parametrize("name", list(_objectives()))
def test_matryoshka_loss_is_the_plain_loss_at_the_full_dimension_and_the_sum_of_cuts(encoder, name):
    from semsim.training.batches import pair_batch_inputs
    from semsim.training.matryoshka import MatryoshkaObjective

    objective, part = _objectives()[name]
    y = objective.targets(SCORES) if part is None else objective.targets(SCORES, part)
    inputs = pair_batch_inputs(encoder, A, B, False)
    plain = float(objective.loss(y, objective.build_model(encoder.model)(inputs)))

    only_full = MatryoshkaObjective(objective, (encoder.dim,))
    assert float(only_full.loss(y, only_full.build_model(encoder.model)(inputs))) == pytest.approx(plain, abs=1e-5)

    # Two dimensions: the plain loss plus the loss on vectors cut to 8 and re-normalised by hand.
    both = MatryoshkaObjective(objective, (encoder.dim, 8))
    summed = float(both.loss(y, both.build_model(encoder.model)(inputs)))
    a, b = truncate(encoder.encode(A), 8), truncate(encoder.encode(B), 8)
    cut = a @ b.T if part is not None or name == "mnrl" else np.sum(a * b, axis=1)
    if name == "mnrl":
        cut = objective.scale * cut
    expected = plain + float(objective.loss(y, cut.astype("float32")))
    assert summed == pytest.approx(expected, rel=1e-4)
    assert summed > plain + 1e-4  # the cut's loss is really added, not a copy of the full one


def test_matryoshka_option_is_checked():
    from semsim.training.spec import PairTrainingRequest, TrainingError

    request = PairTrainingRequest(data="job-title-pairs", out="x", matryoshka="64, 384,128")
    assert request.matryoshka_dims == (384, 128, 64)
    for bad in ("384,abc", "0,64", "64,64"):
        with pytest.raises(TrainingError, match="--matryoshka"):
            PairTrainingRequest(data="job-title-pairs", out="x", matryoshka=bad)
    assert parse_dims(None) == ()


def test_a_training_run_with_matryoshka_dims(encoder, tiny_bert_dir, tmp_path):
    from tests.training_runs import fit_pairs

    frame = pd.DataFrame({"text_a": A * 4, "text_b": B * 4, "score": np.tile(SCORES, 4)})
    card = fit_pairs(f"keras-hub:{tiny_bert_dir}", frame, tmp_path / "m", validation=frame, epochs=1,
                     matryoshka="16,8,4")
    assert card["objective"]["matryoshka_dims"] == [16, 8, 4]
    assert card["training"]["epochs_run"] == 1 and np.isfinite(card["training"]["loss_history"]).all()
    with pytest.raises(Exception, match="cannot be cut"):
        fit_pairs(f"keras-hub:{tiny_bert_dir}", frame, tmp_path / "n", validation=frame, epochs=1, matryoshka="32,8")


def test_an_index_built_with_dim_records_it_cuts_queries_and_refuses_a_mismatch(encoder, tmp_path):
    from semsim.corpus_index import build_index, index_info
    from semsim.search import search_index

    texts = ["data scientist", "nurse", "software engineer", "chef", "teacher", "sales manager", "driver"]
    build_index(TruncatedEncoder(encoder, 8), texts, column="text", out_dir=tmp_path / "i8", kind="flat")
    info = index_info(tmp_path / "i8")
    assert info["dim"] == 8 and info["encoder"]["truncated_from"] == encoder.dim
    hits = search_index(encoder, tmp_path / "i8", "data scientist", k=3)  # the full model, cut to match
    assert hits[0]["text"] == "data scientist" and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(VectorIndexError, match="8-d vectors; --dim 16 does not match"):
        search_index(encoder, tmp_path / "i8", "nurse", dim=16)
    from semsim.search import load_index

    with pytest.raises(VectorIndexError, match="dimension mismatch"):
        load_index(tmp_path / "i8").search(encoder.encode(["nurse"]), 3)  # an uncut 16-d query
    # An index of whole vectors refuses a model cut to another size.
    build_index(encoder, texts, column="text", out_dir=tmp_path / "i16", kind="flat")
    with pytest.raises(VectorIndexError, match="vector sizes differ"):
        search_index(TruncatedEncoder(encoder, 8), tmp_path / "i16", "nurse")
    with pytest.raises(DimensionError, match="between 1 and 16"):
        TruncatedEncoder(encoder, 99)


def test_quality_by_dimension_encodes_once_and_cuts(encoder):
    sts = pd.DataFrame({"text_a": A, "text_b": B, "score": SCORES})
    queries = pd.DataFrame({"query_id": ["q1", "q2"], "query": ["data scientist", "cook"], "relevant_ids": ["1", "4"]})
    corpus = pd.DataFrame({"id": [str(i) for i in range(1, 7)], "text": B})
    calls = []
    original = encoder.encode

    def counting(texts, **kwargs):
        calls.append(len(texts))
        return original(texts, **kwargs)

    encoder.encode = counting
    try:
        rows = quality_by_dimension(encoder, (16, 8, 4), sts=sts, retrieval=(queries, corpus))
    finally:
        del encoder.encode
    assert [r["dim"] for r in rows] == [16, 8, 4]
    assert sum(calls) == len(set(A + B + ["data scientist", "cook"]))  # every text embedded once
    assert all(-100 <= r["sts_spearman"] <= 100 and 0 <= r["esco_ndcg@10"] <= 1 for r in rows)
