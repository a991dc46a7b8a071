"""Evaluate page: base vs tuned metrics in one table with deltas and paired bootstrap intervals, one aligned map
of both models, the neighbourhood overlap table, and the comparison report."""

from __future__ import annotations

import numpy as np

pytest_plugins = ["tests.app_fixtures"]

PAGE = "evaluate"


def test_metrics_table_for_every_task_with_intervals(app_env):
    app_env.install(models=("tiny-tuned", "tiny-frozen", "tiny-sentiment"))
    at = app_env.app(PAGE, timeout=600).run()
    app_env.ok(at)
    assert not at.checkbox(key="evaluate.sentiment").disabled
    at.button(key="evaluate.run").click().run()
    app_env.ok(at)
    [table] = app_env.frames(at, "task", "dataset", "metric", "base", "tuned", "delta", "ci low", "ci high",
                             "significant")
    assert set(table["dataset"]) == {"STS-B test", "job-title pairs test", "ESCO", "Rotten Tomatoes test"}
    assert {"spearman", "ndcg@10", "recall@1", "accuracy", "f1_macro"} <= set(table["metric"])
    assert np.allclose(table["delta"], table["tuned"] - table["base"])
    assert table[["base", "tuned"]].abs().le(1.0 + 1e-9).all().all()
    # Every delta has its interval, around it, and `significant` says whether the interval excludes 0.
    low, high = table["ci low"].astype(float), table["ci high"].astype(float)
    assert (low <= table["delta"] + 1e-9).all() and (table["delta"] <= high + 1e-9).all()
    assert (table["significant"].astype(bool) == ((low > 0) | (high < 0))).all()
    assert set(table.loc[table["dataset"] == "ESCO", "n"]) == {200}
    assert "paired bootstrap" in app_env.texts(at)
    assert at.get("download_button")


def test_base_only_then_an_aligned_map_the_overlap_table_and_the_report(app_env):
    at = app_env.app(PAGE, timeout=600).run()
    app_env.ok(at)
    assert any("No tuned model yet" in i.value for i in at.info)
    assert at.checkbox(key="evaluate.sentiment").disabled
    at.checkbox(key="evaluate.retrieval").uncheck()
    at.checkbox(key="evaluate.jobs").uncheck()
    at.button(key="evaluate.run").click().run()
    app_env.ok(at)
    [table] = app_env.frames(at, "metric", "base", "tuned", "ci low")
    assert set(table["metric"]) == {"spearman", "pearson"} and table["tuned"].isna().all()
    assert table["ci low"].isna().all()

    app_env.install(models=("tiny-tuned",))
    at = app_env.app(PAGE, timeout=600).run()
    at.slider(key="evaluate.map_rows").set_value(100)
    at.toggle(key="evaluate.moves").set_value(True)
    at.button(key="evaluate.map").click().run()
    app_env.ok(at)
    [chart] = app_env.charts(at)
    traces = chart["data"]
    markers = [t for t in traces if t.get("mode") == "markers"]
    # One frame: 100 base and 100 tuned points, coloured by major group, and one line per text's move.
    assert sum(len(app_env.array(t["x"])) for t in markers) == 200
    assert {t["marker"]["symbol"] for t in markers} == {"circle", "diamond"}
    [lines] = [t for t in traces if t.get("mode") == "lines"]
    assert len(lines["x"]) == 300  # (base, tuned, gap) per text
    assert "Procrustes" in app_env.texts(at)
    [overlap] = app_env.frames(at, "text", "jaccard", "kept", "came", "went")
    assert overlap["jaccard"].between(0, 1).all() and overlap["jaccard"].is_monotonic_increasing
    assert "mean Jaccard" in app_env.texts(at)

    at.button(key="evaluate.report").click().run()
    app_env.ok(at)
    written = at.session_state["semsim.evaluate.report"]["html"]
    assert written.startswith("<!doctype html>") and "Neighbourhoods that changed most" in written
    assert "Run the evaluation first" in app_env.texts(at)
    assert any(b.proto.label == "Download the report (HTML)" for b in at.get("download_button"))
