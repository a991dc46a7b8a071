"""Evaluate: base vs tuned on STS-B, held-out job-title pairs, ESCO retrieval and sentiment, in one table with
paired bootstrap 95% intervals; one map of both models with what moved, the texts whose neighbourhoods
changed; and a comparison report to share."""

import pandas as pd
import streamlit as st

from semsim_app import catalog, comparisons, corpora, downloads, measurements, reports, settings
from semsim_ui import render, resources, state, widgets
from semsim_ui.guard import forgetting_warning
from semsim_ui.text import md_escape as e

widgets.page_setup("evaluate", "The same held-out data through both models, with a 95% interval on every "
                               "difference. Samples keep this quick on a CPU; the model cards (Train page) hold "
                               "the full-size numbers.")

with st.sidebar:
    base_spec, tuned_spec = widgets.model_pickers()
    frozen, full = widgets.classifier_pickers()
    if not (frozen or full):
        st.caption("None yet: train them on the Train page (task Sentiment).")

if not base_spec:
    st.stop()
if tuned_spec is None:
    widgets.need_model("tuned model", "The base model's numbers are shown alone until there is one.")
forgetting_warning(tuned_spec)

st.subheader("Metrics")
size = st.radio("Size", ["quick", "full"], horizontal=True, key="evaluate.size",
                format_func={"quick": "Quick (samples)", "full": "Full test sets (slow on a CPU)"}.get)
quick = size == "quick"
c1, c2, c3, c4 = st.columns(4)
do_sts = c1.checkbox("STS-B test" + (" (300 pairs)" if quick else ""), value=True, key="evaluate.sts")
do_jobs = c2.checkbox("Job-title pairs test" + (" (500 pairs)" if quick else ""), value=True, key="evaluate.jobs")
do_retrieval = c3.checkbox("ESCO retrieval" + (" (200 queries, 1,000 texts)" if quick else ""), value=True,
                           key="evaluate.retrieval")
do_sentiment = c4.checkbox("Rotten Tomatoes test" + (" (300 reviews)" if quick else ""),
                           value=bool(frozen and full), disabled=not (frozen and full), key="evaluate.sentiment",
                           help=None if frozen and full else "Needs a frozen and a fine-tuned classifier.")

if st.button("Run evaluation", type="primary", key="evaluate.run"):
    steps = [name for name, wanted in (("sts", do_sts), ("jobs", do_jobs), ("retrieval", do_retrieval),
                                       ("sentiment", do_sentiment)) if wanted]
    models = [spec for spec in (base_spec, tuned_spec) if spec]
    bar = st.progress(0.0, text="Evaluating …")
    rows, done = [], 0
    total = max(1, sum(2 if step == "sentiment" else len(models) for step in steps))
    try:
        for spec in models:
            resources.encoder(spec)  # load errors surface here, with a spinner
        for step in steps:
            results = []
            for spec in models if step != "sentiment" else (frozen, full):
                bar.progress(done / total, text=f"{step}: {e(catalog.describe_spec(spec))} …")
                if step == "sts":
                    results.append(resources.pair_items(spec, "sts-b", 300 if quick else None))
                elif step == "jobs":
                    results.append(resources.pair_items(spec, "job-title-pairs", 500 if quick else None))
                elif step == "retrieval":
                    results.append(resources.retrieval_items(spec, 200 if quick else None, 1000 if quick else None))
                else:
                    results.append(resources.classification_items(spec, 300 if quick else None))
                done += 1
            base_items, tuned_items = results[0], results[1] if len(results) > 1 else None
            task, dataset, kind, metrics = {
                "sts": ("similarity", "STS-B test", "pairs", measurements.PAIR_METRICS),
                "jobs": ("similarity", "job-title pairs test", "pairs", measurements.PAIR_METRICS),
                "retrieval": ("retrieval", "ESCO", "retrieval", measurements.RETRIEVAL_METRICS),
                "sentiment": ("classification (frozen → fine-tuned)", "Rotten Tomatoes test", "classification",
                              measurements.CLASSIFICATION_METRICS),
            }[step]
            rows += measurements.rows_for(task, dataset, kind, base_items, tuned_items, metrics)
    except ValueError as exc:  # EncoderError, DatasetError: messages meant for the user
        widgets.show_error(exc, "choose other models in the sidebar.")
    else:
        bar.progress(1.0, text="Done")
        state.put("semsim.evaluate.rows", {"rows": rows, "base": base_spec, "tuned": tuned_spec, "size": size})

saved = state.get("semsim.evaluate.rows")
rows = saved["rows"] if saved and saved["base"] == base_spec and saved["tuned"] == tuned_spec else None
if rows is not None:
    table = pd.DataFrame(rows, columns=["task", "dataset", "metric", "n", "base", "tuned", "delta", "ci low", "ci high",
                                        "significant"])
    render.metrics_table(table, key="evaluate.table")
    noise = int((table["significant"] == False).sum())  # noqa: E712 (None: no tuned model)
    st.caption(f"base = {e(catalog.describe_spec(base_spec))}, tuned = {e(catalog.describe_spec(tuned_spec or '—'))}; "
               f"for sentiment, base = the frozen-encoder classifier and tuned = the fine-tuned one. 95% CI: paired "
               f"bootstrap, 1,000 resamples (seed 0) of the same pairs, queries or reviews for both models. A delta "
               f"whose interval contains 0 is grey: it may be noise"
               + (f" ({noise} of {len(table)} here)." if tuned_spec else "."))
    st.download_button("Download metrics (CSV)", downloads.csv_bytes(table),
                       file_name="semsim-metrics.csv", mime="text/csv", on_click="ignore", key="evaluate.download")
elif saved:
    st.caption("The models changed since the last evaluation: run it again.")

# -- quality against dimension (Matryoshka) -------------------------------------------------------------
st.subheader("Quality against dimension")
st.caption("Each vector cut to its first N dimensions and re-normalised (what an index built with --dim N holds): "
           "STS-B test Spearman and ESCO nDCG@10 at each cut, for base and tuned. A model trained with "
           "--matryoshka keeps most of its quality in the prefix; an ordinary one loses more as it shrinks."
           + (" Quick: 300 STS-B pairs and 300 ESCO queries against every occupation." if quick else ""))
if st.button("Measure by dimension", key="evaluate.dims.run"):
    from semsim_app import dimensions

    try:
        labelled = {"base": resources.encoder(base_spec), **({"tuned": resources.encoder(tuned_spec)} if tuned_spec else {})}
        with st.spinner("Embedding once per model, then scoring each cut …"):
            state.put("semsim.evaluate.dims", {"frame": dimensions.quality_table(labelled, quick), "base": base_spec,
                                               "tuned": tuned_spec})
    except ValueError as exc:  # EncoderError, DatasetError
        widgets.show_error(exc, "choose other models in the sidebar.")
by_dim = state.get("semsim.evaluate.dims")
if by_dim and by_dim["base"] == base_spec and by_dim["tuned"] == tuned_spec:
    render.dimension_charts(by_dim["frame"], key="evaluate.dims")

# -- one map of both models, and the neighbourhoods ---------------------------------------------------
st.subheader("Map and neighbourhoods")
st.caption("Base and tuned points in one frame: the tuned embeddings are rotated onto the base ones (orthogonal "
           "Procrustes on this sample), then both are projected together (UMAP if installed, else one PCA), so "
           "a point that moved really moved. Neighbourhoods: each text's nearest texts of the sample under each "
           "model.")
left, middle, right = st.columns(3)
with left:
    corpus = widgets.corpus_picker("Corpus", "evaluate.corpus")
with middle:
    rows_wanted = st.slider("Texts", 50, 2000, 300, step=50, key="evaluate.map_rows")
    k = st.slider("Neighbours (k)", 3, 30, 10, key="evaluate.k")
sample = None
if corpus is not None:
    try:
        sample = resources.corpus_sample(corpus, rows_wanted)
    except ValueError as exc:  # DatasetError: an uploaded corpus without that column, ...
        widgets.show_error(exc, "choose another corpus or text column.")
with right:
    colour_columns = [c for c in (sample.columns if sample is not None else []) if c != "text"]
    default_colour = next((c for c in ("major_group_name", "isco_group", "label") if c in colour_columns), None)
    colour = st.selectbox("Colour by", [None, *colour_columns], key=f"evaluate.colour.{corpus and corpus.key}",
                          index=[None, *colour_columns].index(default_colour),
                          format_func=lambda c: "nothing" if c is None else c)
    moves = st.toggle("Draw each text's move", value=False, key="evaluate.moves", disabled=tuned_spec is None)
if st.button("Draw the map", key="evaluate.map"):
    state.put("semsim.evaluate.map", True)
if state.get("semsim.evaluate.map") and sample is not None:
    texts = sample["text"].tolist()
    try:
        base_vectors = resources.embeddings(base_spec, texts)
        tuned_vectors = resources.embeddings(tuned_spec, texts) if tuned_spec else None
        frame = measurements.map_frame(base_vectors, tuned_vectors)
    except ValueError as exc:  # EncoderError; fewer than 3 texts
        widgets.show_error(exc)
    else:
        groups = sample[colour].astype(str).tolist() if colour else None
        title = (f"{catalog.describe_spec(base_spec)} (circles) and {catalog.describe_spec(tuned_spec)} (diamonds)"
                 if tuned_spec else catalog.describe_spec(base_spec))
        figure = render.aligned_map(texts, frame.base, frame.tuned if tuned_spec else None, groups=groups,
                                    group_name=colour or "group", show_moves=moves, title=title,
                                    explained=frame.explained)
        st.plotly_chart(figure, key="evaluate.aligned_map", width="stretch")
        st.caption(f"{len(texts):,} texts of {e(corpus.label)}; {e(frame.method)}."
                   + (f" Median move {float(pd.Series(frame.moves).median()):.3f}, largest "
                      f"{float(frame.moves.max()):.3f} (map units)." if tuned_spec else ""))
        if tuned_spec:
            mean_jaccard, overlap = measurements.neighbourhoods(texts, base_vectors, tuned_vectors, k)
            st.markdown(f"**Neighbourhoods that changed most** · mean Jaccard overlap of the top-{k} "
                        f"neighbours: {mean_jaccard:.3f} (1 = unchanged)")
            render.overlap_table(overlap.head(50), key="evaluate.overlap")
            st.download_button("Download all neighbourhoods (CSV)", downloads.csv_bytes(overlap),
                               file_name="semsim-neighbourhoods.csv", mime="text/csv", on_click="ignore",
                               key="evaluate.overlap_download")

# -- the comparison report --------------------------------------------------------------------------
st.subheader("Comparison report")
if tuned_spec is None:
    st.caption("A report compares two models: it needs a tuned one.")
else:
    st.caption("One HTML file for people who will not run the app: both model cards, the metric table above with "
               "its intervals, the heatmaps of the Similarity page's texts, and this map with its neighbourhoods. "
               "It opens offline.")
    if st.button("Write the report", key="evaluate.report", icon=":material/description:"):
        similarity_texts = widgets.texts_from_area(state.get("semsim.similarity.texts") or
                                                   "\n".join(comparisons.SIMILARITY_TEXTS), 20)
        reference = next(c for c in corpora.bundled_corpora() if c.key == "job-titles")
        try:
            with st.spinner("Writing the report …"):
                document = reports.build(
                    base_spec, tuned_spec, rows or [], resources.embeddings,
                    lambda spec: resources.reference_similarities(spec, reference, settings.REFERENCE_TEXTS),
                    reference.label, similarity_texts, sample, colour, k)
        except ValueError as exc:  # EncoderError
            widgets.show_error(exc)
        else:
            state.put("semsim.evaluate.report", {"html": document, "base": base_spec, "tuned": tuned_spec})
    written = state.get("semsim.evaluate.report")
    if written and written["base"] == base_spec and written["tuned"] == tuned_spec:
        st.download_button("Download the report (HTML)", written["html"].encode("utf-8"),
                           file_name="semsim-comparison.html", mime="text/html", on_click="ignore",
                           key="evaluate.report_download", type="primary")
        if rows is None:
            st.caption("Run the evaluation first to include the metric table.")
