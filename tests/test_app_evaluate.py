"""Evaluate page: base vs tuned metrics in one table with deltas, and the PCA maps."""

from __future__ import annotations

import numpy as np
import pytest

pytest_plugins = ["tests.app_fixtures"]

PAGE = "evaluate"


def test_metrics_table_for_every_task(app_env):
    app_env.install(models=("tiny-tuned", "tiny-frozen", "tiny-sentiment"))
    at = app_env.app(PAGE, timeout=600).run()
    app_env.ok(at)
    assert not at.checkbox(key="evaluate.sentiment").disabled
    at.button(key="evaluate.run").click().run()
    app_env.ok(at)
    [table] = app_env.frames(at, "task", "dataset", "metric", "base", "tuned", "delta")
    assert set(table["dataset"]) == {"STS-B test", "job-title pairs test", "ESCO", "Rotten Tomatoes test"}
    assert {"spearman", "ndcg@10", "recall@1", "accuracy"} <= set(table["metric"])
    assert np.allclose(table["delta"], table["tuned"] - table["base"])
    assert table[["base", "tuned"]].abs().le(1.0 + 1e-9).all().all()
    assert at.get("download_button")


def test_base_only_and_pca_maps(app_env):
    at = app_env.app(PAGE, timeout=600).run()
    app_env.ok(at)
    assert any("No tuned model yet" in i.value for i in at.info)
    assert at.checkbox(key="evaluate.sentiment").disabled
    at.checkbox(key="evaluate.retrieval").uncheck()
    at.checkbox(key="evaluate.jobs").uncheck()
    at.button(key="evaluate.run").click().run()
    app_env.ok(at)
    [table] = app_env.frames(at, "metric", "base", "tuned")
    assert set(table["metric"]) == {"spearman", "pearson"} and table["tuned"].isna().all()

    at.slider(key="evaluate.map_rows").set_value(100)
    at.button(key="evaluate.map").click().run()
    app_env.ok(at)
    [chart] = app_env.charts(at)
    points = sum(len(app_env.array(trace["x"])) for trace in chart["data"])
    assert points == 100


def test_pca_helpers():
    from semsim_app.comparisons import align_signs, pca_2d

    rng = np.random.default_rng(0)
    data = rng.normal(size=(50, 8)) * np.array([5, 2, 1, 1, 1, 1, 1, 1])
    coords, explained = pca_2d(data)
    assert coords.shape == (50, 2) and explained[0] > explained[1] > 0
    flipped = align_signs(coords, -coords)
    assert np.allclose(flipped, coords)
    with pytest.raises(ValueError):
        pca_2d(data[:2])
