"""Pairs: two pair models side by side (cross-encoder vs bi-encoder + head, or base vs tuned) on typed or uploaded pairs."""

import pandas as pd
import streamlit as st

from semsim_app import catalog, downloads, pairs, settings
from semsim_ui import render, resources, state, widgets
from semsim_ui.text import md_escape as e

NONE = "__none__"

widgets.page_setup("pairs", "Classify pairs of texts with two pair models side by side: a cross-encoder, which "
                            "reads both texts together, against a bi-encoder + head, which embeds each alone.")

entries = catalog.pair_models()
by_spec = {entry.spec: entry for entry in entries}
if not entries:
    widgets.need_model("pair model", "Train one with `semsim train pair-classifier --data job-title-relations "
                                     "--test job-title-relations --out workspace/models/relations-cross`, and "
                                     "the bi-encoder baseline beside it with `--architecture bi`.")
    st.stop()

with st.sidebar:
    st.header("Pair models")
    crosses = [e.spec for e in entries if e.extra.get("architecture") == "cross"]
    bis = [e.spec for e in entries if e.extra.get("architecture") != "cross"]
    first = state.choose("Model A", [e.spec for e in entries], "semsim.pairs.a",
                         default=(crosses or bis)[0], format_func=lambda s: by_spec[s].label)
    others = [e.spec for e in entries if e.spec != first]
    second_default = next((s for s in (bis if first in crosses else crosses) if s != first), None) or (
        others[0] if others else NONE)
    second = state.choose("Model B", [*others, NONE], "semsim.pairs.b", default=second_default,
                          format_func=lambda s: "none" if s == NONE else by_spec[s].label)
    chosen = [spec for spec in (first, second) if spec and spec != NONE]

source = st.radio("Pairs", ["type", "upload"], horizontal=True, key="pairs.source",
                  format_func={"type": "Type pairs", "upload": "Upload a file"}.get)
true_labels = None
if source == "type":
    text = st.text_area("One pair a line: text A | text B", pairs.EXAMPLES, height=160, key="pairs.texts")
    typed, bad = pairs.parse_typed_pairs(text, settings.MAX_INTERACTIVE_ROWS)
    if bad:
        st.warning(f"Line(s) {', '.join(map(str, bad[:10]))} have no `|` between two texts and were skipped.")
    texts_a, texts_b = [a for a, _ in typed], [b for _, b in typed]
else:
    upload = widgets.uploaded_csv("CSV with text_a, text_b (and label for accuracy and confusion matrices), or an "
                                  "SNLI/MultiNLI .jsonl", key="pairs.upload",
                                  types=("csv", "tsv", "txt", "jsonl"))
    if upload is None:
        st.caption("The bundled job-title relations test file (data/job_title_relations_test.csv) has labels.")
        st.stop()
    from semsim.data import DatasetError

    try:
        frame = pairs.read_pair_upload(*upload)
    except DatasetError as exc:
        widgets.show_error(f"These pairs cannot be read: {exc}", widgets.dataset_todo(exc))
        st.stop()
    if len(frame) > settings.MAX_INTERACTIVE_ROWS:
        widgets.show_error(f"{upload[0]} has {len(frame):,} pairs; this page scores up to "
                           f"{settings.MAX_INTERACTIVE_ROWS:,} at a time.", "upload a sample of the rows.")
        st.stop()
    texts_a, texts_b = frame["text_a"].tolist(), frame["text_b"].tolist()
    true_labels = frame["label"].tolist() if "label" in frame.columns else None
    dropped = int(frame.attrs.get("dropped_no_gold", 0))
    st.caption(f"{len(frame):,} pairs" + (" with labels" if true_labels else "")
               + (f"; {dropped:,} with gold_label '-' dropped" if dropped else ""))

if not texts_a:
    st.info("Type at least one pair.")
    st.stop()

names = pairs.side_names([catalog.describe_spec(spec) for spec in chosen])
sides, models = [], {}
for name, spec in zip(names, chosen, strict=True):
    try:
        model = resources.pair_model(spec)
        predicted, values = resources.pair_predictions(spec, list(zip(texts_a, texts_b, strict=True)))
    except ValueError as exc:  # EncoderError: the folder cannot be loaded
        widgets.show_error(exc, "choose another pair model in the sidebar, or train it again.")
        continue
    models[name] = model
    sides.append((name, model.labels, predicted, values, model.head_kind == "regression"))
if not sides:
    st.stop()

columns = st.columns(len(sides))
for column, (name, model) in zip(columns, models.items(), strict=True):
    kind = "cross-encoder" if model.architecture == "cross" else "bi-encoder + head"
    column.markdown(f"**{e(name)}**")
    column.caption(f"{kind} · {model.head_kind} · encoder {model.mode} · "
                   + (f"labels {', '.join(model.labels)}" if model.labels else f"scores {model.score_range}"))
table = pairs.predictions_table(texts_a, texts_b, true_labels, sides)
st.dataframe(table, hide_index=True, width="stretch", key="pairs.table",
             column_config={c: st.column_config.ProgressColumn(c, min_value=0.0, max_value=1.0, format="%.2f")
                            for c in table.columns if c.endswith("probability") or ": p(" in c})
st.download_button("Download predictions (CSV)", downloads.csv_bytes(table),
                   file_name="pair-predictions.csv", mime="text/csv", on_click="ignore", key="pairs.download")

if true_labels is not None:
    from semsim.evaluation import classification_metrics

    scores = {}
    for name, labels, predicted, values, regression in sides:
        if regression:
            st.caption(f"{name} predicts scores, not labels: it has no confusion matrix.")
            continue
        unknown = sorted(set(map(str, true_labels)) - set(labels))
        if unknown:
            widgets.show_error(f"The file has labels {unknown} that {name} does not know (it knows {list(labels)}).",
                               "use the label names of the model's training data.")
            continue
        scores[name] = classification_metrics(true_labels, predicted, values, labels)
    if scores:
        st.subheader("On the labelled file")
        render.metrics_table(pairs.metrics_frame(scores), key="pairs.metrics")
        with st.expander("Precision and recall per class"):
            st.dataframe(pd.DataFrame(pairs.per_class_frame(scores)), hide_index=True, width="stretch",
                         key="pairs.per_class")
        chart_columns = st.columns(len(scores))
        for column, (name, result) in zip(chart_columns, scores.items(), strict=True):
            column.plotly_chart(render.confusion_figure(result, f"{name}: confusion matrix"),
                                key=f"pairs.confusion.{name}", width="stretch")
