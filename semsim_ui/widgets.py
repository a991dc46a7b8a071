"""Page scaffolding and input widgets shared by the pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from semsim_app import catalog, corpora, settings
from semsim_ui import runtime, state
from semsim_ui.text import md_escape

# key -> (page file, title, icon, url path); the Home page is a function in app.py. The page files live
# in app_pages/, not pages/: Streamlit treats a pages/ folder as the legacy multipage app, which
# st.navigation replaces.
PAGES = {
    "home": ("app.py", "Home", ":material/home:", ""),
    "train": ("app_pages/train.py", "Train / load a model", ":material/model_training:", "train"),
    "index": ("app_pages/index.py", "Build indexes", ":material/database:", "index"),
    "search": ("app_pages/search.py", "Search: base vs tuned", ":material/search:", "search"),
    "similarity": ("app_pages/similarity.py", "Similarity matrix", ":material/grid_on:", "similarity"),
    "sentiment": ("app_pages/sentiment.py", "Sentiment", ":material/reviews:", "sentiment"),
    "pairs": ("app_pages/pairs.py", "Pairs: cross- vs bi-encoder", ":material/compare_arrows:", "pairs"),
    "evaluate": ("app_pages/evaluate.py", "Evaluate", ":material/analytics:", "evaluate"),
}
CUSTOM = "__custom__"


def page_setup(page: str, intro: str | None = None, *, device: bool = False) -> None:
    """Everything a page does before its content: tab title, icon and layout (from PAGES), the workspace
    settings, the Keras-friendly runtime, the heading and intro; with device=True, whether a GPU is in use."""
    _, title, icon, _ = PAGES[page]
    title = "semsim" if page == "home" else title
    st.set_page_config(page_title=f"{title} · semsim", page_icon=icon, layout="wide")
    settings.apply_environment()
    runtime.keep_keras_session()
    st.title(f"{icon} {title}")
    if intro:
        st.caption(intro)
    if device:
        device_caption()


_home: Any = None


def navigation(home: Any) -> Any:
    """The app's pages (Home is the function `home` of app.py); call `.run()` on the result."""
    global _home
    _home = st.Page(home, title="Home", icon=PAGES["home"][2], default=True)
    pages = [_home] + [st.Page(path, title=title, icon=icon, url_path=url)
                       for key, (path, title, icon, url) in PAGES.items() if key != "home"]
    return st.navigation(pages)


def page_link(page: str, label: str | None = None) -> None:
    """A link to another page (by key in PAGES); plain text where the page is not registered."""
    path, default_label, icon, _ = PAGES[page]
    target = _home if page == "home" and _home is not None else path
    try:
        st.page_link(target, label=label or default_label, icon=icon)
    except StreamlitAPIException:  # the script runs outside its multipage app (e.g. a bare AppTest)
        st.markdown(f"{icon} {md_escape(label or default_label)} (see the sidebar)")


def need_model(what: str, hint: str = "Train one, or load an existing model folder, on the Train page.") -> None:
    """Say that a page needs a model that does not exist yet, and where to get one."""
    st.info(f"No {what} yet. {hint}")
    page_link("train")


def show_error(exc: BaseException | str, todo: str | None = None) -> None:
    """An st.error with what is wrong (escaped: it may quote file names) and what to do about it."""
    message = md_escape(exc)
    st.error(message + (f"\n\n**What to do:** {todo}" if todo else ""), icon=":material/error:")


def dataset_todo(exc: Exception) -> str:
    """A hint for a semsim.data.DatasetError, from its reason."""
    reason = str(getattr(exc, "reason", exc)).lower()
    if "utf-8" in reason:
        return "open the file in a spreadsheet or text editor and save it as 'CSV UTF-8', then upload it again."
    if "missing column" in reason:
        return "rename the header of the right column (first row of the file) and upload it again."
    if "empty" in reason or "no data rows" in reason:
        return "upload a file with a header row and at least one row of data."
    if "parsed" in reason or "quote" in reason:
        return "put texts that contain commas in double quotes (spreadsheets do this when saving as CSV)."
    return "fix the row and column named above in the file, then upload it again."


def uploaded_csv(label: str, key: str, help: str | None = None,
                 types: tuple[str, ...] = ("csv", "tsv", "txt")) -> tuple[str, bytes] | None:
    """A CSV upload within the size limit -> (file name, bytes), or None (an error is shown if too big).
    `types`: the file name endings offered (the Pairs page also takes SNLI's .jsonl)."""
    upload = st.file_uploader(label, type=list(types), key=key, help=help)
    if upload is None:
        return None
    data = upload.getvalue()
    limit = settings.max_upload_bytes()
    if len(data) > limit:
        show_error(f"{upload.name} is {len(data) / 1e6:.1f} MB, over the {limit / 1e6:.0f} MB limit.",
                   "upload a smaller file (a sample of the rows), or split it.")
        return None
    return upload.name, data


UPLOAD = "upload"


def corpus_picker(label: str, key: str, default: str = "job-titles", help: str | None = None) -> corpora.Corpus | None:
    """A bundled corpus, or an uploaded CSV (validated, kept under the workspace) with its text column chosen.
    None until an upload has been checked (errors are shown)."""
    bundled = corpora.bundled_corpora()
    options = [c.key for c in bundled] + [UPLOAD]
    labels = {**{c.key: c.label for c in bundled}, UPLOAD: "Upload a CSV …"}
    choice = st.selectbox(label, options, format_func=labels.get, key=f"{key}.choice", help=help,
                          index=options.index(default) if default in options else 0)
    if choice != UPLOAD:
        return next(c for c in bundled if c.key == choice)
    upload = uploaded_csv("Corpus CSV (one text per row)", key=f"{key}.upload")
    if upload is None:
        return None
    import hashlib

    from semsim.data import DatasetError

    digest = hashlib.sha256(upload[1]).hexdigest()
    saved = state.get(f"semsim.{key}.saved")
    if not saved or saved[0] != digest or not Path(saved[1]).is_file():
        # Saved once per upload: rewriting it on every rerun would change the file's stamp, and with it
        # every cached sample and embedding of it.
        try:
            path, frame = corpora.save_upload(*upload)
        except DatasetError as exc:
            show_error(f"This file cannot be used: {exc}", dataset_todo(exc))
            return None
        saved = (digest, str(path), list(frame.columns))
        state.put(f"semsim.{key}.saved", saved)
    _, path, columns = saved
    guess = next((c for c in ("text", "title", "name", "label") if c in columns), columns[0])
    column = st.selectbox("Text column", columns, index=columns.index(guess), key=f"{key}.column")
    return corpora.Corpus(UPLOAD, upload[0], Path(path), column, tuple(c for c in columns if c != column))


def _spec_label(spec: str, entries: dict[str, catalog.ModelEntry]) -> str:
    if spec == CUSTOM:
        return "Other: type a TF Hub handle, KerasHub preset or folder …"
    entry = entries.get(spec)
    return entry.label if entry else spec


def encoder_picker(label: str, state_key: str, *, include_tuned: bool = True, allow_custom: bool = False,
                   default: str | None = None, container: Any = None, key_suffix: str = "") -> str | None:
    """Choose an encoder spec: bundled, tuned folders, specs used earlier; optionally type another."""
    box = container or st
    entries = [e for e in catalog.encoder_choices(state.get(state.CUSTOM_SPECS, []))
               if include_tuned or e.kind != "tuned"]
    by_spec = {e.spec: e for e in entries}
    options = [e.spec for e in entries] + ([CUSTOM] if allow_custom else [])
    chosen = state.choose(label, options, state_key, default=default or settings.default_model(),
                          format_func=lambda s: _spec_label(s, by_spec), container=box,
                          widget_key=f"widget.{state_key}{key_suffix}")
    if chosen != CUSTOM:
        return chosen
    typed = box.text_input("Model spec", key=f"widget.{state_key}.custom{key_suffix}",
                           placeholder="tfhub:https://tfhub.dev/…  ·  keras-hub:bert_base_en@cls  ·  /path/to/folder",
                           help="tfhub:<handle-or-path>, keras-hub:<preset-or-folder>[@cls|@mean], or a model "
                                "folder (tuned model, Hugging Face folder or TF SavedModel).").strip()
    return typed or None


def tuned_picker(label: str = "Tuned model", container: Any = None) -> str | None:
    """Choose a tuned encoder: folders in the models directory (newest first), then ones loaded from
    elsewhere in this session. None when there is none."""
    entries = catalog.tuned_models()
    for spec in state.get(state.CUSTOM_SPECS, []):
        entry = catalog.model_entry(Path(spec)) if Path(spec).is_absolute() else None
        if entry is not None and entry.kind == "tuned" and entry.spec not in {e.spec for e in entries}:
            entries.append(entry)
    if not entries:
        return None
    labels = {e.spec: e.label for e in entries}
    return state.choose(label, [e.spec for e in entries], state.TUNED_MODEL, default=entries[0].spec,
                        format_func=lambda s: labels.get(s, s), container=container)


def classifier_picker(label: str, mode: str, state_key: str, container: Any = None) -> str | None:
    entries = catalog.classifiers(mode)
    if not entries:
        return None
    labels = {e.spec: e.label for e in entries}
    return state.choose(label, [e.spec for e in entries], state_key, format_func=lambda s: labels.get(s, s),
                        container=container)


def model_pickers() -> tuple[str | None, str | None]:
    """The "Models" block of a sidebar: a base encoder (bundled or typed) and a tuned one (None if none)."""
    st.header("Models")
    base = encoder_picker("Base model", state.BASE_MODEL, include_tuned=False, allow_custom=True)
    tuned = tuned_picker("Tuned model")
    precision_picker()
    return base, tuned


def precision_picker() -> str:
    """What the encoders compute in (semsim.encoders.precision); the vectors stay float32."""
    from semsim.encoders.precision import PRECISION_CHOICES
    from semsim_app import settings
    from semsim_ui.resources import PRECISION_KEY

    if PRECISION_KEY not in st.session_state:
        st.session_state[PRECISION_KEY] = settings.default_precision()
    return st.selectbox("Precision", PRECISION_CHOICES, key=PRECISION_KEY,
                        help="float32: exact. int8: ONNX Runtime, BERT-family models, fastest on a CPU (STS-B "
                             "within about 0.3 points; the model is quantized once and cached). bfloat16: fast "
                             "only on CPUs with AVX512-BF16 or AMX. auto: bfloat16 where the CPU has it and a "
                             "quick STS-B check passes, else float32.")


def classifier_pickers() -> tuple[str | None, str | None]:
    """The "Classifiers" block of a sidebar: (frozen-encoder classifier, fine-tuned classifier), None if none."""
    st.header("Classifiers")
    frozen = classifier_picker("Frozen-encoder classifier", "frozen", state.FROZEN_CLASSIFIER)
    return frozen, classifier_picker("Fine-tuned classifier", "full", state.TUNED_CLASSIFIER)


def texts_from_area(value: str, limit: int) -> list[str]:
    """Non-empty stripped lines, without repeats, at most `limit`."""
    texts = list(dict.fromkeys(line.strip() for line in value.splitlines() if line.strip()))
    return texts[:limit]


def device_caption() -> None:
    from semsim_ui import resources

    info = resources.device()
    if info.get("gpu"):
        st.success(f"GPU in use: {info['device']} ({info['backend']} backend).", icon=":material/bolt:")
    else:
        st.info(f"No GPU: running on CPU ({info.get('cpu_count') or '?'} cores, {info['backend']} backend). "
                f"Fine-tuning is slow here: keep epochs and 'max steps per epoch' small.", icon=":material/memory:")
