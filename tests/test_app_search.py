"""Search page: base and tuned results side by side, rank changes, refused indexes, no tuned model yet."""

from __future__ import annotations

pytest_plugins = ["tests.app_fixtures"]

PAGE = "search"


def _search(at, query: str = "Data scientist"):
    at.text_input(key="search.query").input(query)
    next(b for b in at.button if b.label == "Search").click()
    return at.run()


def test_search_shows_both_columns_with_rank_changes(app_env):
    app_env.install(models=("tiny-tuned",), indexes=("tiny--titles", "tiny-tuned--titles"))
    at = app_env.app(PAGE).run()
    app_env.ok(at)
    assert "Type a query" in app_env.texts(at)
    at = _search(at)
    app_env.ok(at)
    base, tuned = app_env.frames(at, "rank", "change", "text", "score")
    assert len(base) == len(tuned) == 10
    # The query is itself a title: both models put it first with cosine 1.
    assert base["text"].iloc[0] == tuned["text"].iloc[0] == "Data scientist"
    assert tuned["change"].iloc[0] == "="
    # Every tuned row says where it was in the base list (or that it is new), consistently.
    base_rank = dict(zip(base["text"], base["rank"], strict=True))
    for _, row in tuned.iterrows():
        if row["text"] in base_rank:
            moved = base_rank[row["text"]] - row["rank"]
            assert row["Δ rank"] == moved
            assert row["change"] == ("=" if moved == 0 else f"▲ {moved}" if moved > 0 else f"▼ {-moved}")
        else:
            assert row["change"] == "new" and row["move"] == "new"
    # Different weights: something moved, and base rows gone from the tuned list are marked.
    assert set(tuned["move"]) - {"same"}
    dropped = set(base["text"]) - set(tuned["text"])
    assert set(base.loc[base["change"] == "dropped", "text"]) == dropped
    assert "moved up" in app_env.texts(at)
    download = at.get("download_button")
    assert download, "no download button"


def test_search_refuses_an_index_built_with_another_model(app_env):
    env = app_env.install(models=("tiny-tuned",), indexes=("tiny--titles", "tiny-tuned--titles"))
    at = env.app(PAGE).run()
    at.toggle(key="search.all_indexes").set_value(True).run()
    base_select = next(s for s in at.selectbox if s.label == "Base index")
    other = str(env.indexes / "tiny-tuned--titles")
    assert other in base_select.options or any("tiny-tuned--titles" in o for o in base_select.options)
    base_select.set_value(other).run()
    at = _search(at)
    env.no_exceptions(at)
    [error] = env.errors(at)
    assert "cannot be used with this model" in error
    assert "What to do" in error


def test_search_without_a_tuned_model_says_so_and_links_to_train(app_env):
    app_env.install(indexes=("tiny--titles",))
    at = app_env.app(PAGE).run()
    app_env.ok(at)
    assert any("No tuned model yet" in i.value for i in at.info)
    assert any("Train" in link.proto.label for link in at.get("page_link"))
    at = _search(at)
    app_env.ok(at)
    [base] = app_env.frames(at, "rank", "change", "text")
    assert base["text"].iloc[0] == "Data scientist"


def test_search_offers_to_build_a_missing_index(app_env):
    from semsim_app import index_builds

    app_env.install(models=("tiny-tuned",), indexes=("tiny--titles",))
    at = app_env.app(PAGE).run()
    app_env.ok(at)
    assert "No index built with tiny-tuned yet" in app_env.texts(at)
    build = next(b for b in at.button if b.label.startswith("Build it over"))
    assert "titles.csv" not in build.label  # offered over the same corpus as the base index
    build.click().run()
    running = index_builds.active()
    assert running, "no build started"
    for job in running:
        index_builds.wait(job.out_dir, timeout=300)
        assert job.error is None, job.error
