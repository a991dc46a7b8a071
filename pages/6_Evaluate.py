"""Evaluate: base vs tuned on STS-B, held-out job-title pairs, ESCO retrieval and sentiment, in one table;
and a 2-D PCA map of job titles under each model."""

import pandas as pd
import streamlit as st

from semsim_ui import catalog, evaluate, render, resources, state, widgets
from semsim_ui.text import plot_text
from semsim_ui.widgets import md_escape as e

widgets.page_setup("evaluate", "The same held-out data through both models. Samples keep this quick on a "
                                   "CPU; the model cards (Train page) hold the full-size numbers.")

with st.sidebar:
    st.header("Models")
    base_spec = widgets.encoder_picker("Base model", state.BASE_MODEL, include_tuned=False, allow_custom=True)
    tuned_spec = widgets.tuned_picker("Tuned model")
    st.header("Classifiers")
    frozen = widgets.classifier_picker("Frozen-encoder classifier", "frozen", state.FROZEN_CLASSIFIER)
    full = widgets.classifier_picker("Fine-tuned classifier", "full", state.TUNED_CLASSIFIER)
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
                    results.append(evaluate.pairs(spec, "sts-b", 300 if quick else None))
                elif step == "jobs":
                    results.append(evaluate.pairs(spec, "job-title-pairs", 500 if quick else None))
                elif step == "retrieval":
                    results.append(evaluate.retrieval(spec, 200 if quick else None, 1000 if quick else None))
                else:
                    results.append(evaluate.classification(spec, 300 if quick else None))
                done += 1
            base_result, tuned_result = results[0], results[1] if len(results) > 1 else None
            task, dataset, metrics = {
                "sts": ("similarity", "STS-B test", evaluate.PAIR_METRICS),
                "jobs": ("similarity", "job-title pairs test", evaluate.PAIR_METRICS),
                "retrieval": ("retrieval", "ESCO", evaluate.RETRIEVAL_METRICS),
                "sentiment": ("classification (frozen → fine-tuned)", "Rotten Tomatoes test",
                              evaluate.CLASSIFICATION_METRICS),
            }[step]
            rows += evaluate.rows_for(task, dataset, base_result, tuned_result, metrics)
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
    import plotly.express as px

    sample = evaluate.map_sample(rows)
    reference = None
    columns = st.columns(2 if tuned_spec else 1)
    for column, spec in zip(columns, [s for s in (base_spec, tuned_spec) if s], strict=True):
        try:
            points, coords, explained = evaluate.pca_frame(spec, sample, reference)
        except ValueError as exc:
            widgets.show_error(exc)
            break
        reference = coords if reference is None else reference
        figure = px.scatter(points, x="x", y="y", color="group", hover_name="title", hover_data={"x": False,
                            "y": False, "group": True}, title=plot_text(catalog.describe_spec(spec)),
                            labels={"x": f"PC1 ({explained[0]:.0%})", "y": f"PC2 ({explained[1]:.0%})"})
        figure.update_layout(height=520, legend={"orientation": "h", "y": -0.2}, margin={"l": 10, "r": 10, "t": 50})
        column.plotly_chart(figure, key=f"evaluate.map.{spec}", width="stretch")
