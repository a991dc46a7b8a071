"""semsim: the entry point. Home (what the app does, what exists, a try-it search on the default model,
where to go next) and the navigation to the other pages, in app_pages/ (listed in semsim_ui.widgets.PAGES)."""

import time

import pandas as pd
import streamlit as st

from semsim_app import catalog, corpora, settings
from semsim_ui import panels, resources, widgets
from semsim_ui.text import md_escape as e


def home() -> None:
    widgets.page_setup("home", "Fine-tune sentence encoders on your domain and compare the base and "
                                       "tuned models side by side.")

    st.markdown(
        "**semsim** turns sentences into vectors whose closeness means *similar meaning*. A general model "
        "(the **base**) can be fine-tuned on pairs from one domain — such as job titles — into a **tuned** "
        "model. This app shows both at work: search, similarity, sentiment and evaluation, side by side."
    )

    # -- try it ---------------------------------------------------------------------------------------
    model = settings.default_model()
    corpus_path, column = settings.default_corpus()
    st.subheader("Try it")
    st.caption(f"Semantic search with the default model ({e(model)}) over {e(corpus_path.name)}: type any job title, "
               f"even one not in the list.")

    status, job = corpora.default_index_state(start=True)
    index_dir = corpora.default_index_dir()
    if status == "building":
        st.info("Building the default index the first time the app runs (it is kept for next time) …", icon=":material/hourglass_top:")
        panels.build_progress([index_dir])
    elif status == "failed":
        widgets.show_error(f"The default index could not be built: {job.error}",
                           "check that the bundled model and data are installed (`make install`), then retry.")
        if st.button("Retry"):
            from semsim_app import index_builds

            index_builds.forget(index_dir)
            st.rerun()
    else:
        with st.form("try-it", border=False):
            left, right = st.columns([5, 1], vertical_alignment="bottom")
            query = left.text_input("Search job titles", placeholder="data scientist", key="home.query")
            right.form_submit_button("Search", type="primary", width="stretch")
        if query.strip():
            try:
                from semsim.search import search_index

                encoder = resources.encoder(model)
                store = resources.index(str(index_dir), expected_encoder=encoder)
                started = time.perf_counter()
                hits = search_index(encoder, store, query.strip(), k=10)
                elapsed = time.perf_counter() - started
            except ValueError as exc:  # EncoderError, VectorIndexError: messages meant for the user
                widgets.show_error(exc, "rebuild the default index on the Index page.")
            else:
                frame = pd.DataFrame(hits)
                shown = [c for c in ("rank", "text", "score", "unit_group_name", "major_group_name") if c in frame]
                st.dataframe(frame[shown], hide_index=True, width="stretch", key="home.results",
                             column_config={"score": st.column_config.ProgressColumn(
                                 "cosine", min_value=0.0, max_value=1.0, format="%.3f"),
                                            "unit_group_name": "unit group", "major_group_name": "major group"})
                st.caption(f"{len(store):,} titles searched in {elapsed * 1000:.0f} ms.")

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
                     "kind": "encoder" if e.kind == "tuned" else f"classifier ({e.mode})", "base": e.base or "?"}
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
                       ("evaluate", "STS-B, job-title pairs, retrieval and classification metrics in one table")):
        left, right = st.columns([1, 3])
        with left:
            widgets.page_link(page)
        right.caption(text)


widgets.navigation(home).run()
