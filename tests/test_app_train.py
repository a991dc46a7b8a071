"""Train page: data checks before anything starts, loading model folders, and a real background run
(tiny model) followed live, cancelled, and found again after a refresh."""

from __future__ import annotations

import time

import pandas as pd
import pytest

pytest_plugins = ["tests.app_fixtures"]

PAGE = "train"


def _pairs_csv(rows: int = 200) -> bytes:
    words = ["data", "software", "nurse", "teacher", "driver", "chef", "sales", "manager", "analyst", "doctor"]
    frame = pd.DataFrame({"text_a": [f"{words[i % 10]} {words[(i * 3) % 10]}" for i in range(rows)],
                          "text_b": [f"{words[(i + 1) % 10]} {words[(i * 7) % 10]}" for i in range(rows)],
                          "score": [(i % 5) / 4 for i in range(rows)]})
    return frame.to_csv(index=False).encode()


def _choose_upload(at, env):
    env.ok(at)
    at.radio(key="train.pairs.dataset").set_value("upload").run()
    return at


def _upload(at, name: str, data: bytes):
    at.file_uploader(key="train.pairs.upload").set_value((name, data, "text/csv"))
    return at.run()


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("latin1.csv", "text_a,text_b,score\ncaf\xe9,tea,0.5\n".encode("latin-1"), "not UTF-8"),
    ("empty.csv", b"", "file is empty"),
    ("columns.csv", b"first,second,score\na,b,0.5\n", "missing column(s) 'text_a', 'text_b'"),
    ("scores.csv", b"text_a,text_b,score\na,b,0.5\nc,d,high\n", "row 3"),
    ("range.csv", b"text_a,text_b,score\na,b,0.5\nc,d,4\n", "outside the range 0..1"),
])
def test_bad_uploads_are_refused_before_anything_runs(app_env, name, data, expected):
    at = _choose_upload(app_env.app(PAGE).run(), app_env)
    at = _upload(at, name, data)
    app_env.no_exceptions(at)
    [error] = app_env.errors(at)
    assert expected in error and name in error
    assert "What to do" in error
    assert not any(b.label == "Start training" for b in at.button)
    assert not (app_env.workspace / "runs").exists()


def test_too_few_rows_for_a_batch_is_refused(app_env):
    at = _choose_upload(app_env.app(PAGE).run(), app_env)
    at = _upload(at, "small.csv", _pairs_csv(10))
    [error] = app_env.errors(at)
    assert "fewer than one batch of 32" in error


def test_head_warmup_is_offered_for_full_fine_tuning_only(app_env):
    at = app_env.app(PAGE).run()
    app_env.ok(at)
    assert not [n for n in at.number_input if n.key.endswith("head_warmup_epochs")]  # pairs: no head to warm up
    at.radio(key="train.task").set_value(at.radio(key="train.task").options[1]).run()
    app_env.ok(at)
    assert not at.number_input(key="train.sentiment.head_warmup_epochs").disabled
    at.selectbox(key="train.sentiment.mode").set_value("frozen").run()
    assert at.number_input(key="train.sentiment.head_warmup_epochs").disabled
    # A frozen head is fitted to convergence: the CPU step cap, epochs and patience do not apply to it.
    for name in ("max_steps_per_epoch", "epochs", "patience"):
        assert at.number_input(key=f"train.sentiment.{name}").disabled, name


@pytest.mark.parametrize("task", ["pairs", "sentiment"])
def test_form_defaults_are_the_request_defaults(app_env, task):
    """Every form widget starts at its request field's default (semsim.training.spec), except the
    defaults this page changes on purpose on a CPU: a step cap while the encoder trains, a validation sample."""
    from semsim.training.spec import REQUESTS, form_fields

    at = app_env.app(PAGE).run()
    if task == "sentiment":
        at.radio(key="train.task").set_value(at.radio(key="train.task").options[1]).run()
    app_env.ok(at)
    page_defaults = {"max_steps_per_epoch": 100, "validation_rows": 500}
    widgets = {w.key: w for kind in ("number_input", "checkbox", "selectbox", "text_area", "text_input") for w in at.get(kind)}
    checked = 0
    for spec in form_fields(REQUESTS[task]):
        widget = widgets[f"train.{task}.{spec.name}"]
        expected = page_defaults.get(spec.name, spec.default)
        value = widget.value
        if spec.toggle is not None:
            value = spec.toggle if value else None
        if spec.optional and spec.kind is int and value == 0:
            value = None  # an optional count shows "not set" as 0
        if spec.optional and spec.kind is str and value == "":
            value = None  # an optional text shows "not set" as an empty box
        if spec.repeat:
            value = tuple(line for line in value.splitlines() if line.strip())  # one value a line
        assert value == expected, spec.name
        checked += 1
    assert checked >= 8


def test_load_existing_folders(app_env, tmp_path):
    app_env.install(models=("tiny-tuned", "tiny-frozen"))
    at = app_env.app(PAGE).run()
    app_env.ok(at)
    # Not a folder, and a folder that is not a model: errors that say what to give instead.
    for bad in (str(tmp_path / "nowhere"), str(tmp_path)):
        at.text_input(key="train.load_path").input(bad)
        at.button(key="train.load").click().run()
        app_env.no_exceptions(at)
        [error] = app_env.errors(at)
        assert "Cannot load this folder" in error and "semsim.json" in error
    # A tuned model folder becomes the tuned model of every page.
    tuned = str(app_env.models / "tiny-tuned")
    at.text_input(key="train.load_path").input(tuned)
    at.button(key="train.load").click().run()
    app_env.ok(at)
    assert "tuned model" in at.success[0].value
    assert at.session_state["semsim.tuned_model"] == tuned
    # A classifier folder becomes the frozen classifier.
    frozen = str(app_env.models / "tiny-frozen")
    at.text_input(key="train.load_path").input(frozen)
    at.button(key="train.load").click().run()
    app_env.ok(at)
    assert at.session_state["semsim.classifier.frozen"] == frozen
    models = app_env.frames(at, "model", "kind", "base", "saved")[0]
    assert set(models["model"]) == {"tiny-tuned", "tiny-frozen"}
    assert any(d.proto.label.startswith("Download") for d in at.get("download_button"))


def _wait(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_background_run_live_progress_cancel_and_refresh(app_env):
    from semsim_app import run_progress, run_store

    at = _choose_upload(app_env.app(PAGE).run(), app_env)
    at.selectbox(key="widget.semsim.base_model.train").set_value(app_env.assets.base_spec)
    at = _upload(at, "my pairs.csv", _pairs_csv(200))
    app_env.ok(at)
    at.number_input(key="train.pairs.epochs").set_value(100)
    at.number_input(key="train.pairs.batch_size").set_value(2)
    at.number_input(key="train.pairs.patience").set_value(100)
    at.number_input(key="train.pairs.max_steps_per_epoch").set_value(0)
    assert at.checkbox(key="train.pairs.rehearsal").value  # the forgetting guard is on by default
    at.number_input(key="train.pairs.merge_alpha").set_value(0.5)
    at.run()
    app_env.ok(at)
    [preview] = app_env.frames(at, "text_a", "text_b", "score")
    assert len(preview) == 20
    assert "180 training rows · 20 validation rows (split off the training data)" in app_env.texts(at)
    at.button(key="train.start").click().run()
    app_env.ok(at)

    [run] = run_store.list_runs()
    assert (run.dir / "run.json").is_file() and (run.dir / "upload-my-pairs.csv").is_file()
    assert run.info["command"][1:] == ["-m", "semsim", "train", "pairs", "--request", "request.json", "--json"]
    # The page hands the run the request it checked, as JSON: the form's values are in it.
    from semsim.training.spec import PairTrainingRequest

    sent = PairTrainingRequest.read_json(run.dir / "request.json")
    assert (sent.rehearsal, sent.rehearsal_data, sent.merge_alpha, sent.epochs, sent.batch_size,
            sent.max_steps_per_epoch, sent.data) == (True, "sts-b", 0.5, 100, 2, None, "upload-my-pairs.csv")
    assert (sent.evaluate_sts, sent.guard_rows) == (True, 300)  # the guard, on a quick sample on a CPU
    try:
        _wait(lambda: run_store.status(run) == "running" and run_progress.summary(run_store.log_events(run))["step"] > 0
              or run_store.status(run) in ("failed", "finished"), 300, "the first training step")
        assert run_store.status(run) == "running", run_store.stderr_tail(run)
        at.run()
        app_env.ok(at)
        assert at.get("progress"), "no progress bar while training"
        assert "step" in at.get("progress")[0].proto.text
        at.button(key="train.cancel").click().run()
        app_env.no_exceptions(at)
        _wait(lambda: run_store.status(run) not in ("starting", "running", "cancelling"), 300, "the run to stop")
    finally:
        run_store.cancel(run)

    # A browser refresh: a new session finds the run on disk, with its model card.
    fresh = app_env.app(PAGE).run()
    app_env.ok(fresh)
    assert run_store.status(run) == "cancelled", run_store.stderr_tail(run)
    assert "cancelled" in app_env.texts(fresh)
    [comparison] = app_env.frames(fresh, "dataset", "metric", "base", "tuned", "delta")
    assert "spearman" in set(comparison["metric"])
    [datasets] = app_env.frames(fresh, "role", "name", "rows")
    assert "upload-my-pairs.csv" in set(datasets["name"])
    out = app_env.models / run.info["name"]
    assert (out / "semsim.json").is_file() and not out.with_name(out.name + ".partial").exists()
    card = run_store.card(run)
    assert card["training"]["cancelled"] and card["training"]["epochs_run"] < 100
    assert card["hyperparameters"]["merge_alpha"] == 0.5 and card["datasets"]["rehearsal"]["rows"] == 5749
    fresh.button(key="train.use").click().run()
    assert fresh.session_state["semsim.tuned_model"] == str(out)
