"""Similarity matrix: how similar each pair of texts is under the base and the tuned model, on one colour scale,
and relative to each model's own scale (percentiles among random pairs of a reference corpus); the change."""

import streamlit as st

from semsim import embedding_compare
from semsim_app import catalog, comparisons, downloads, settings
from semsim_ui import render, resources, state, widgets
from semsim_ui.guard import forgetting_warning
from semsim_ui.text import md_escape as e

TEXTS = "semsim.similarity.texts"  # shared with the Evaluate page's comparison report

widgets.page_setup("similarity", "How close each pair of texts is under each model, and how fine-tuning "
                                 "changed it. Both models share one colour scale; the relative view reads each "
                                 "model against its own scale. Hover a cell for the numbers.")

with st.sidebar:
    base_spec, tuned_spec = widgets.model_pickers()
    st.header("Relative view")
    reference = widgets.corpus_picker(
        "Reference corpus", "similarity.reference",
        help="A pair's relative similarity is its percentile among the same model's similarities of random "
             f"pairs of this corpus ({settings.REFERENCE_TEXTS} texts sampled). A model that only moved its whole "
             "scale (say, every cosine towards 0.8) shows no change in this view.")

text = st.text_area(f"Texts, one per line (up to {settings.MAX_SIMILARITY_TEXTS})",
                    state.get(TEXTS, "\n".join(comparisons.SIMILARITY_TEXTS)), height=250, key="similarity.texts")
state.put(TEXTS, text)
texts = widgets.texts_from_area(text, settings.MAX_SIMILARITY_TEXTS)
lines = len([line for line in text.splitlines() if line.strip()])
if lines > settings.MAX_SIMILARITY_TEXTS:
    st.warning(f"Showing the first {settings.MAX_SIMILARITY_TEXTS} distinct texts of {lines}.")
if len(texts) < 2:
    widgets.show_error("Give at least two different texts, one per line.")
    st.stop()
if tuned_spec is None:
    widgets.need_model("tuned model", "The base model's matrix is shown below; the tuned one and the difference "
                                      "appear once a model has been fine-tuned.")
forgetting_warning(tuned_spec)
if not base_spec:
    st.stop()

view = st.radio("Scale", ["cosine", "relative"], horizontal=True, key="similarity.view",
                format_func={"cosine": "Cosine (one colour range for both models)",
                             "relative": "Relative (percentile among each model's random pairs)"}.get)


def similarity(spec):
    try:
        return embedding_compare.similarity_matrix(resources.embeddings(spec, texts))
    except ValueError as exc:  # EncoderError
        widgets.show_error(exc, "choose another model in the sidebar.")
        return None


def relative(spec, matrix):
    """The matrix as percentiles of this model's reference pairs (None, with the reason shown, if unavailable)."""
    if reference is None:
        return None
    try:
        return embedding_compare.percentiles(matrix, resources.reference_similarities(spec, reference))
    except ValueError as exc:  # DatasetError (an uploaded corpus), EncoderError
        widgets.show_error(f"The reference corpus cannot be used: {exc}", "choose another reference corpus.")
        return None


base = similarity(base_spec)
tuned = similarity(tuned_spec) if tuned_spec else None
if base is None:
    st.stop()
# The relative view is needed to show it, and to rank the changed pairs whenever there is a tuned model.
base_relative = relative(base_spec, base) if view == "relative" or tuned is not None else None
tuned_relative = relative(tuned_spec, tuned) if tuned is not None and base_relative is not None else None
reference_name = reference.label if reference is not None else "—"

if view == "relative" and base_relative is None:
    st.info("Choose a reference corpus in the sidebar for the relative view; the cosines are shown meanwhile.")
relative_shown = view == "relative" and base_relative is not None and (tuned is None or tuned_relative is not None)
base_label, tuned_label = catalog.describe_spec(base_spec), catalog.describe_spec(tuned_spec or "")
if relative_shown:
    zrange = (0.0, 100.0)
    figures = [(f"Base · {base_label} · percentile", base_relative, False)]
    if tuned is not None:
        figures += [(f"Tuned · {tuned_label} · percentile", tuned_relative, False),
                    ("Tuned − base · percentile points", tuned_relative - base_relative, True)]
    st.caption(f"Relative view: each cell is that pair's percentile among the same model's cosines of "
               f"random pairs of {e(reference_name)} (0 = less similar than any, 100 = more than any).")
else:
    zrange = render.shared_range(base, tuned)
    figures = [(f"Base · {base_label} · cosine", base, False)]
    if tuned is not None:
        figures += [(f"Tuned · {tuned_label} · cosine", tuned, False), ("Tuned − base · cosine", tuned - base, True)]
    st.caption(f"Both heatmaps share one colour range, {zrange[0]:.2f} to {zrange[1]:.2f}: the same colour is the "
               f"same cosine in each. Raw cosines of two models are on different scales; the relative view "
               f"compares them fairly.")

# Side by side while two decimals fit in a half-width cell; one per row for longer lists.
if len(texts) <= 10:
    columns = st.columns(2) + (st.columns(2) if len(figures) > 2 else [])
else:
    columns = [st.container() for _ in figures]
for position, (column, (title, matrix, diverging)) in enumerate(zip(columns, figures, strict=False)):
    figure = render.heatmap(matrix, texts, title, zrange=None if diverging else zrange, diverging=diverging,
                            value_name=("Δ " if diverging else "") + ("percentile" if relative_shown else "cosine"),
                            decimals=0 if relative_shown else 2)
    column.plotly_chart(figure, key=f"similarity.{position}", width="stretch")

if tuned is not None:
    pairs = embedding_compare.pair_changes(texts, base, tuned, base_relative, tuned_relative)
    st.markdown("**Pairs that changed most**")
    if pairs.attrs["ranked_by"] == "relative":
        st.caption(f"Ranked by the change in relative similarity (percentile points among each model's random "
                   f"pairs of {e(reference_name)}), whichever scale the heatmaps show: a change of the whole scale "
                   f"does not count.")
    else:
        st.caption("Ranked by the change in raw cosine (the relative view needs a reference corpus): a model "
                   "that moved its whole scale would top this list with unrelated pairs.")
    config = {c: st.column_config.NumberColumn(format="%.3f") for c in ("base", "tuned", "change")}
    config.update({"change": st.column_config.NumberColumn("Δ cosine", format="%+.3f"),
                   "base %": st.column_config.NumberColumn(format="%.0f"),
                   "tuned %": st.column_config.NumberColumn(format="%.0f"),
                   "relative change": st.column_config.NumberColumn("Δ percentile", format="%+.0f")})
    st.dataframe(pairs.head(15), hide_index=True, width="stretch", key="similarity.pairs", column_config=config)
    st.download_button("Download all pairs (CSV)", downloads.csv_bytes(pairs),
                       file_name="similarity-pairs.csv", mime="text/csv", on_click="ignore",
                       key="similarity.download")
