"""Matryoshka dimensions: embeddings cut to their first N dimensions and re-normalised, and quality by dimension.

A model trained with `--matryoshka 384,256,128,64` (semsim.training.matryoshka) keeps most of its
quality in a prefix of each vector, so an index of the first 128 dimensions is a third the size and
searches three times as fast. Any model can be cut; an untrained one just loses more. This module
imports no Keras: the CLI, the app and Ray workers use it on plain arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class DimensionError(ValueError):
    """A dimension that does not fit the model or the index; the message says which fits."""


def parse_dims(value: str | Sequence[int] | None) -> tuple[int, ...]:
    """"384,256,128,64" (or a list) -> (384, 256, 128, 64): positive, distinct, largest first."""
    if value is None or value == "" or value == ():
        return ()
    parts = value.replace(" ", "").split(",") if isinstance(value, str) else list(value)
    try:
        dims = [int(p) for p in parts if p != ""]
    except (TypeError, ValueError):
        raise DimensionError(f"dimensions are comma-separated whole numbers such as 384,256,128,64, not {value!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise DimensionError(f"dimensions must be positive whole numbers, got {value!r}")
    if len(set(dims)) != len(dims):
        raise DimensionError(f"each dimension once, please: {value!r}")
    return tuple(sorted(dims, reverse=True))


def check_dim(dim: int | None, full: int, what: str = "the model") -> int | None:
    """`dim` if it can cut a `full`-d vector (None or `full` itself: no cut), else DimensionError."""
    if dim is None:
        return None
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or not 1 <= dim <= full:
        raise DimensionError(f"--dim must be between 1 and {full} ({what} gives {full}-d vectors), got {dim!r}")
    return None if int(dim) == full else int(dim)


def truncate(vectors: Any, dim: int) -> np.ndarray:
    """The first `dim` dimensions of each row, re-normalised to unit length (a zero row stays zero)."""
    array = np.asarray(vectors, dtype=np.float32)
    if dim > array.shape[-1]:
        raise DimensionError(f"cannot cut {array.shape[-1]}-d vectors to {dim}")
    cut = np.ascontiguousarray(array[..., :dim])
    return cut / np.maximum(np.linalg.norm(cut, axis=-1, keepdims=True), 1e-12)


class TruncatedEncoder:
    """An encoder whose vectors are cut to `dim` and re-normalised; the same model otherwise.

    It keeps the wrapped model's spec and fingerprint and says `truncated_from`, so an index built
    with it records both its dimension and how queries must be cut to match it."""

    def __init__(self, encoder: Any, dim: int):
        full = int(encoder.dim)
        if check_dim(dim, full) is None:
            raise DimensionError(f"{dim} is the model's own dimension: nothing to cut")
        self.inner = encoder
        self.dim = int(dim)
        self.truncated_from = full

    def __getattr__(self, name: str) -> Any:  # spec, name, fingerprint, ... of the wrapped model
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"TruncatedEncoder({self.inner!r}, dim={self.dim})"

    def encode(self, texts: Any, batch_size: int = 64, progress: Any = None) -> np.ndarray:
        return truncate(self.inner.encode(texts, batch_size=batch_size, progress=progress), self.dim)

    def similarity(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None) -> np.ndarray:
        a = self.encode(texts_a)
        b = a if texts_b is None else self.encode(texts_b)
        return np.clip(a @ b.T, -1.0, 1.0)


def with_dim(encoder: Any, dim: int | None) -> Any:
    """`encoder` cut to `dim` (None or the model's own dimension: the encoder itself)."""
    dim = check_dim(dim, int(encoder.dim))
    return encoder if dim is None else TruncatedEncoder(encoder, dim)


def for_index(encoder: Any, index_encoder: dict[str, Any] | None, index_dim: int, dim: int | None = None) -> Any:
    """The encoder cut as the index was built (its meta.json's encoder records `truncated_from`).

    An explicit `dim` that differs from the index's dimension is refused: the vectors would not match."""
    if dim is not None and dim != index_dim:
        raise DimensionError(f"the index holds {index_dim}-d vectors; --dim {dim} does not match it "
                             f"(leave --dim out: queries are cut to the index's dimension)")
    full = int(encoder.dim)
    if index_dim < full and (index_encoder or {}).get("truncated_from") == full:
        return TruncatedEncoder(encoder, index_dim)
    return encoder


class _Memo:
    """Encodes each distinct text once at full dimension, so evaluating several cuts costs one pass."""

    def __init__(self, encoder: Any):
        self.inner, self.dim = encoder, int(encoder.dim)
        self.spec, self.name = getattr(encoder, "spec", None), getattr(encoder, "name", None)
        self.fingerprint = getattr(encoder, "fingerprint", None)
        self._vectors: dict[str, np.ndarray] = {}

    def encode(self, texts: Any, batch_size: int = 64, progress: Any = None) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        new = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if new:
            for text, vector in zip(new, self.inner.encode(new, batch_size=batch_size, progress=progress),
                                    strict=True):
                self._vectors[text] = vector
        return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def quality_by_dimension(encoder: Any, dims: Sequence[int], sts: Any = None, retrieval: Any = None,
                         sts_rows: int | None = None, seed: int = 42) -> list[dict[str, Any]]:
    """STS-B test Spearman (x100) and ESCO occupation retrieval nDCG@10 with vectors cut to each of `dims`.

    Every text is embedded once at full size and cut for each dimension. `sts` / `retrieval` default to
    the bundled STS-B test pairs and ESCO queries (a seeded sample of `sts_rows` pairs and as many
    queries when given, for a quick look in the app)."""
    from semsim import data
    from semsim.evaluation import PairSimilarityEvaluator, RetrievalEvaluator

    if sts is None:
        sts = data.load_sts("test")
    if retrieval is None:
        queries, corpus = data.load_bundled("esco-retrieval")
        retrieval = (queries, corpus)
    queries, corpus = retrieval
    if sts_rows:
        sts = sts.sample(min(sts_rows, len(sts)), random_state=seed) if len(sts) > sts_rows else sts
        queries = queries.sample(min(sts_rows, len(queries)), random_state=seed) if len(queries) > sts_rows else queries
    pairs = PairSimilarityEvaluator.from_frame(sts, name="sts-b test")
    search = RetrievalEvaluator(queries, corpus, name="esco")
    memo = _Memo(encoder)
    full = int(encoder.dim)
    rows = []
    for dim in sorted({min(int(d), full) for d in dims}, reverse=True):
        cut = memo if dim == full else TruncatedEncoder(memo, dim)
        similarity, ranked = pairs(cut), search(cut)
        rows.append({"dim": dim, "sts_spearman": similarity["spearman_x100"], "esco_ndcg@10": round(ranked["ndcg@10"], 4),
                     "esco_recall@10": round(ranked.get("recall@10", float("nan")), 4),
                     "sts_pairs": similarity["n_pairs"], "esco_queries": ranked["n_queries"]})
    return rows
