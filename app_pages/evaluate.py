"""Evaluate: base vs tuned on STS-B, held-out job-title pairs, ESCO retrieval and sentiment, in one table;
and a 2-D PCA map of job titles under each model."""

import pandas as pd
import streamlit as st

from semsim_app import catalog, measurements
from semsim_ui import render, resources, state, widgets
from semsim_ui.text import md_escape as e

widgets.page_setup("evaluate", "The same held-out data through both models. Samples keep this quick on a "
                               "CPU; the model cards (Train page) hold the full-size numbers.")

with st.sidebar:
    base_spec, tuned_spec = widgets.model_pickers()
    frozen, full = widgets.classifier_pickers()
    if not (frozen or full):
        st.caption("None yet: train them on the Train page (task Sentiment).")

if not base_spec:
    st.stop()
if tuned_spec is None:
    widgets.need_model("tuned model", "The base model's numbers are shown alone until there is one.")

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
                    results.append(resources.pair_scores(spec, "sts-b", 300 if quick else None))
                elif step == "jobs":
                    results.append(resources.pair_scores(spec, "job-title-pairs", 500 if quick else None))
                elif step == "retrieval":
                    results.append(resources.retrieval_scores(spec, 200 if quick else None, 1000 if quick else None))
                else:
                    results.append(resources.classification_scores(spec, 300 if quick else None))
                done += 1
            base_result, tuned_result = results[0], results[1] if len(results) > 1 else None
            task, dataset, metrics = {
                "sts": ("similarity", "STS-B test", measurements.PAIR_METRICS),
                "jobs": ("similarity", "job-title pairs test", measurements.PAIR_METRICS),
                "retrieval": ("retrieval", "ESCO", measurements.RETRIEVAL_METRICS),
                "sentiment": ("classification (frozen → fine-tuned)", "Rotten Tomatoes test",
                              measurements.CLASSIFICATION_METRICS),
            }[step]
            rows += measurements.rows_for(task, dataset, base_result, tuned_result, metrics)
    except ValueError as exc:  # EncoderError, DatasetError: messages meant for the user
        widgets.show_error(exc, "choose other models in the sidebar.")
    else:
        bar.progress(1.0, text="Done")
        state.put("semsim.evaluate.rows", {"rows": rows, "base": base_spec, "tuned": tuned_spec, "size": size})

saved = state.get("semsim.evaluate.rows")
if saved and saved["base"] == base_spec and saved["tuned"] == tuned_spec:
    table = pd.DataFrame(saved["rows"], columns=["task", "dataset", "metric", "base", "tuned", "delta"])
    render.metrics_table(table, key="evaluate.table")
    st.caption(f"base = {e(catalog.describe_spec(base_spec))}, tuned = {e(catalog.describe_spec(tuned_spec or '—'))}; "
               f"for sentiment, base = the frozen-encoder classifier and tuned = the fine-tuned one.")
    st.download_button("Download metrics (CSV)", table.to_csv(index=False).encode("utf-8"),
                       file_name="semsim-metrics.csv", mime="text/csv", on_click="ignore", key="evaluate.download")
elif saved:
    st.caption("The models changed since the last evaluation: run it again.")

# -- the PCA map ----------------------------------------------------------------------------------
st.subheader("Map of job titles")
st.caption("Each point is a job title, placed by the first two principal components (numpy SVD) of its "
           "embedding; colour = ONS major group. Tuning should pull titles of one group together.")
rows = st.slider("Titles", 50, 1000, 300, step=50, key="evaluate.map_rows")
if st.button("Draw the maps", key="evaluate.map"):
    state.put("semsim.evaluate.map", True)
if state.get("semsim.evaluate.map"):
    sample = measurements.map_sample(rows)
    reference = None
    columns = st.columns(2 if tuned_spec else 1)
    for column, spec in zip(columns, [s for s in (base_spec, tuned_spec) if s], strict=True):
        try:
            vectors = resources.embeddings(spec, sample["title"].tolist())
            coords, explained = measurements.pca_coordinates(vectors, reference)
        except ValueError as exc:  # EncoderError; fewer than 3 titles
            widgets.show_error(exc)
            break
        reference = coords if reference is None else reference
        figure = render.pca_map(sample["title"], sample["major_group_name"], coords, explained,
                                catalog.describe_spec(spec))
        column.plotly_chart(figure, key=f"evaluate.map.{spec}", width="stretch")
