"""Cached models, classifiers, indexes, small embeddings and measurements (one load per server process).

Folder models are keyed by their path *and* the time their semsim.json was written, so a model
retrained in place is loaded again; bundled specs share the library's own cache (also used by the
background index builds).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from semsim_app import catalog, corpora, demo, measurements, settings
from semsim_ui.text import md_escape

PRECISION_KEY = "semsim_precision"  # the sidebar's precision selectbox (widgets.precision_picker)


def precision() -> str:
    """The inference precision chosen in the sidebar (SEMSIM_PRECISION until it is touched)."""
    return st.session_state.get(PRECISION_KEY) or settings.default_precision()


# Models are hundreds of MB each: a base, a tuned model and one more stay loaded (the library's own
# LRU, SEMSIM_MAX_MODELS, holds the bundled ones), not every model a long-running server ever loaded.
@st.cache_resource(show_spinner=False, max_entries=3)
def _encoder(spec: str, stamp: float | None, precision: str = "float32") -> Any:
    from semsim.encoders.serving import load_for_inference

    # ONNX Runtime where it covers the model (no TensorFlow in the server), else Keras: a folder loaded
    # fresh (the stamp keys our cache), other specs from the library's shared cache.
    encoder = load_for_inference(spec, precision, cache=stamp is None)
    # Trace the inference graph now rather than on the first query: one text, then a batch of another
    # length, after which the relaxed graph serves every shape.
    encoder.encode(["warm up"])
    encoder.encode(["warm up the model", "with a second and somewhat longer sentence of text"])
    return encoder


def encoder(spec: str) -> Any:
    """The encoder for `spec` (raises semsim.encoders.EncoderError with a user-facing message)."""
    chosen = precision()
    note = " (int8: the first use of a model quantizes and calibrates it, about a minute)" if chosen == "int8" else ""
    with st.spinner(f"Loading model {catalog.describe_spec(spec)} at {chosen}{note} …"):
        return _encoder(spec, catalog.model_stamp(spec), chosen)


@st.cache_resource(show_spinner=False, max_entries=2)  # the Sentiment page's frozen and fine-tuned pair
def _classifier(folder: str, stamp: float | None) -> Any:
    from semsim.classifier import load_classifier

    return load_classifier(folder)


def classifier(folder: str) -> Any:
    with st.spinner(f"Loading classifier {Path(folder).name} …"):
        return _classifier(folder, catalog.model_stamp(folder))


def index(index_dir: str, expected_encoder: Any = None) -> Any:
    """An index store, refused (VectorIndexError) if `expected_encoder` did not build it.

    Why no st.cache_resource here: semsim.search.load_index already keeps a bounded LRU of open
    indexes by resolved path and reopens one whose folder now holds another version (is_stale), so a
    second cache would only keep replaced versions alive in memory.
    """
    from semsim.search import load_index, precision_note

    store = load_index(index_dir, expected_encoder=expected_encoder)
    note = precision_note(store, expected_encoder) if expected_encoder is not None else None
    if note:  # a warning, not a refusal: the vectors are comparable
        st.warning(note.replace("use --precision", "choose").replace(") to match", ") in the sidebar to match"),
                   icon=":material/tune:")
    return store


@st.cache_data(show_spinner=False, max_entries=64)
def _embeddings(spec: str, stamp: float | None, texts: tuple[str, ...]) -> np.ndarray:
    return _encoder(spec, stamp).encode(list(texts))


def embeddings(spec: str, texts: Sequence[str]) -> np.ndarray:
    """L2-normalised embeddings of a short list of texts, cached per (model, texts)."""
    with st.spinner(f"Embedding {len(texts)} texts with {catalog.describe_spec(spec)} …"):
        encoder(spec)  # loads with a spinner of its own, and raises EncoderError before caching data
        return _embeddings(spec, catalog.model_stamp(spec), tuple(texts))


@st.cache_resource(show_spinner=False)
def device() -> dict[str, Any]:
    from semsim.device import describe_device_apart

    return describe_device_apart()  # asked in a child process: the server need not load TensorFlow for it


@st.cache_data(show_spinner=False, max_entries=32)
def _predictions(folder: str, stamp: float | None, texts: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    return _classifier(folder, stamp).predict(list(texts))


def predictions(folder: str, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(labels, probabilities) of a classifier folder for texts, cached per (classifier, texts)."""
    classifier(folder)
    with st.spinner(f"Classifying {len(texts):,} texts with {Path(folder).name} …"):
        return _predictions(folder, catalog.model_stamp(folder), tuple(texts))


@st.cache_resource(show_spinner=False, max_entries=4)
def _pair_model(folder: str, stamp: float | None) -> Any:
    from semsim.pair_classifier import load_pair_classifier

    return load_pair_classifier(folder)


def pair_model(folder: str) -> Any:
    """A pair classifier (cross-encoder or bi-encoder + head) folder; EncoderError when it cannot be loaded."""
    with st.spinner(f"Loading pair model {Path(folder).name} …"):
        return _pair_model(folder, catalog.model_stamp(folder))


@st.cache_data(show_spinner=False, max_entries=32)
def _pair_predictions(folder: str, stamp: float | None, pairs: tuple[tuple[str, str], ...]) -> tuple[list[str], np.ndarray]:
    model = _pair_model(folder, stamp)
    return model.predict([a for a, _ in pairs], [b for _, b in pairs])


def pair_predictions(folder: str, pairs: Sequence[tuple[str, str]]) -> tuple[list[str], np.ndarray]:
    """(labels, probabilities), or (scores as text, scores) for a regression head, cached per (model, pairs)."""
    pair_model(folder)
    with st.spinner(f"Scoring {len(pairs):,} pairs with {Path(folder).name} …"):
        return _pair_predictions(folder, catalog.model_stamp(folder), tuple(pairs))


# -- the Evaluate page's measurements (semsim_app.measurements), keyed like the models they use -----------
# Per-item scores are cached per model; the paired bootstrap that compares two models runs on them anew.
@st.cache_data(show_spinner=False, max_entries=64)
def _pair_items(spec: str, stamp: float | None, dataset: str, rows: int | None) -> dict[str, Any]:
    return measurements.pair_items(_encoder(spec, stamp), dataset, rows)


def pair_items(spec: str, dataset: str, rows: int | None) -> dict[str, Any]:
    return _pair_items(spec, catalog.model_stamp(spec), dataset, rows)


@st.cache_data(show_spinner=False, max_entries=32)
def _retrieval_items(spec: str, stamp: float | None, queries: int | None, corpus: int | None) -> dict[str, Any]:
    return measurements.retrieval_items(_encoder(spec, stamp), queries, corpus)


def retrieval_items(spec: str, queries: int | None, corpus: int | None) -> dict[str, Any]:
    return _retrieval_items(spec, catalog.model_stamp(spec), queries, corpus)


@st.cache_data(show_spinner=False, max_entries=32)
def _classification_items(folder: str, stamp: float | None, rows: int | None) -> dict[str, Any]:
    return measurements.classification_items(_classifier(folder, stamp), rows)


def classification_items(folder: str, rows: int | None) -> dict[str, Any]:
    return _classification_items(folder, catalog.model_stamp(folder), rows)


# -- corpora: samples for maps and for the relative view's reference pairs --------------------------
def _file_stamp(path: Path) -> tuple[int, int]:
    try:
        stat = Path(path).stat()
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)


@st.cache_data(show_spinner=False, max_entries=16)
def _corpus_sample(path: str, stamp: tuple[int, int], column: str, rows: int) -> Any:
    return corpora.sample_texts(Path(path), column, rows)


def corpus_sample(corpus: corpora.Corpus, rows: int) -> Any:
    """A seeded sample of a corpus's distinct texts (`text` first, its other columns kept), cached per file
    version (raises DatasetError)."""
    return _corpus_sample(str(corpus.path), _file_stamp(corpus.path), corpus.column, rows)


@st.cache_data(show_spinner=False, max_entries=32)
def _reference(spec: str, stamp: float | None, path: str, file_stamp: tuple[int, int], column: str,
               rows: int) -> np.ndarray:
    from semsim.embedding_compare import reference_similarities

    texts = _corpus_sample(path, file_stamp, column, rows)["text"].tolist()
    return reference_similarities(_encoder(spec, stamp).encode(texts))


def reference_similarities(spec: str, corpus: corpora.Corpus, rows: int = settings.REFERENCE_TEXTS) -> np.ndarray:
    """The model's cosines of random pairs of a reference corpus, sorted: the scale of its relative view."""
    with st.spinner(f"Reading {md_escape(catalog.describe_spec(spec))}'s scale on {md_escape(corpus.path.name)} …"):
        encoder(spec)
        return _reference(spec, catalog.model_stamp(spec), str(corpus.path), _file_stamp(corpus.path),
                          corpus.column, rows)


# -- the Home page's demo ---------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=4, ttl=3600)
def _demo_plan(on_gpu: bool, base: str, models_dir: str) -> demo.PlanSummary:
    return demo.summarize(demo.plan(on_gpu))


def demo_plan(on_gpu: bool) -> demo.PlanSummary:
    """The demo's plan, summarised for its estimate (planning loads the training data: once an hour)."""
    return _demo_plan(on_gpu, settings.default_model(), str(settings.models_dir()))
