"""Search: one query, the base and the tuned model's top-k side by side, with rank changes."""

import time
from pathlib import Path

import streamlit as st

from semsim_app import catalog, comparisons, corpora, downloads, index_builds, settings
from semsim_ui import panels, render, resources, state, widgets
from semsim_ui.guard import forgetting_warning
from semsim_ui.text import md_escape as e

widgets.page_setup("search", "One query against the base model's index and the tuned "
                             "model's index; rows show how each result moved.")

with st.sidebar:
    base_spec, tuned_spec = widgets.model_pickers()
    show_all = st.toggle("Offer every index", value=False, key="search.all_indexes",
                         help="Also list indexes built with other models (they are refused, with the reason).")
    st.header("Rerank")
    rerank_on = st.toggle("Rerank with a cross-encoder", value=False, key="search.rerank",
                          help="The index gives the candidates; a pair model re-scores each (query, candidate) "
                               "pair and the list is re-ordered by that score.")
    reranker_spec, candidates = None, 100
    if rerank_on:
        pair_entries = catalog.pair_models()
        if pair_entries:
            pair_labels = {entry.spec: entry.label for entry in pair_entries}
            reranker_spec = state.choose("Cross-encoder", list(pair_labels), "semsim.search.reranker",
                                         format_func=pair_labels.get)
            candidates = int(st.number_input("Candidates to re-score", min_value=1, max_value=1000, value=100,
                                             step=10, key="search.candidates"))
        else:
            st.caption("No pair model yet: train one with `semsim train pair-classifier` (see the Pairs page).")

if not base_spec:
    st.info("Type a model spec in the sidebar.")
    st.stop()
if tuned_spec is None:
    widgets.need_model("tuned model", "Search shows the base model alone until there is one: fine-tune one on "
                                      "the Train page, or load an existing model folder there.")
forgetting_warning(tuned_spec)


def load(spec):
    try:
        return resources.encoder(spec)
    except ValueError as exc:  # EncoderError: a spec or folder that cannot be loaded
        widgets.show_error(exc, "choose another model in the sidebar, or check the spec you typed.")
        return None


def pick_index(spec, label, state_key, prefer_source, container):
    """Indexes built with `spec` (or all, when asked), those over the other side's corpus first."""
    own = catalog.indexes_for(spec)
    offered = [e for e in catalog.indexes() if e.error is None] if show_all else own
    if not offered:
        return None
    ordered = sorted(offered, key=lambda e: (e not in own, prefer_source is not None and e.source != prefer_source))
    paths = [e.path for e in ordered]
    labels = {e.path: f"{e.name} · {e.count:,} texts" + ("" if e in own else " · built with another model")
              for e in ordered}
    widget_key = f"widget.{state_key}.{spec}.{prefer_source}"
    if st.session_state.get(widget_key) not in paths:
        remembered = state.get(state_key)
        usable = remembered in paths and (prefer_source is None
                                          or catalog.index_entry(Path(remembered)).source == prefer_source)
        st.session_state[widget_key] = remembered if usable else paths[0]
    chosen = container.selectbox(label, paths, key=widget_key, format_func=labels.get)
    state.put(state_key, chosen)
    return chosen


def offer_build(spec, key, source):
    """No index for this model: offer to build one over the other side's corpus (or the job titles)."""
    st.warning(f"No index built with {e(catalog.describe_spec(spec))} yet.")
    corpus = next((c for c in corpora.bundled_corpora() if source and str(c.path) == source),
                  corpora.bundled_corpora()[0])
    target = settings.indexes_dir() / catalog.index_name(spec, corpus.path.name)
    job = index_builds.get(target)
    if (job is None or not job.running) and st.button(f"Build it over {corpus.label}", key=f"search.build.{key}"):
        encoder = load(spec)
        if encoder is not None:
            index_builds.start_build(target, spec, corpus.path, corpus.column, corpus.extra_columns,
                                     overwrite=True, encoder=encoder)
            st.rerun()
    widgets.page_link("index", "Or build one from any corpus on the Index page")


with st.form("search", border=False):
    query_col, k_col, button_col = st.columns([6, 1, 1], vertical_alignment="bottom")
    query = query_col.text_input("Query", placeholder="data scientist", key="search.query",
                                 help="Any language works with a multilingual model such as use-multilingual.")
    k = k_col.number_input("Top k", min_value=1, max_value=100, value=10, step=1, key="search.k")
    button_col.form_submit_button("Search", type="primary", width="stretch")

left, right = st.columns(2)
left.subheader(f"Base · {e(catalog.describe_spec(base_spec))}")
base_index = pick_index(base_spec, "Base index", state.BASE_INDEX, None, left)
base_source = catalog.index_entry(Path(base_index)).source if base_index else None
tuned_index = None
if tuned_spec:
    right.subheader(f"Tuned · {e(catalog.describe_spec(tuned_spec))}")
    tuned_index = pick_index(tuned_spec, "Tuned index", state.TUNED_INDEX, base_source, right)

panels.build_progress([job.out_dir for job in index_builds.active()])
if base_index is None:
    with left:
        offer_build(base_spec, "base", None)
if tuned_spec and tuned_index is None:
    with right:
        offer_build(tuned_spec, "tuned", base_source)
if base_index is None:
    st.stop()

query = query.strip()
if not query:
    st.caption("Type a query and press Enter.")
    st.stop()


reranker = None
if reranker_spec:
    try:
        reranker = resources.pair_model(reranker_spec)
    except ValueError as exc:  # EncoderError: the folder cannot be loaded
        widgets.show_error(exc, "choose another cross-encoder in the sidebar, or train it again.")


def search(spec, index_dir):
    from semsim.search import search_index

    encoder = load(spec)
    if encoder is None:
        return None
    try:
        store = resources.index(index_dir, expected_encoder=encoder)
        started = time.perf_counter()
        hits = search_index(encoder, store, query, k=max(int(k), candidates) if reranker else int(k))
    except ValueError as exc:  # VectorIndexError: built with another model, unreadable, ...
        widgets.show_error(exc, "choose an index built with this model, or build one on the Index page.")
        return None
    if reranker is not None:
        from semsim.rerank import rerank

        hits = rerank(reranker, query, hits, int(k))
    return hits, time.perf_counter() - started


base_result = search(base_spec, base_index)
tuned_result = search(tuned_spec, tuned_index) if tuned_spec and tuned_index else None
if base_result is None:
    st.stop()
base_hits, base_seconds = base_result
tuned_hits = tuned_result[0] if tuned_result else []
extras = [c for c in catalog.index_entry(Path(base_index)).extra_columns
          if c in ("major_group_name", "unit_group_name", "label")][:1]
base_frame, tuned_frame = comparisons.compare_rankings(base_hits, tuned_hits, extras)

if reranker is not None:
    # Reranked: each side shows both scores and how far the cross-encoder moved each result from its place
    # among the index's candidates (base vs tuned changes are in the download).
    from semsim_app import reranking

    sides = [(left, base_hits, base_seconds, "base")]
    if tuned_result:
        sides.append((right, tuned_hits, tuned_result[1], "tuned"))
    for column, hits, seconds, side in sides:
        with column:
            render.results_table(reranking.rerank_frame(hits, extras), key=f"search.{side}.reranked",
                                 extra_columns=[reranking.RERANK_SCORE, reranking.RETRIEVAL_RANK, *extras])
            st.caption(f"Top {candidates} candidates re-scored by {e(catalog.describe_spec(reranker_spec))} in "
                       f"{seconds * 1000:.0f} ms · {reranking.moved_summary(hits)}")
    st.caption(reranking.LEGEND)
else:
    with left:
        render.results_table(base_frame, key="search.base", extra_columns=extras)
        st.caption(f"{len(base_hits)} results in {base_seconds * 1000:.0f} ms")
    if tuned_result:
        with right:
            render.results_table(tuned_frame, key="search.tuned", extra_columns=extras)
            st.caption(f"{len(tuned_hits)} results in {tuned_result[1] * 1000:.0f} ms")
        st.caption(render.LEGEND)
download = comparisons.results_for_download(query, base_frame,
                                            tuned_frame if tuned_result else tuned_frame.iloc[0:0],
                                            base_spec, tuned_spec or "")
st.download_button("Download results (CSV)", downloads.csv_bytes(download),
                   file_name="search-results.csv", mime="text/csv", on_click="ignore", key="search.download")
