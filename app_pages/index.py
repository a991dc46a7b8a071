"""Index: embed a corpus with the base and the tuned model into persistent FAISS indexes; list, rebuild, delete."""

import io
from pathlib import Path

import pandas as pd
import streamlit as st

from semsim_app import catalog, corpora, index_builds, settings
from semsim_ui import panels, resources, state, widgets
from semsim_ui.guard import forgetting_warning
from semsim_ui.text import md_escape as e

widgets.page_setup("index", "Embed a corpus once per model; the Search page then answers queries "
                            "from these indexes. Builds run in the background with progress.")

panels.build_progress([job.out_dir for job in index_builds.active()])

# -- build ----------------------------------------------------------------------------------------
st.subheader("Build")
left, right = st.columns(2)
with left:
    base_spec = widgets.encoder_picker("Base model", state.BASE_MODEL, include_tuned=False, allow_custom=True,
                                       key_suffix=".index")
    use_base = st.checkbox("Index with the base model", value=True, key="index.use_base")
    tuned_spec = widgets.tuned_picker("Tuned model")
    use_tuned = False
    if tuned_spec:
        use_tuned = st.checkbox("Index with the tuned model", value=True, key="index.use_tuned")
        forgetting_warning(tuned_spec)
    else:
        widgets.need_model("tuned model", "Index with the base model now; train a model to compare.")
with right:
    bundled = corpora.bundled_corpora()
    options = [c.key for c in bundled] + ["upload"]
    labels = {**{c.key: c.label for c in bundled}, "upload": "Upload a CSV"}
    choice = st.radio("Corpus", options, format_func=labels.get, key="index.corpus")
    corpus = None
    upload = None
    if choice == "upload":
        upload = widgets.uploaded_csv("Corpus CSV (one text per row, in a column you choose)", key="index.upload")
        if upload is not None:
            from semsim.data import DatasetError, preview_csv

            buffer = io.BytesIO(upload[1])
            buffer.name = upload[0]
            try:
                # Only the rows shown are parsed (a 40 MB upload read whole held its every cell as a Python
                # string); the whole file is checked when it is saved for a build.
                frame, lines = preview_csv(buffer, rows=10)
            except DatasetError as exc:
                widgets.show_error(f"This file cannot be indexed: {exc}", widgets.dataset_todo(exc))
            else:
                text_columns = list(frame.columns)
                guess = next((c for c in ("text", "title", "name", "label") if c in text_columns), text_columns[0])
                column = st.selectbox("Text column", text_columns, index=text_columns.index(guess),
                                      key="index.column")
                extras = st.multiselect("Keep these columns with each text (shown in results)",
                                        [c for c in text_columns if c != column], key="index.extras")
                st.dataframe(frame, hide_index=True, width="stretch", key="index.preview")
                st.caption(f"{lines:,} lines after the header (checked whole when you build)")
                corpus = corpora.Corpus("upload", upload[0], Path(upload[0]), column, tuple(extras))
    else:
        corpus = next(c for c in bundled if c.key == choice)

replace = st.checkbox("Replace indexes that already exist", key="index.replace")
dim = st.number_input("Dimensions to keep (0: all)", min_value=0, max_value=4096, value=0, step=64, key="index.dim",
                      help="Matryoshka: keep each vector's first N dimensions, re-normalised (--dim N). A model "
                           "trained with --matryoshka keeps most of its quality at a third of the size; the "
                           "Evaluate page shows quality against dimension. Searches cut queries to match.")
dim = int(dim) or None
models = [spec for spec, wanted in ((base_spec, use_base), (tuned_spec, use_tuned)) if spec and wanted]
if corpus is not None and models:
    targets = {spec: settings.indexes_dir() / catalog.index_name(spec, corpus.path.name, dim) for spec in models}
    st.caption("Will write: " + ", ".join(p.name for p in targets.values()))
    if st.button("Build", type="primary", key="index.build"):
        existing = [p.name for p in targets.values() if p.exists()]
        if existing and not replace:
            widgets.show_error(f"{', '.join(existing)} already exist.",
                               "tick 'Replace indexes that already exist', or search with them as they are.")
        else:
            path, column, extras = corpus.path, corpus.column, corpus.extra_columns
            started = 0
            try:
                if upload is not None:
                    path, _ = corpora.save_upload(*upload)
                for spec, target in targets.items():
                    encoder = resources.encoder(spec)
                    if dim and dim > encoder.dim:
                        raise ValueError(f"{catalog.describe_spec(spec)} gives {encoder.dim}-d vectors: "
                                         f"keep at most {encoder.dim} dimensions")
                    index_builds.start_build(target, spec, path, column, extras, overwrite=True, encoder=encoder,
                                             dim=dim)
                    started += 1
            except ValueError as exc:  # EncoderError, DatasetError
                widgets.show_error(exc, "check the model spec and the file, then build again.")
            if started:
                st.rerun()

# -- existing -------------------------------------------------------------------------------------
st.subheader("Indexes")
found = catalog.indexes()
if not found:
    st.caption(f"No indexes in {e(settings.indexes_dir())} yet.")
    st.stop()
table = pd.DataFrame([{"index": e.name, "model": catalog.describe_spec(e.spec or "?"), "corpus": e.corpus,
                       "column": e.column or "", "texts": e.count, "kind": e.kind,
                       "dim": f"{e.dim} of {e.truncated_from}" if e.truncated_from else str(e.dim), "created": e.created or "",
                       "problem": e.error or ""} for e in found])
st.dataframe(table, hide_index=True, width="stretch", key="index.table")
name = st.selectbox("Index", [e.name for e in found], key="index.selected")
entry = next(e for e in found if e.name == name)
left, right = st.columns(2)
with left:
    if st.button("Rebuild", key="index.rebuild", help="Embed the same corpus again with the same model."):
        try:
            if entry.error or not entry.spec or not entry.source:
                raise ValueError(f"{entry.name} does not record its model and corpus; delete it and build it again")
            if not Path(entry.source).is_file():
                raise ValueError(f"the corpus {entry.source} is no longer there; build a new index instead")
            from semsim.encoders import is_known_model

            # An index folder names its model; only models this installation knows are loaded for that.
            known = [settings.default_model(), *state.get(state.CUSTOM_SPECS, [])]
            if not is_known_model(entry.spec) and entry.spec not in known:
                raise ValueError(f"{entry.name} was built with {entry.spec}, which is not a bundled or tuned "
                                 f"model here; choose it as the base model ('Other') first if you trust it")
            encoder = resources.encoder(entry.spec)
            index_builds.start_build(entry.path, entry.spec, entry.source, entry.column or "text",
                                     entry.extra_columns, overwrite=True, encoder=encoder,
                                     dim=entry.dim if entry.truncated_from else None)
        except ValueError as exc:
            widgets.show_error(exc)
        else:
            st.rerun()
with right:
    sure = st.checkbox(f"Yes, delete {e(name)}", key=f"index.sure.{name}")
    if st.button("Delete", key="index.delete", disabled=not sure):
        try:
            catalog.delete_index(name)
        except ValueError as exc:
            widgets.show_error(exc)
        else:
            st.toast(f"Deleted {e(name)}.")
            st.rerun()
