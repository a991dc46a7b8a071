"""semsim: the entry point. Home (what the app does; a try-it search on the default model, and base and tuned
side by side once the first-launch demo has fine-tuned one; what exists; where to go next) and the navigation to
the other pages, in app_pages/ (listed in semsim_ui.widgets.PAGES)."""

import time

import pandas as pd
import streamlit as st

from semsim_app import catalog, comparisons, corpora, demo, run_store, settings
from semsim_ui import panels, render, resources, widgets
from semsim_ui.text import md_escape as e


def _search(spec: str, index_dir, query: str):
    """(hits, seconds) of one query against one index; None with the error shown."""
    from semsim.search import search_index

    try:
        encoder = resources.encoder(spec)
        store = resources.index(str(index_dir), expected_encoder=encoder)
        started = time.perf_counter()
        hits = search_index(encoder, store, query, k=10)
    except ValueError as exc:  # EncoderError, VectorIndexError: messages meant for the user
        widgets.show_error(exc, "rebuild the index on the Index page.")
        return None
    return hits, time.perf_counter() - started


def _query() -> str:
    with st.form("try-it", border=False):
        left, right = st.columns([5, 1], vertical_alignment="bottom")
        query = left.text_input("Search job titles", placeholder="data scientist", key="home.query")
        right.form_submit_button("Search", type="primary", width="stretch")
    return query.strip()


def try_base(model: str, corpus_path) -> None:
    """The default model alone over the default index (built in the background on first use)."""
    st.caption(f"Semantic search with the default model ({e(model)}) over {e(corpus_path.name)}: type any job title, "
               f"even one not in the list.")
    status, job = corpora.default_index_state(start=True)
    index_dir = corpora.default_index_dir()
    if status == "building":
        st.info("Building the default index the first time the app runs (it is kept for next time) …",
                icon=":material/hourglass_top:")
        panels.build_progress([index_dir])
        return
    if status == "failed":
        widgets.show_error(f"The default index could not be built: {job.error}",
                           "check that the bundled model and data are installed (`make install`), then retry.")
        if st.button("Retry"):
            from semsim_app import index_builds

            index_builds.forget(index_dir)
            st.rerun()
        return
    query = _query()
    if not query:
        return
    found = _search(model, index_dir, query)
    if found is None:
        return
    hits, elapsed = found
    frame = pd.DataFrame(hits)
    shown = [c for c in ("rank", "text", "score", "unit_group_name", "major_group_name") if c in frame]
    st.dataframe(frame[shown], hide_index=True, width="stretch", key="home.results",
                 column_config={"score": st.column_config.ProgressColumn(
                     "cosine", min_value=0.0, max_value=1.0, format="%.3f"),
                                "unit_group_name": "unit group", "major_group_name": "major group"})
    st.caption(f"{len(hits):,} results in {elapsed * 1000:.0f} ms.")


def side_by_side(model: str, found) -> None:
    """One query, the base and the tuned demo model's top 10, with how each result moved."""
    query = _query()
    if not query:
        st.caption("Type a query and press Enter; the Search, Similarity and Evaluate pages compare the two "
                   "models further.")
        return
    base, tuned = _search(model, found.base_index, query), _search(found.tuned_spec, found.tuned_index, query)
    if base is None or tuned is None:
        return
    extras = [c for c in ("major_group_name",) if c in (base[0][0] if base[0] else {})]
    base_frame, tuned_frame = comparisons.compare_rankings(base[0], tuned[0], extras)
    left, right = st.columns(2)
    for column, label, frame, key, seconds in ((left, f"Base · {model}", base_frame, "home.base_results", base[1]),
                                               (right, f"Tuned · {demo.model_name()}", tuned_frame,
                                                "home.tuned_results", tuned[1])):
        with column:
            st.markdown(f"**{e(label)}**")
            render.results_table(frame, key=key, extra_columns=extras)
            st.caption(f"{len(frame)} results in {seconds * 1000:.0f} ms")
    st.caption(render.LEGEND)


def card_line(found) -> None:
    """What the demo model's card says about it (validation before and after), honestly labelled."""
    card = run_store.card(found.run) if found.run is not None else None
    rows = [r for r in (card or {}).get("comparison") or [] if r.get("base") is not None]
    if not rows:
        return
    row = rows[0]
    training = (card or {}).get("training") or {}
    st.caption(f"Demo model: {int(training.get('steps') or 0):,} training steps in "
               f"{render.seconds(training.get('seconds'))}; {e(row['dataset'])} {e(row['metric'])} "
               f"{row['base']:.3f} → {row['tuned']:.3f}. The Evaluate page measures it with 95% intervals.")


def home() -> None:
    widgets.page_setup("home", "Fine-tune sentence encoders on your domain and compare the base and "
                                       "tuned models side by side.")

    st.markdown(
        "**semsim** turns sentences into vectors whose closeness means *similar meaning*. A general model "
        "(the **base**) can be fine-tuned on pairs from one domain — such as job titles — into a **tuned** "
        "model. This app shows both at work: search, similarity, sentiment and evaluation, side by side."
    )

    # -- try it: the base model alone, or base and tuned side by side once the demo model is ready ------
    model = settings.default_model()
    corpus_path, column = settings.default_corpus()
    demo_state = demo.state()
    if demo_state.phase == "indexing":
        demo.build_indexes()  # the demo model is trained: index the job titles with it (and the base)
    st.subheader("Try it")
    if demo_state.phase == "ready":
        st.caption(f"Semantic search over {e(corpus_path.name)} with the base model ({e(model)}) and the tuned "
                   f"demo model ({e(demo.model_name())}), side by side: type any job title, even one not in the list.")
        side_by_side(model, demo_state)
    else:
        try_base(model, corpus_path)

    # -- a tuned model on first launch -------------------------------------------------------------------
    if demo_state.phase != "ready":
        device = resources.device()
        prominent = not catalog.tuned_models() or demo_state.phase != "offer"
        if prominent:
            st.subheader("A tuned model to compare")
            panels.demo_panel(demo_state, bool(device.get("gpu")), device.get("cpu_count"), prominent=True)
        else:
            with st.expander("Fine-tune the demo model (base and tuned search side by side here)"):
                panels.demo_panel(demo_state, bool(device.get("gpu")), device.get("cpu_count"), prominent=False)
    else:
        card_line(demo_state)

    # -- what exists ----------------------------------------------------------------------------------
    st.subheader("Models and indexes")
    left, middle, right = st.columns(3)
    with left:
        st.markdown("**Base models**")
        st.dataframe(pd.DataFrame([{"model": e.spec, "about": e.extra.get("description", "")}
                                   for e in catalog.bundled_models()]), hide_index=True, key="home.base")
    with middle:
        st.markdown("**Tuned models**")
        tuned = [catalog.model_entry(p) for p in catalog.model_folders()]
        tuned = [e for e in tuned if e is not None]
        if tuned:
            rows = [{"model": catalog.describe_spec(e.spec),
                     "kind": "encoder" if e.kind == "tuned" else f"pair model ({e.extra.get('architecture')}, {e.mode})"
                     if e.kind == "pair-classifier" else f"classifier ({e.mode})", "base": e.base or "?"}
                    for e in tuned]
            st.dataframe(pd.DataFrame(rows),
                         hide_index=True, key="home.tuned")
        else:
            st.caption("None yet.")
            widgets.page_link("train", "Fine-tune one")
    with right:
        st.markdown("**Indexes**")
        found = [e for e in catalog.indexes() if e.error is None]
        if found:
            st.dataframe(pd.DataFrame([{"index": e.name, "texts": e.count,
                                        "model": catalog.describe_spec(e.spec or "?")} for e in found]),
                         hide_index=True, key="home.indexes")
        else:
            st.caption("None yet.")

    # -- where next -----------------------------------------------------------------------------------
    st.subheader("Where next")
    for page, text in (("train", "fine-tune a base model on job-title pairs, STS-B, reviews or your own CSV"),
                       ("index", "embed a corpus with the base and the tuned model"),
                       ("search", "one query, base and tuned results side by side"),
                       ("similarity", "heatmaps of how similar a list of texts is under each model"),
                       ("sentiment", "frozen-encoder vs fine-tuned review classifiers"),
                       ("pairs", "a cross-encoder vs a bi-encoder + head on pairs of texts, confusion matrices included"),
                       ("evaluate", "STS-B, job-title pairs, retrieval and classification metrics in one table")):
        left, right = st.columns([1, 3])
        with left:
            widgets.page_link(page)
        right.caption(text)


widgets.navigation(home).run()
