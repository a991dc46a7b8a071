"""Home page: the default index is built on first use (in the background, with progress) and kept."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.app_fixtures"]


def test_home_builds_default_index_then_searches(app_env):
    from semsim_app import corpora, index_builds

    at = app_env.app().run()
    app_env.ok(at)
    assert any("Building the default index" in i.value for i in at.info)
    job = index_builds.wait(corpora.default_index_dir(), timeout=300)
    assert job is not None and job.error is None, job and job.error
    folder = corpora.default_index_dir()
    assert folder.parent == app_env.indexes and (folder / "meta.json").is_file()

    at.run()
    app_env.ok(at)
    at.text_input(key="home.query").input("Data scientist")
    at.button[0].click()
    at.run()
    app_env.ok(at)
    [results] = app_env.frames(at, "rank", "text", "score")
    assert results["text"].iloc[0] == "Data scientist"
    assert results["score"].iloc[0] == pytest.approx(1.0, abs=1e-4)
    assert len(results) == 10
    assert "10 results in" in app_env.texts(at)

    # A second session (a browser refresh) finds the index on disk and builds nothing.
    again = app_env.app().run()
    assert not any("Building" in i.value for i in again.info)
    assert index_builds.get(folder) is job


def test_home_lists_tuned_models_and_indexes(app_env):
    app_env.install(models=("tiny-tuned", "tiny-frozen"), indexes=("tiny-tuned--titles",))
    at = app_env.app().run()
    app_env.ok(at)
    [tuned] = app_env.frames(at, "model", "kind", "base")
    assert set(tuned["model"]) == {"tiny-tuned", "tiny-frozen"}
    assert "classifier (frozen)" in set(tuned["kind"])
    [indexes] = app_env.frames(at, "index", "texts")
    assert "tiny-tuned--titles" in set(indexes["index"])


def test_home_reports_a_default_index_that_cannot_be_built(app_env, monkeypatch, tmp_path):
    from semsim_app import corpora, index_builds

    monkeypatch.setenv("SEMSIM_DEFAULT_CORPUS", str(tmp_path / "missing.csv"))
    at = app_env.app().run()
    index_builds.wait(corpora.default_index_dir(), timeout=120)
    at.run()
    app_env.no_exceptions(at)
    [error] = app_env.errors(at)
    assert "could not be built" in error and "missing" in error
    assert not corpora.default_index_dir().exists()
    assert any(b.label == "Retry" for b in at.button)


def test_home_demo_fine_tunes_indexes_and_shows_base_and_tuned_side_by_side(app_env, monkeypatch):
    """First launch: one button trains the demo model (the default recipe, one step here) in a background
    process, both indexes are built, and Home then searches with base and tuned side by side."""
    import time

    from semsim_app import corpora, demo, index_builds, run_store

    monkeypatch.setenv(demo.STEPS_ENV, "1")  # one step: one compile of the training step
    at = app_env.app(timeout=300).run()
    app_env.ok(at)
    text = app_env.texts(at)
    assert "No tuned model yet" in text and "training steps" in text and "on this machine" in text
    [button] = [b for b in at.button if b.key == "home.demo.start"]
    assert button.label.startswith("Fine-tune the demo model (about ")  # the time, before it starts
    index_builds.wait(corpora.default_index_dir(), timeout=300)

    button.click().run()
    app_env.ok(at)
    run = demo.demo_run()
    assert run is not None and run.info["task"] == "pairs" and run.info["hyperparameters"]["max_steps_per_epoch"] == 1
    assert any("Fine-tuning" in i.value for i in at.info)
    # A refresh (a new session) finds the same run and draws its progress; other pages do not wait for it.
    again = app_env.app().run()
    app_env.ok(again)
    if run_store.status(run) in demo.ACTIVE:
        assert any("Fine-tuning" in i.value for i in again.info)
        assert not at.get("button") or not any(b.key == "home.demo.start" for b in again.button)
    deadline = time.time() + 300
    while run_store.status(run) in demo.ACTIVE and time.time() < deadline:
        time.sleep(1)
    assert run_store.status(run) == "finished", run_store.stderr_tail(run)

    at.run()  # trained: Home starts the tuned index (the base one exists)
    app_env.ok(at)
    job = index_builds.wait(demo.tuned_index_dir(), timeout=300)
    assert job is not None and job.error is None, job and job.error
    at.run()
    app_env.ok(at)
    assert demo.state().phase == "ready"
    at.text_input(key="home.query").input("Data scientist")
    at.button[0].click()
    at.run()
    app_env.ok(at)
    base, tuned = app_env.frames(at, "rank", "text", "change")
    assert len(base) == len(tuned) == 10 and base["text"].iloc[0] == "Data scientist"
    assert "Tuned · " + demo.model_name() in app_env.texts(at) and "training steps" in app_env.texts(at)


def test_demo_plan_is_the_default_recipe_with_a_cpu_step_cap(app_env, monkeypatch):
    """The demo trains whatever PairTrainingRequest's defaults are (the recipe is not copied here), capped to
    a step budget on a CPU and whole on a GPU; its estimate follows the steps and the cores."""
    from semsim.training.spec import PairTrainingRequest, fields
    from semsim_app import demo

    monkeypatch.delenv(demo.STEPS_ENV, raising=False)
    planned = demo.plan(on_gpu=False)
    request = planned.request
    defaults = PairTrainingRequest(data="job-title-pairs", out=request.out)
    changed = {f.name for f in fields(request) if getattr(request, f.name) != getattr(defaults, f.name)}
    assert changed <= {"base", "max_steps_per_epoch", "validation", "validation_rows", "evaluate_sts", "overwrite"}
    assert request.max_steps_per_epoch == demo.CPU_STEPS and request.base == app_env.assets.base_spec
    on_gpu = demo.plan(on_gpu=True).request
    assert on_gpu.max_steps_per_epoch is None and on_gpu.evaluate_sts == defaults.evaluate_sts
    summary = demo.summarize(planned)
    assert summary.steps == demo.CPU_STEPS * request.epochs and summary.validation == demo.CPU_VALIDATION_ROWS
    two, eight = demo.estimate(summary, False, 2), demo.estimate(summary, False, 8)
    here = demo.cpu_costs()
    assert two.training == pytest.approx(demo.CPU_STEPS * here.seconds_per_step) and eight.total < two.total
    # The estimate follows the kind of CPU: an AVX2-only one was measured about 3x slower per step.
    avx2, avx512 = demo.cpu_costs(frozenset({"avx2", "fma"})), demo.cpu_costs(frozenset({"avx2", "avx512f"}))
    assert avx2 == demo.CPU_COSTS["avx2"] and avx512 == demo.CPU_COSTS["avx512"]
    assert demo.estimate(summary, False, 2, avx2).total > 2 * demo.estimate(summary, False, 2, avx512).total
    assert demo.summarize(demo.plan(on_gpu=True)).steps > summary.steps  # the whole recipe on a GPU
