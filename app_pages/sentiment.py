"""Sentiment: a frozen-encoder classifier and a fine-tuned one on the same reviews, side by side."""

import io

import pandas as pd
import streamlit as st

from semsim_app import comparisons, downloads, settings
from semsim_ui import render, resources, widgets

EXAMPLES = """A gorgeous, witty, seductive movie.
The plot is paper-thin and the jokes fall flat.
Not the best film of the year, but an honest and often moving one.
I wanted to like it, I really did."""
METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc")

widgets.page_setup("sentiment", "A classifier on a frozen encoder (only its head was trained) next to one "
                                "whose encoder was fine-tuned too.")

with st.sidebar:
    frozen, tuned = widgets.classifier_pickers()

if frozen is None and tuned is None:
    widgets.need_model("sentiment classifier", "Train two on the Train page (task Sentiment, Rotten Tomatoes): one "
                                               "with mode 'frozen', one with mode 'full'.")
    st.stop()
if frozen is None or tuned is None:
    widgets.need_model("frozen-encoder classifier" if frozen is None else "fine-tuned classifier",
                       "Only one side is shown; train the other on the Train page (task Sentiment).")
sides = [(name, folder) for name, folder in (("frozen", frozen), ("fine-tuned", tuned)) if folder]

source = st.radio("Reviews", ["type", "upload"], horizontal=True, key="sentiment.source",
                  format_func={"type": "Type reviews", "upload": "Upload a CSV"}.get)
texts, true_labels = [], None
if source == "type":
    text = st.text_area("One review per line", EXAMPLES, height=150, key="sentiment.texts")
    texts = widgets.texts_from_area(text, settings.MAX_INTERACTIVE_ROWS)
else:
    upload = widgets.uploaded_csv("CSV with a text column (and a label column for accuracy and F1)",
                                  key="sentiment.upload")
    if upload is None:
        st.caption("A file with columns text and label (e.g. the bundled rotten_tomatoes_test.csv) also gets "
                   "accuracy, F1 and confusion matrices.")
        st.stop()
    from semsim.data import DatasetError, load_labelled, load_texts, read_csv

    def buffer():
        handle = io.BytesIO(upload[1])
        handle.name = upload[0]
        return handle

    try:
        columns = read_csv(buffer()).columns
        frame = load_labelled(buffer()) if "label" in columns else load_texts(buffer(), "text")
    except DatasetError as exc:
        widgets.show_error(f"This file cannot be classified: {exc}", widgets.dataset_todo(exc))
        st.stop()
    if len(frame) > settings.MAX_INTERACTIVE_ROWS:
        widgets.show_error(f"{upload[0]} has {len(frame):,} rows; this page classifies up to "
                           f"{settings.MAX_INTERACTIVE_ROWS:,} at a time.", "upload a sample of the rows.")
        st.stop()
    texts = frame["text"].tolist()
    true_labels = frame["label"].tolist() if "label" in frame.columns else None
    st.caption(f"{len(texts):,} reviews" + (" with labels" if true_labels else ""))

if not texts:
    st.info("Type at least one review.")
    st.stop()

results = {}
for name, folder in sides:
    try:
        results[name] = resources.predictions(folder, texts)
    except ValueError as exc:  # EncoderError: the folder cannot be loaded
        widgets.show_error(exc, "choose another classifier in the sidebar, or train it again.")
if not results:
    st.stop()

table = pd.DataFrame({"text": texts})
if true_labels is not None:
    table["true label"] = true_labels
for name, (labels, probabilities) in results.items():
    table[f"{name}: label"] = labels
    table[f"{name}: probability"] = probabilities.max(axis=1)
if len(results) == 2:
    table["agree"] = table["frozen: label"] == table["fine-tuned: label"]
st.dataframe(table, hide_index=True, width="stretch", key="sentiment.table",
             column_config={c: st.column_config.ProgressColumn(c, min_value=0.0, max_value=1.0, format="%.2f")
                            for c in table.columns if c.endswith("probability")})
st.download_button("Download predictions (CSV)", downloads.csv_bytes(table),
                   file_name="sentiment-predictions.csv", mime="text/csv", on_click="ignore",
                   key="sentiment.download")

if true_labels is not None:
    from semsim.evaluation import classification_metrics

    scores = {}
    for name, folder in sides:
        if name not in results:
            continue
        known = resources.classifier(folder).labels
        unknown = sorted(set(map(str, true_labels)) - set(known))
        if unknown:
            widgets.show_error(f"The file has labels {unknown} that the {name} classifier does not know "
                               f"(it knows {known}).", "use the same label names as the training data.")
            continue
        labels, probabilities = results[name]
        scores[name] = classification_metrics(true_labels, labels, probabilities, known)
    if scores:
        st.subheader("On the labelled file")
        names = list(scores)
        if len(names) == 2:
            rows = comparisons.metric_rows("sentiment", "uploaded file", scores["frozen"], scores["fine-tuned"],
                                           METRICS)
            frame = pd.DataFrame(rows).drop(columns=["task", "dataset"]).rename(
                columns={"base": "frozen", "tuned": "fine-tuned"})
        else:
            frame = pd.DataFrame([{"metric": m, names[0]: scores[names[0]].get(m)} for m in METRICS])
        render.metrics_table(frame, key="sentiment.metrics")
        columns = st.columns(len(scores))
        for column, (name, result) in zip(columns, scores.items(), strict=True):
            column.plotly_chart(render.confusion_figure(result, f"{name}: confusion matrix"),
                                key=f"sentiment.confusion.{name}", width="stretch")
