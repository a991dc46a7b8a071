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
    assert "searched in" in app_env.texts(at)

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
