"""Sentiment page: frozen vs fine-tuned classifier side by side; metrics and confusion matrices on labels."""

from __future__ import annotations

import numpy as np

pytest_plugins = ["tests.app_fixtures"]

PAGE = "sentiment"
LABELLED = ("text,label\nA gorgeous film.,positive\nDull and boring.,negative\nGreat fun.,positive\n"
            "Bad acting.,negative\nNot very good.,negative\n")


def test_without_classifiers_links_to_train(app_env):
    at = app_env.app(PAGE).run()
    app_env.ok(at)
    assert any("No sentiment classifier yet" in i.value for i in at.info)
    assert any("Train" in link.value for link in at.page_link)
    assert not at.dataframe


def test_typed_reviews_side_by_side(app_env):
    app_env.install(models=("tiny-frozen", "tiny-sentiment"))
    at = app_env.app(PAGE).run()
    app_env.ok(at)
    [table] = app_env.frames(at, "text", "frozen: label", "fine-tuned: label")
    assert len(table) == 4
    for side in ("frozen", "fine-tuned"):
        assert set(table[f"{side}: label"]) <= {"negative", "positive"}
        assert ((table[f"{side}: probability"] >= 0.5) & (table[f"{side}: probability"] <= 1)).all()
    assert table["agree"].dtype == bool
    assert at.get("download_button")


def test_labelled_upload_gets_metrics_and_confusion_matrices(app_env):
    app_env.install(models=("tiny-frozen", "tiny-sentiment"))
    at = app_env.app(PAGE).run()
    at.radio(key="sentiment.source").set_value("upload").run()
    at.file_uploader(key="sentiment.upload").set_value(("reviews.csv", LABELLED.encode(), "text/csv"))
    at.run()
    app_env.ok(at)
    [table] = app_env.frames(at, "text", "true label")
    assert len(table) == 5
    [metrics] = app_env.frames(at, "metric", "frozen", "fine-tuned", "delta")
    assert {"accuracy", "f1_macro", "roc_auc"} <= set(metrics["metric"])
    accuracy = metrics.set_index("metric").loc["accuracy"]
    expected = (table["frozen: label"] == table["true label"]).mean()
    assert np.isclose(accuracy["frozen"], expected)
    assert np.isclose(accuracy["delta"], accuracy["fine-tuned"] - accuracy["frozen"])
    charts = app_env.charts(at)
    assert len(charts) == 2
    assert all(app_env.array(c["data"][0]["z"]).sum() == 5 for c in charts)


def test_bad_uploads(app_env):
    app_env.install(models=("tiny-frozen", "tiny-sentiment"))
    at = app_env.app(PAGE).run()
    at.radio(key="sentiment.source").set_value("upload").run()
    at.file_uploader(key="sentiment.upload").set_value(("reviews.csv", b"review,label\nfine,positive\n", "text/csv"))
    at.run()
    app_env.no_exceptions(at)
    [error] = app_env.errors(at)
    assert "missing column(s) 'text'" in error and "reviews.csv" in error
    unknown = b"text,label\nfine,good\nawful,bad\n"
    at.file_uploader(key="sentiment.upload").set_value(("other.csv", unknown, "text/csv"))
    at.run()
    app_env.no_exceptions(at)
    assert any("does not know" in e for e in app_env.errors(at))
