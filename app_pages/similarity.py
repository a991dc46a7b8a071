"""Similarity matrix: cosine similarity of a list of texts under the base and the tuned model, and the change."""

import numpy as np
import pandas as pd
import streamlit as st

from semsim_app import catalog, settings
from semsim_ui import render, resources, widgets

DEFAULT_TEXTS = """Data scientist
Statistician
Software engineer
Web developer
Staff nurse
Midwife
Primary school teacher
Lecturer
HGV driver
Bus driver
Chef
Kitchen porter"""

widgets.page_setup("similarity", "How close each pair of texts is under each model (cosine), and how "
                                 "fine-tuning changed it. Hover a cell for the numbers.")

with st.sidebar:
    base_spec, tuned_spec = widgets.model_pickers()

text = st.text_area(f"Texts, one per line (up to {settings.MAX_SIMILARITY_TEXTS})", DEFAULT_TEXTS, height=250,
                    key="similarity.texts")
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
if not base_spec:
    st.stop()


def similarity(spec):
    try:
        vectors = resources.embeddings(spec, texts)
    except ValueError as exc:  # EncoderError
        widgets.show_error(exc, "choose another model in the sidebar.")
        return None
    return np.clip(vectors @ vectors.T, -1.0, 1.0)


base = similarity(base_spec)
tuned = similarity(tuned_spec) if tuned_spec else None
if base is None:
    st.stop()

figures = [(f"Base · {catalog.describe_spec(base_spec)}", base, False)]
if tuned is not None:
    figures += [(f"Tuned · {catalog.describe_spec(tuned_spec)}", tuned, False), ("Tuned − base", tuned - base, True)]
columns = st.columns(2) + (st.columns(2) if len(figures) > 2 else [])
for position, (column, (title, matrix, diverging)) in enumerate(zip(columns, figures, strict=False)):
    column.plotly_chart(render.heatmap(matrix, texts, title, diverging=diverging), key=f"similarity.{position}",
                        width="stretch")

if tuned is not None:
    upper = np.triu_indices(len(texts), k=1)
    pairs = pd.DataFrame({"text a": [texts[i] for i in upper[0]], "text b": [texts[j] for j in upper[1]],
                          "base": base[upper], "tuned": tuned[upper]})
    pairs["change"] = pairs["tuned"] - pairs["base"]
    pairs = pairs.reindex(pairs["change"].abs().sort_values(ascending=False).index)
    st.markdown("**Pairs that changed most**")
    st.dataframe(pairs.head(15), hide_index=True, width="stretch", key="similarity.pairs",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("base", "tuned", "change")})
    st.download_button("Download all pairs (CSV)", pairs.to_csv(index=False).encode("utf-8"),
                       file_name="similarity-pairs.csv", mime="text/csv", on_click="ignore",
                       key="similarity.download")
