"""The app's pure helpers: rank comparison, escaping of user text, run bookkeeping."""

from __future__ import annotations

import json
import os
import time

import pytest


def _hits(*texts):
    return [{"rank": i, "text": t, "score": 1 - i / 10, "id": i} for i, t in enumerate(texts, start=1)]


def test_compare_rankings_marks_moves_new_and_dropped():
    from semsim_app.comparisons import compare_rankings

    base, tuned = compare_rankings(_hits("a", "b", "c", "d"), _hits("c", "a", "e", "b"))
    assert tuned["change"].tolist() == ["▲ 2", "▼ 1", "new", "▼ 2"]
    assert tuned["move"].tolist() == ["up", "down", "new", "down"]
    assert tuned["Δ rank"].tolist()[:2] == [2, -1]
    assert base["change"].tolist() == ["→ 2", "→ 4", "→ 1", "dropped"]
    assert base["move"].tolist()[-1] == "dropped"
    # Matching ignores case and surrounding spaces (the same title from two indexes).
    _, same = compare_rankings(_hits("Data scientist"), _hits(" data Scientist "))
    assert same["change"].tolist() == ["="]


def test_markdown_and_plotly_escaping():
    from semsim_ui.text import md_escape, plot_text

    hostile = "[click](http://x) ![i](y) **b** :red[r] $x$ <b>"
    escaped = md_escape(hostile)
    assert "\\[click\\]\\(http\\:" in escaped and "\\*\\*b\\*\\*" in escaped and "\\$x\\$" in escaped
    assert escaped.replace("\\", "") == hostile
    assert plot_text("<a href='x'>&") == "&lt;a href='x'&gt;&amp;"


def test_names_are_checked():
    from semsim_app.settings import check_name, slug

    assert check_name(" my-model_1.0 ") == "my-model_1.0"
    for bad in ("", "../up", "a/b", ".hidden", "x" * 81):
        with pytest.raises(ValueError):
            check_name(bad)
    assert slug("keras-hub:/tmp/a b@cls") == "keras-hub-tmp-a-b-cls"


def test_run_status_from_disk(tmp_path, monkeypatch):
    """A run started by another server process: its state comes from run.json, the log and the model card."""
    from semsim_app import run_progress, run_store

    monkeypatch.setenv("SEMSIM_WORKSPACE", str(tmp_path))
    out = tmp_path / "models" / "m"
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    info = {"id": "r1", "pid": 0, "out": str(out), "started": time.time() - 5, "name": "m"}
    (run_dir / "run.json").write_text(json.dumps(info))
    [run] = run_store.list_runs()
    assert run_store.status(run) == "failed"  # no process, no model card
    (run_dir / "stderr.log").write_text("Traceback ...\nsemsim: error: the training data is empty\n")
    assert run_store.error_message(run) == "the training data is empty"

    partial = out.with_name("m.partial")
    partial.mkdir(parents=True)
    (partial / "train_log.jsonl").write_text(
        '{"event": "baseline", "metric": "val_spearman", "value": 0.5}\n'
        '{"event": "start", "total_steps": 10}\n'
        '{"event": "step", "step": 4, "epoch": 1, "loss": 0.9, "eta_s": 6.0}\n'
        '{"event": "epoch", "epoch": 1, "step": 5, "loss": 0.8, "val_spearman": 0.6}\n{"event": "st')
    progress = run_progress.summary(run_store.log_events(run))
    assert progress["total_steps"] == 10 and progress["step"] == 5 and progress["fraction"] == 0.5
    assert progress["validation_series"]["value"].tolist() == [0.5, 0.6]
    assert progress["loss_series"]["loss"].tolist() == [0.9]

    # The process of a run is recognised by pid *and* command line (pids are reused).
    run.info["pid"] = os.getpid()
    assert run_store.status(run) == "failed"

    partial.rename(out)
    (out / "model_card.json").write_text(json.dumps({"training": {"cancelled": True}}))
    assert run_store.status(run) == "cancelled"
    (out / "model_card.json").write_text(json.dumps({"training": {"cancelled": False}}))
    assert run_store.status(run) == "finished"
    assert run_store.log_path(run) == out / "train_log.jsonl"


def test_a_planned_run_carries_the_form_values_and_refuses_bad_combinations(tmp_path, monkeypatch):
    from semsim.training.spec import TrainingError
    from semsim_app import run_request

    monkeypatch.setenv("SEMSIM_MODELS_DIR", str(tmp_path / "models"))
    plan = run_request.plan_run("sentiment", "m", "rotten-tomatoes", {"mode": "full", "head_warmup_epochs": 3,
                                                                      "validation_rows": 50})
    assert plan.request.head_warmup_epochs == 3 and plan.request.data == "rotten-tomatoes"
    assert plan.request.out == str(tmp_path / "models" / "m") and len(plan.data.validation) == 50
    assert plan.data.test is None  # the test split only when asked for
    # a frozen run trains only the head: warming it up first makes no sense and is refused by the request
    with pytest.raises(TrainingError, match="full fine-tuning only"):
        run_request.plan_run("sentiment", "m", "rotten-tomatoes", {"mode": "frozen", "head_warmup_epochs": 3})
    with pytest.raises(run_request.RunError, match="choose a CSV"):
        run_request.plan_run("pairs", "m", run_request.UPLOAD, {})
