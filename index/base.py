"""The VectorIndex interface: cosine search over unit vectors keyed by unique int64 ids."""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from index.errors import VectorIndexError


@dataclass
class RemoveResult:
    """What `remove` did: how many went, which ids were not there, whether the index was rebuilt."""

    removed: int
    missing: list[int] = field(default_factory=list)
    rebuilt: bool = False
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "missing": self.missing, "rebuilt": self.rebuilt,
                "message": self.message}


def l2_normalize(vectors: Any) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32; a zero row stays zero (score 0 against everything, not NaN)."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return array / np.maximum(norms, 1e-12)


def prepare_vectors(vectors: Any, dim: int, what: str = "vectors") -> np.ndarray:
    """A C-contiguous float32 (n, dim) copy with unit rows; a 1-D input is one row.

    Callers are meant to pass normalised vectors already; normalising again here is cheap and keeps
    inner product equal to cosine even when they do not.
    """
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise VectorIndexError(f"{what} must be a 1-D vector or a 2-D (n, dim) array, got shape {array.shape}")
    if array.shape[1] != dim:
        raise VectorIndexError(f"dimension mismatch: the index holds {dim}-d vectors, {what} are "
                               f"{array.shape[1]}-d (was the index built with another model?)")
    if not np.isfinite(array).all():
        raise VectorIndexError(f"{what} contain NaN or infinite values")
    return np.ascontiguousarray(l2_normalize(array))


def prepare_ids(ids: Any, count: int | None = None) -> np.ndarray:
    """int64 ids as a 1-D array, checked for length, integrality and duplicates within the call."""
    array = np.asarray(ids)
    if array.ndim == 0:
        array = array[None]
    if array.ndim != 1:
        raise VectorIndexError(f"ids must be a 1-D sequence of integers, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0):
            array = array.astype(np.int64)
        else:
            raise VectorIndexError(f"ids must be integers, got {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if count is not None and len(array) != count:
        raise VectorIndexError(f"got {count} vectors but {len(array)} ids")
    if len(np.unique(array)) != len(array):
        values, counts = np.unique(array, return_counts=True)
        raise VectorIndexError(f"duplicate ids in one call: {values[counts > 1][:10].tolist()}")
    return array


class IdRegistry:
    """The set of ids present, stored as int64 arrays (not a Python set: 8 bytes per id at 1M rows).

    Appends with ids above the current maximum (the usual case: sequential ids) are checked in O(batch);
    anything else falls back to a sorted membership test.
    """

    def __init__(self, ids: np.ndarray | None = None):
        self._chunks: list[np.ndarray] = []
        self._count = 0
        self._max = -(2**63)
        if ids is not None and len(ids):
            self.extend(np.asarray(ids, dtype=np.int64))

    def __len__(self) -> int:
        return self._count

    def array(self) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.empty(0, dtype=np.int64)

    def present(self, ids: np.ndarray) -> np.ndarray:
        """Boolean mask: which of `ids` are already registered."""
        if not self._count or not len(ids):
            return np.zeros(len(ids), dtype=bool)
        if ids.min() > self._max:
            return np.zeros(len(ids), dtype=bool)
        return np.isin(ids, self.array())

    def extend(self, ids: np.ndarray) -> None:
        if len(ids):
            self._chunks.append(ids.copy())
            self._count += len(ids)
            self._max = max(self._max, int(ids.max()))

    def discard(self, ids: np.ndarray) -> None:
        kept = self.array()[~np.isin(self.array(), ids)]
        self._chunks = [kept] if len(kept) else []
        self._count = len(kept)
        self._max = int(kept.max()) if len(kept) else -(2**63)


class VectorIndex(abc.ABC):
    """Cosine similarity search (inner product on L2-normalised float32 vectors) keyed by int64 ids.

    Every kind behaves the same from outside:
      * `add(vectors, ids)` refuses an id already present (VectorIndexError);
      * `search(queries, k)` returns (scores, ids) of shape (n_queries, min(k, len(index))), best first;
        never -1 ids or padding. Searching an empty index returns arrays of shape (n_queries, 0): a
        search over nothing finds nothing, it is not an error. A 1-D query is one query;
      * `remove(ids)` returns a RemoveResult; kinds with `rebuild_on_remove = True` (HNSW) cannot
        delete in place and rebuild from the vectors they keep.

    Persistence lives in index.storage (save_vector_index / load_vector_index, IndexStore), not here.
    """

    kind: ClassVar[str] = "abstract"
    #: True when removing ids rebuilds the whole structure (callers should say so to the user).
    rebuild_on_remove: ClassVar[bool] = False
    #: True when search returns the exact top-k.
    exact: ClassVar[bool] = False

    def __init__(self, dim: int):
        if not isinstance(dim, int | np.integer) or dim < 1:
            raise VectorIndexError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)
        self._ids = IdRegistry()
        # faiss structures are not safe to search while another thread adds or removes.
        self._lock = threading.RLock()
        self.chosen_reason = f"{self.kind} requested explicitly"
        # Why this index cannot change (opened memory-mapped: faiss aborts the process on a write to a
        # mapped structure, so the refusal must come first), or None.
        self.read_only: str | None = None

    # -- the public interface ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, dim={self.dim}, count={len(self)})"

    @property
    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """The parameters needed to rebuild an equivalent index (stored in meta.json)."""

    def ids(self) -> np.ndarray:
        """The ids present, in no particular order."""
        return self._ids.array().copy()

    def _check_writable(self) -> None:
        if self.read_only:
            raise VectorIndexError(f"this {self.kind} index is read-only: {self.read_only}")

    def add(self, vectors: Any, ids: Any) -> None:
        self._check_writable()
        vectors = prepare_vectors(vectors, self.dim)
        ids = prepare_ids(ids, len(vectors))
        with self._lock:
            already = self._ids.present(ids)
            if already.any():
                raise VectorIndexError(f"ids already in the index: {ids[already][:10].tolist()} "
                                       f"({int(already.sum())} in all); remove them first or use new ids")
            if len(ids):
                self._add(vectors, ids)
                self._ids.extend(ids)

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = prepare_vectors(queries, self.dim, "queries")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise VectorIndexError(f"k must be a positive integer, got {k!r}")
        with self._lock:
            k = min(int(k), len(self))
            if k == 0 or len(queries) == 0:
                return (np.empty((len(queries), k), dtype=np.float32),
                        np.empty((len(queries), k), dtype=np.int64))
            with single_threaded(len(queries) == 1):
                scores, ids = self._search(queries, k)
            # Approximate structures can come back short (an IVF probe that sees fewer than k
            # vectors, an HNSW walk that stops early); those rows are searched exhaustively.
            short = (ids < 0).any(axis=1)
            if short.any():
                scores[short], ids[short] = self._search_exhaustive(queries[short], k)
        return np.clip(scores, -1.0, 1.0), ids

    def remove(self, ids: Any) -> RemoveResult:
        self._check_writable()
        ids = prepare_ids(ids)
        with self._lock:
            present = self._ids.present(ids)
            missing = ids[~present].tolist()
            targets = ids[present]
            if not len(targets):
                return RemoveResult(0, missing)
            rebuilt = self._remove(targets)
            self._ids.discard(targets)
        label = self.kind if self.kind == self.describe().get("chosen", self.kind) else \
            f"{self.kind} ({self.describe()['chosen']})"
        message = (f"{label} cannot delete in place: rebuilt from the {len(self)} kept vectors"
                   if rebuilt else "")
        return RemoveResult(len(targets), missing, rebuilt, message)

    def describe(self) -> dict[str, Any]:
        """Kind, parameters, size and why this kind was chosen, for `index info` and logs."""
        return {"kind": self.kind, "params": self.params, "dim": self.dim, "count": len(self),
                "exact": self.exact, "rebuild_on_remove": self.rebuild_on_remove,
                "chosen_reason": self.chosen_reason, "memory": self.memory_bytes()}

    def memory_bytes(self) -> dict[str, int]:
        """Estimated bytes once loaded: `resident` in RAM, `mapped` read from disk on demand (refine vectors).

        Computed from the structure's sizes, not measured; bench/scale.py compares it with the process's
        anonymous memory after a load."""
        return {"resident": len(self) * (self.dim * 4 + 16), "mapped": 0}

    def expect(self, count: int) -> None:
        """Say how many vectors are coming (a build that knows its corpus size): kinds that train pick
        their sizes from it and train once a sample has arrived, instead of buffering everything."""
        return None

    @classmethod
    def extra_files(cls, info: dict[str, Any]) -> tuple[str, ...]:
        """Files besides index.faiss that an index described by `info` (meta.json's) is read from."""
        return ()

    def write_extra(self, folder: Any) -> list[str]:
        """Write the files besides index.faiss into `folder`; their names."""
        return []

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything in the index (decoded, so approximate for quantised kinds)."""
        with self._lock:
            return self._all_vectors()

    def flush(self) -> None:
        """Finish deferred work (training kinds buffer their first adds); a no-op for most kinds."""
        return None

    # -- what each kind provides -------------------------------------------------------------
    @abc.abstractmethod
    def _add(self, vectors: np.ndarray, ids: np.ndarray) -> None: ...

    @abc.abstractmethod
    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    @abc.abstractmethod
    def _remove(self, ids: np.ndarray) -> bool:
        """Remove ids known to be present; return True when the structure was rebuilt."""

    @abc.abstractmethod
    def _all_vectors(self) -> tuple[np.ndarray, np.ndarray]: ...

    @abc.abstractmethod
    def to_faiss(self) -> Any:
        """The faiss index to write to index.faiss."""

    @classmethod
    @abc.abstractmethod
    def from_faiss(cls, faiss_index: Any, info: dict[str, Any]) -> VectorIndex:
        """Rebuild from a faiss index read from disk and its `describe()` as stored in meta.json."""

    def _search_exhaustive(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over decoded vectors: the fallback when an approximate search came back short."""
        ids, vectors = self._all_vectors()
        return exact_search(vectors, ids, queries, k)


@contextlib.contextmanager
def single_threaded(enabled: bool = True) -> Iterator[None]:
    """Run faiss on the calling thread only, for one query.

    Starting OpenMP threads costs more than a single query saves, and on a busy machine far more
    (a flat search over 7k x 384 took 14 ms p50 with 2 threads against 1 ms with 1, on a loaded
    2-core box). OpenMP's thread count is per calling thread, so concurrent batch searches in other
    threads keep theirs.
    """
    if not enabled:
        yield
        return
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def exact_search(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k by inner product with NumPy: (scores, ids[positions]), best first.

    k must be <= len(vectors). The one exact top-k of the package: the numpy kind, the exhaustive
    fallback of the approximate kinds and the test oracle (index.datasets.exact_neighbors) all use it.
    """
    scores = np.empty((len(queries), k), dtype=np.float32)
    found = np.empty((len(queries), k), dtype=np.int64)
    # Bound the (block, n) similarity matrix to about 256 MB.
    block = max(1, 64_000_000 // max(1, len(vectors)))
    for start in range(0, len(queries), block):
        sims = queries[start:start + block] @ vectors.T
        if k < sims.shape[1]:
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        top_scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        scores[start:start + block] = np.take_along_axis(top_scores, order, axis=1)
        found[start:start + block] = ids[np.take_along_axis(top, order, axis=1)]
    return scores, found
