"""Pairs page (two pair models side by side, metrics and confusion matrices on labels) and the Search page's
rerank toggle (FAISS candidates re-scored by a cross-encoder, both scores and the rank change shown)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest_plugins = ["tests.app_fixtures"]

LABELLED = ("text_a,text_b,label\nData scientist,Data analyst,same\nChef,Midwife,other\nNurse,Midwife,same\n"
            "Bus driver,Lecturer,other\nChef,Sous chef,same\n")


@pytest.fixture(scope="module")
def pair_models(tiny_assets, tmp_path_factory):
    """A tiny cross-encoder and a bi-encoder + head (random heads) on the app's tiny base model."""
    import keras

    from semsim.encoders import load_encoder
    from semsim.pair_classifier import PairClassifier

    root = tmp_path_factory.mktemp("pair_models")
    keras.utils.set_random_seed(7)
    for name, architecture in (("tiny-cross", "cross"), ("tiny-bi", "bi")):
        model = PairClassifier.build(load_encoder(tiny_assets.base_spec, cache=False), architecture=architecture,
                                     head_kind="classification", labels=["other", "same"])
        model.save(root / name)
    return root


def install_pairs(app_env, pair_models, *names):
    for name in names:
        shutil.copytree(pair_models / name, app_env.models / name)


def test_without_pair_models_says_how_to_train_one(app_env):
    at = app_env.app("pairs").run()
    app_env.ok(at)
    assert any("No pair model yet" in i.value and "train pair-classifier" in i.value for i in at.info)
    assert not at.dataframe


def test_typed_pairs_side_by_side(app_env, pair_models):
    install_pairs(app_env, pair_models, "tiny-cross", "tiny-bi")
    at = app_env.app("pairs").run()
    app_env.ok(at)
    [table] = app_env.frames(at, "text a", "text b", "tiny-cross: label", "tiny-bi: label")
    assert len(table) == 5 and table["text a"].iloc[0] == "data scientist"
    for side in ("tiny-cross", "tiny-bi"):
        assert set(table[f"{side}: label"]) <= {"other", "same"}
        total = table[f"{side}: p(other)"] + table[f"{side}: p(same)"]
        assert np.allclose(total, 1.0, atol=1e-5)
        assert (table[f"{side}: probability"] == table[[f"{side}: p(other)", f"{side}: p(same)"]].max(axis=1)).all()
    assert table["agree"].dtype == bool
    assert "cross-encoder" in app_env.texts(at) and "bi-encoder + head" in app_env.texts(at)
    at.text_area(key="pairs.texts").input("nurse | midwife\nno separator here\n").run()
    app_env.no_exceptions(at)
    [table] = app_env.frames(at, "text a", "tiny-cross: label")
    assert table["text b"].tolist() == ["midwife"]
    assert any("Line(s) 2" in w.value for w in at.warning)


def test_labelled_upload_gets_metrics_and_confusion_matrices(app_env, pair_models):
    install_pairs(app_env, pair_models, "tiny-cross", "tiny-bi")
    at = app_env.app("pairs").run()
    at.radio(key="pairs.source").set_value("upload").run()
    at.file_uploader(key="pairs.upload").set_value(("pairs.csv", LABELLED.encode(), "text/csv")).run()
    app_env.ok(at)
    [table] = app_env.frames(at, "text a", "true label")
    [metrics] = app_env.frames(at, "metric", "tiny-cross", "tiny-bi", "delta")
    accuracy = metrics.set_index("metric").loc["accuracy"]
    assert np.isclose(accuracy["tiny-cross"], (table["tiny-cross: label"] == table["true label"]).mean())
    assert np.isclose(accuracy["delta"], accuracy["tiny-bi"] - accuracy["tiny-cross"])
    charts = app_env.charts(at)
    assert len(charts) == 2 and all(app_env.array(c["data"][0]["z"]).sum() == 5 for c in charts)


def test_snli_upload_drops_unlabelled_pairs_and_refuses_unknown_labels(app_env, pair_models):
    install_pairs(app_env, pair_models, "tiny-cross")
    lines = [{"sentence1": "the chef", "sentence2": "a cook", "gold_label": label}
             for label in ("same", "-", "other", "-")]
    raw = "\n".join(json.dumps(line) for line in lines).encode()
    at = app_env.app("pairs").run()
    at.radio(key="pairs.source").set_value("upload").run()
    at.file_uploader(key="pairs.upload").set_value(("dev.jsonl", raw, "application/json")).run()
    app_env.ok(at)
    assert "2 pairs with labels; 2 with gold_label '-' dropped" in app_env.texts(at)
    bad = b'{"sentence1": "a", "sentence2": "b", "gold_label": "entailment"}\n{"sentence1": "c", "sentence2": "d", "gold_label": "neutral"}\n'
    at.file_uploader(key="pairs.upload").set_value(("nli.jsonl", bad, "application/json")).run()
    app_env.no_exceptions(at)
    assert any("does not know" in error for error in app_env.errors(at))


def test_search_rerank_toggle_shows_both_scores_and_the_rank_change(app_env, pair_models):
    app_env.install(models=("tiny-tuned",), indexes=("tiny--titles", "tiny-tuned--titles"))
    install_pairs(app_env, pair_models, "tiny-cross")
    at = app_env.app("search").run()
    app_env.ok(at)
    at.text_input(key="search.query").input("Data scientist")
    next(b for b in at.button if b.label == "Search").click().run()
    app_env.ok(at)
    plain_base, _ = app_env.frames(at, "rank", "change", "text", "score")
    at.toggle(key="search.rerank").set_value(True).run()
    app_env.ok(at)
    at.number_input(key="search.candidates").set_value(10).run()  # as many candidates as the top k
    app_env.ok(at)
    base, tuned = app_env.frames(at, "rank", "text", "cross-encoder score", "retrieval rank")
    assert len(base) == len(tuned) == 10
    # The same candidates (the base index's top 10), in a new order: the cross-encoder's.
    candidates = plain_base["text"].tolist()
    assert sorted(base["text"]) == sorted(candidates) and base["text"].tolist() != candidates
    for _, row in base.iterrows():
        assert candidates[row["retrieval rank"] - 1] == row["text"]
        assert row["Δ rank"] == row["retrieval rank"] - row["rank"]
    assert list(base["cross-encoder score"]) == sorted(base["cross-encoder score"], reverse=True)
    assert "re-scored by tiny-cross" in app_env.texts(at)
