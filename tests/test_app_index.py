"""Index page: build base and tuned indexes from an uploaded corpus in the background; list, refuse,
rebuild and delete."""

from __future__ import annotations

import json

pytest_plugins = ["tests.app_fixtures"]

PAGE = "index"
CORPUS = "name,group\nData scientist,stats\nStatistician,stats\nChef,food\nSous chef,food\nNurse,care\n,empty\n"


def _wait(*folders):
    """Wait for the builds of these index folders; their jobs."""
    from semsim_app import index_builds

    return [index_builds.wait(folder, timeout=300) for folder in folders]


def test_build_base_and_tuned_indexes_from_an_upload(app_env):
    app_env.install(models=("tiny-tuned",))
    at = app_env.app(PAGE).run()
    app_env.ok(at)
    assert "No indexes" in app_env.texts(at)
    at.radio(key="index.corpus").set_value("upload").run()
    at.file_uploader(key="index.upload").set_value(("my corpus.csv", CORPUS.encode(), "text/csv"))
    at.run()
    app_env.ok(at)
    [preview] = app_env.frames(at, "name", "group")
    assert len(preview) == 6  # the row with an empty name is still a row; the index skips it
    at.selectbox(key="index.column").set_value("name")
    at.multiselect(key="index.extras").set_value(["group"])
    at.run()
    at.button(key="index.build").click().run()
    app_env.no_exceptions(at)
    from semsim_app.catalog import index_name

    base_index = app_env.indexes / index_name(app_env.assets.base_spec, "my-corpus.csv")
    assert base_index.name == "tiny_base--my-corpus"
    finished = _wait(base_index, app_env.indexes / "tiny-tuned--my-corpus")
    assert all(job is not None and job.error is None for job in finished), finished
    at.run()
    app_env.ok(at)
    [table] = app_env.frames(at, "index", "model", "corpus", "texts")
    assert set(table["model"]) == {"keras-hub:tiny_base", "tiny-tuned"}
    assert set(table["texts"]) == {5}
    assert set(table["corpus"]) == {"my-corpus.csv"}
    assert (app_env.workspace / "corpora" / "my-corpus.csv").is_file()
    meta = json.loads((app_env.indexes / "tiny-tuned--my-corpus" / "meta.json").read_text())
    assert meta["extra"]["column"] == "name" and meta["extra"]["extra_columns"] == ["group"]

    # Building again without "replace" is refused; nothing is touched.
    before = (app_env.indexes / "tiny-tuned--my-corpus" / "meta.json").stat().st_mtime_ns
    at.button(key="index.build").click().run()
    [error] = app_env.errors(at)
    assert "already exist" in error and "Replace" in error
    assert (app_env.indexes / "tiny-tuned--my-corpus" / "meta.json").stat().st_mtime_ns == before


def test_bad_corpus_upload_is_refused(app_env):
    at = app_env.app(PAGE).run()
    at.radio(key="index.corpus").set_value("upload").run()
    at.file_uploader(key="index.upload").set_value(("titles.csv", "title\nCaf\xe9\n".encode("cp1252"), "text/csv"))
    at.run()
    app_env.no_exceptions(at)
    [error] = app_env.errors(at)
    assert "not UTF-8" in error and "titles.csv" in error and "CSV UTF-8" in error
    assert not any(b.label == "Build" for b in at.button)
    assert not (app_env.workspace / "corpora").exists()


def test_rebuild_and_delete(app_env):
    app_env.install(models=("tiny-tuned",), indexes=("tiny--titles", "tiny-tuned--titles"))
    at = app_env.app(PAGE).run()
    app_env.ok(at)
    at.selectbox(key="index.selected").set_value("tiny--titles").run()
    before = json.loads((app_env.indexes / "tiny--titles" / "meta.json").read_text())["updated"]
    at.button(key="index.rebuild").click().run()
    app_env.no_exceptions(at)
    [job] = _wait(app_env.indexes / "tiny--titles")
    assert job is not None and job.error is None, job
    after = json.loads((app_env.indexes / "tiny--titles" / "meta.json").read_text())
    assert after["count"] == 40 and after["created"] >= before

    at.run()
    at.selectbox(key="index.selected").set_value("tiny-tuned--titles").run()
    assert at.button(key="index.delete").disabled  # needs the confirmation first
    at.checkbox(key="index.sure.tiny-tuned--titles").check().run()
    at.button(key="index.delete").click().run()
    app_env.ok(at)
    assert not (app_env.indexes / "tiny-tuned--titles").exists()
    assert (app_env.indexes / "tiny--titles").exists()
