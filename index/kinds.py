"""The index kinds (numpy, flat, hnsw, ivf, their sq8 variants, auto) and the factory that makes them."""

from __future__ import annotations

import math
from typing import Any

import faiss
import numpy as np

from index.base import IdRegistry, VectorIndex, exact_search
from index.errors import VectorIndexError
from index.names import KIND_NAMES

# Exact search is fast enough below this many vectors (a 384-d flat scan of 50k rows takes a few
# milliseconds); above it `auto` switches to an approximate kind.
AUTO_THRESHOLD = 50_000

# HNSW defaults. M=32 links per node is the usual sweet spot for 256-768-d embeddings (M=16 loses
# recall as the graph grows, M=64 doubles the link memory for little gain). With efConstruction=80,
# efSearch=128 measured recall@10 0.983 at 100k x 384 clustered vectors (efSearch=64: 0.960; see
# bench/index.py); HNSW typically loses a point or two from 100k to 1M at a fixed efSearch, which
# 128 leaves room for. efConstruction costs build time linearly, efSearch costs query time linearly.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128

# IVF: k-means iterations and training points per list (faiss warns under 39). Training dominates
# the build and costs points x lists x dim x iterations (~5 TFLOP at 1M x 384 with 4,000 lists), so
# it uses fewer iterations than faiss's 25: the lists only need to be a rough partition, since
# nprobe visits many of them and distances inside a list are exact.
IVF_TRAIN_ITERATIONS = 10
IVF_TRAIN_POINTS_PER_LIST = 40


def _ids_of(id_map: Any) -> np.ndarray:
    return faiss.vector_to_array(id_map).astype(np.int64)


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low or (
            high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise VectorIndexError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def _check_metric(faiss_index: Any, kind: str) -> None:
    if faiss_index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise VectorIndexError(f"index.faiss holds a {kind} index with metric {faiss_index.metric_type}, "
                               f"expected inner product")


class NumpyIndex(VectorIndex):
    """Brute-force search with NumPy: the oracle the other kinds are tested against, and a full backend."""

    kind = "numpy"
    exact = True

    def __init__(self, dim: int):
        super().__init__(dim)
        self._vectors = np.empty((0, self.dim), dtype=np.float32)
        self._row_ids = np.empty(0, dtype=np.int64)
        self._size = 0

    @property
    def params(self) -> dict[str, Any]:
        return {}

    def _add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        needed = self._size + len(vectors)
        if needed > len(self._vectors):  # grow geometrically so streaming adds stay linear overall
            capacity = max(needed, 2 * len(self._vectors), 1024)
            grown = np.empty((capacity, self.dim), dtype=np.float32)
            grown[:self._size] = self._vectors[:self._size]
            grown_ids = np.empty(capacity, dtype=np.int64)
            grown_ids[:self._size] = self._row_ids[:self._size]
            self._vectors, self._row_ids = grown, grown_ids
        self._vectors[self._size:needed] = vectors
        self._row_ids[self._size:needed] = ids
        self._size = needed

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return exact_search(self._vectors[:self._size], self._row_ids[:self._size], queries, k)

    def _remove(self, ids: np.ndarray) -> bool:
        keep = ~np.isin(self._row_ids[:self._size], ids)
        self._vectors = self._vectors[:self._size][keep].copy()
        self._row_ids = self._row_ids[:self._size][keep].copy()
        self._size = len(self._row_ids)
        return False

    def _all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        return self._row_ids[:self._size].copy(), self._vectors[:self._size].copy()

    def to_faiss(self) -> Any:
        # Stored as a flat faiss index so every folder has the same layout and faiss tools read it.
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        if self._size:
            index.add_with_ids(self._vectors[:self._size], self._row_ids[:self._size])
        return index

    @classmethod
    def from_faiss(cls, faiss_index: Any, info: dict[str, Any]) -> NumpyIndex:
        flat = FlatIndex.from_faiss(faiss_index, info)
        index = cls(faiss_index.d)
        ids, vectors = flat.vectors()
        if len(ids):
            index.add(vectors, ids)
        return index


class FlatIndex(VectorIndex):
    """Exact search: faiss IndexFlatIP wrapped in IndexIDMap2 (ids, in-place removal, reconstruction)."""

    kind = "flat"
    exact = True

    def __init__(self, dim: int):
        super().__init__(dim)
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    @property
    def params(self) -> dict[str, Any]:
        return {}

    def _add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self._index.add_with_ids(vectors, ids)

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self._index.search(queries, k)

    def _remove(self, ids: np.ndarray) -> bool:
        self._index.remove_ids(ids)
        return False

    def _all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        ids = _ids_of(self._index.id_map)
        vectors = self._index.index.reconstruct_n(0, len(ids)) if len(ids) else \
            np.empty((0, self.dim), dtype=np.float32)
        return ids, vectors

    def to_faiss(self) -> Any:
        return self._index

    @classmethod
    def from_faiss(cls, faiss_index: Any, info: dict[str, Any]) -> FlatIndex:
        if not isinstance(faiss_index, faiss.IndexIDMap2) or not isinstance(
                faiss.downcast_index(faiss_index.index), faiss.IndexFlat):
            raise VectorIndexError("index.faiss does not hold a flat index (IndexIDMap2 over IndexFlatIP)")
        _check_metric(faiss_index, "flat")
        index = cls(faiss_index.d)
        index._index = faiss_index
        index._ids = IdRegistry(_ids_of(faiss_index.id_map))
        return index


class _DeferredTraining:
    """Kinds that must be trained (k-means, quantiser ranges) buffer their first adds.

    Training on the first streamed batch would fit the structure to a sliver of the corpus (and fix
    nlist from its size); instead vectors wait in a buffer until the index is searched, saved or
    asked for its vectors, and training then sees everything added so far.
    """

    _pending: list[tuple[np.ndarray, np.ndarray]]

    def _take_pending(self) -> tuple[np.ndarray, np.ndarray]:
        vectors = np.concatenate([v for v, _ in self._pending]) if self._pending else None
        ids = np.concatenate([i for _, i in self._pending]) if self._pending else None
        self._pending = []
        return vectors, ids

    @staticmethod
    def _training_sample(vectors: np.ndarray, size: int, seed: int = 1234) -> np.ndarray:
        if len(vectors) <= size:
            return vectors
        rows = np.sort(np.random.default_rng(seed).choice(len(vectors), size, replace=False))
        return vectors[rows]


class HNSWIndex(_DeferredTraining, VectorIndex):
    """Graph search (faiss IndexHNSWFlat, or IndexHNSWSQ with sq8) behind IndexIDMap2.

    HNSW cannot delete nodes: `remove` rebuilds the graph from the kept vectors, which are read
    back from the index's own storage (exact for flat storage, 8-bit decoded for sq8), so no second
    copy of the vectors is kept. `rebuild_on_remove` says so to callers.
    """

    rebuild_on_remove = True

    def __init__(self, dim: int, M: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION,
                 ef_search: int = HNSW_EF_SEARCH, sq8: bool = False):
        self.kind = "hnsw-sq8" if sq8 else "hnsw"
        super().__init__(dim)
        self.M = _check_int("M", M, 4, 512)
        self.ef_construction = _check_int("ef_construction", ef_construction, 1)
        self.ef_search = _check_int("ef_search", ef_search, 1)
        self.sq8 = bool(sq8)
        self._pending = []
        self._index = self._new_faiss()

    @property
    def params(self) -> dict[str, Any]:
        return {"M": self.M, "ef_construction": self.ef_construction, "ef_search": self.ef_search,
                "sq8": self.sq8}

    def set_search_params(self, ef_search: int) -> None:
        """Trade query speed for recall without rebuilding."""
        self.ef_search = _check_int("ef_search", ef_search, 1)

    def _new_faiss(self) -> Any:
        if self.sq8:
            inner = faiss.IndexHNSWSQ(self.dim, faiss.ScalarQuantizer.QT_8bit, self.M, faiss.METRIC_INNER_PRODUCT)
        else:
            inner = faiss.IndexHNSWFlat(self.dim, self.M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = self.ef_construction
        inner.hnsw.efSearch = self.ef_search
        return faiss.IndexIDMap2(inner)

    def _add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if self._index.is_trained:
            self._index.add_with_ids(vectors, ids)
        else:
            self._pending.append((vectors, ids))

    def flush(self) -> None:
        """Train the scalar quantiser (sq8) on everything buffered and insert it."""
        with self._lock:
            if not self._pending:
                return
            vectors, ids = self._take_pending()
            self._index.train(self._training_sample(vectors, 200_000))
            self._index.add_with_ids(vectors, ids)

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.flush()
        params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        return self._index.search(queries, k, params=params)

    def _remove(self, ids: np.ndarray) -> bool:
        self.flush()
        all_ids, vectors = self._all_vectors()
        keep = ~np.isin(all_ids, ids)
        self._index = self._new_faiss()
        if keep.any():
            if self.sq8:
                self._index.train(self._training_sample(vectors[keep], 200_000))
            self._index.add_with_ids(np.ascontiguousarray(vectors[keep]), all_ids[keep])
        return True

    def _all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        self.flush()
        ids = _ids_of(self._index.id_map)
        vectors = self._index.index.reconstruct_n(0, len(ids)) if len(ids) else \
            np.empty((0, self.dim), dtype=np.float32)
        return ids, vectors

    def to_faiss(self) -> Any:
        with self._lock:
            self.flush()
            return self._index

    @classmethod
    def from_faiss(cls, faiss_index: Any, info: dict[str, Any]) -> HNSWIndex:
        inner = faiss.downcast_index(faiss_index.index) if isinstance(faiss_index, faiss.IndexIDMap2) else None
        if not isinstance(inner, faiss.IndexHNSW):
            raise VectorIndexError("index.faiss does not hold an HNSW index (IndexIDMap2 over IndexHNSW)")
        _check_metric(inner, "hnsw")
        params = {**info.get("params", {}), "M": inner.hnsw.nb_neighbors(1),
                  "sq8": isinstance(inner, faiss.IndexHNSWSQ)}
        index = cls(faiss_index.d, **params)
        index._index = faiss_index
        index._ids = IdRegistry(_ids_of(faiss_index.id_map))
        return index


def choose_nlist(count: int) -> int:
    """About 4*sqrt(n) inverted lists, at least 39 training points each, between 1 and 65536."""
    return max(1, min(int(round(4 * math.sqrt(max(count, 1)))), count // 39, 65_536))


def choose_nprobe(nlist: int) -> int:
    """Lists visited per query: about 2.5*sqrt(nlist), at least 16, at most 256 (never more than exist).

    nprobe=1 (faiss's default) misses the many neighbours that sit across a list boundary. Needed
    for recall@10 >= 0.95 on clustered data: 24-32 of 153 lists (6k x 64), 22 of 1,265 (100k x 384),
    under 39 of 4,000 (1M x 384); 2.5*sqrt(nlist) keeps a margin for harder corpora at the price of
    speed (at 1M: 16x exact single-query throughput, 26x with nprobe=79; see bench/index.py).
    """
    return max(1, min(nlist, 256, max(16, int(round(2.5 * math.sqrt(nlist))))))


class IVFIndex(_DeferredTraining, VectorIndex):
    """Inverted lists (faiss IndexIVFFlat, or IndexIVFScalarQuantizer with sq8) with native ids.

    nlist defaults to choose_nlist(n) where n is the count at training time (training waits for
    the first search or save, see _DeferredTraining); nprobe defaults to choose_nprobe(nlist).
    Removal is in place (faiss remove_ids). A corpus that grows far past its training size keeps
    working but with lists that are too long: rebuild it to re-pick nlist.
    """

    def __init__(self, dim: int, nlist: int | None = None, nprobe: int | None = None, sq8: bool = False):
        self.kind = "ivf-sq8" if sq8 else "ivf"
        super().__init__(dim)
        self.requested_nlist = None if nlist is None else _check_int("nlist", nlist, 1, 1 << 20)
        self.requested_nprobe = None if nprobe is None else _check_int("nprobe", nprobe, 1)
        self.sq8 = bool(sq8)
        self._pending = []
        self._index: Any = None

    @property
    def nlist(self) -> int | None:
        return self._index.nlist if self._index is not None else self.requested_nlist

    @property
    def nprobe(self) -> int | None:
        nlist = self.nlist
        if self.requested_nprobe is not None:
            return min(self.requested_nprobe, nlist) if nlist else self.requested_nprobe
        return choose_nprobe(nlist) if nlist else None

    @property
    def params(self) -> dict[str, Any]:
        return {"nlist": self.nlist, "nprobe": self.requested_nprobe, "sq8": self.sq8}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "effective_nprobe": self.nprobe, "trained": self._index is not None}

    def set_search_params(self, nprobe: int) -> None:
        """Trade query speed for recall without rebuilding."""
        self.requested_nprobe = _check_int("nprobe", nprobe, 1)

    def _add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if self._index is not None:
            self._index.add_with_ids(vectors, ids)
        else:
            self._pending.append((vectors, ids))

    def flush(self) -> None:
        """Train on everything buffered (choosing nlist from its size) and add it."""
        with self._lock:
            if not self._pending:
                return
            vectors, ids = self._take_pending()
            if self._index is None:
                self._index = self._train(vectors)
            self._index.add_with_ids(vectors, ids)

    def _train(self, vectors: np.ndarray) -> Any:
        nlist = self.requested_nlist or choose_nlist(len(vectors))
        if nlist > len(vectors):  # k-means needs at least one point per list
            nlist = len(vectors)
            self.chosen_reason = f"nlist lowered to {nlist}: only {len(vectors)} vectors to train on"
        quantizer = faiss.IndexFlatIP(self.dim)
        if self.sq8:
            # Without residuals, codes decode on their own (vectors() stays simple); on unit
            # vectors 8 bits per dimension loses well under 1% recall either way.
            index = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                  faiss.METRIC_INNER_PRODUCT, False)
        else:
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = IVF_TRAIN_ITERATIONS
        index.cp.spherical = True  # centroids on the sphere, like the data
        index.train(self._training_sample(vectors, IVF_TRAIN_POINTS_PER_LIST * nlist))
        return index

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.flush()
        return self._index.search(queries, k, params=faiss.SearchParametersIVF(nprobe=self.nprobe))

    def _search_exhaustive(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # Visiting every list is an exact search, without decoding anything.
        return self._index.search(queries, k, params=faiss.SearchParametersIVF(nprobe=self._index.nlist))

    def _remove(self, ids: np.ndarray) -> bool:
        self.flush()
        if self._index is not None:
            self._index.remove_ids(ids)
        return False

    def _all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        from faiss.contrib.inspect_tools import get_invlist

        self.flush()
        if self._index is None:
            return np.empty(0, dtype=np.int64), np.empty((0, self.dim), dtype=np.float32)
        all_ids, all_vectors = [], []
        for list_no in range(self._index.nlist):
            if not self._index.invlists.list_size(list_no):
                continue
            ids, codes = get_invlist(self._index.invlists, list_no)
            all_ids.append(ids.astype(np.int64))
            all_vectors.append(self._index.sq.decode(codes) if self.sq8 else
                               codes.view(np.float32).reshape(-1, self.dim))
        if not all_ids:
            return np.empty(0, dtype=np.int64), np.empty((0, self.dim), dtype=np.float32)
        return np.concatenate(all_ids), np.concatenate(all_vectors)

    def to_faiss(self) -> Any:
        with self._lock:
            self.flush()
            if self._index is None:  # nothing added yet: an untrained placeholder (not kept: it would fix nlist)
                return faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, 1, faiss.METRIC_INNER_PRODUCT)
            return self._index

    @classmethod
    def from_faiss(cls, faiss_index: Any, info: dict[str, Any]) -> IVFIndex:
        from faiss.contrib.inspect_tools import get_invlist

        # faiss.read_index already returns the concrete class; a downcast here would make a second
        # proxy that does not own the object, which dangles once the first is collected.
        if not isinstance(faiss_index, faiss.IndexIVF):
            raise VectorIndexError("index.faiss does not hold an IVF index")
        _check_metric(faiss_index, "ivf")
        params = info.get("params", {})
        if not faiss_index.is_trained:  # saved before anything was added: only the parameters matter
            return cls(faiss_index.d, nlist=params.get("nlist"), nprobe=params.get("nprobe"),
                       sq8=bool(params.get("sq8")))
        index = cls(faiss_index.d, nlist=faiss_index.nlist, nprobe=params.get("nprobe"),
                    sq8=isinstance(faiss_index, faiss.IndexIVFScalarQuantizer))
        index._index = faiss_index
        ids = [get_invlist(faiss_index.invlists, i)[0] for i in range(faiss_index.nlist)
               if faiss_index.invlists.list_size(i)]
        index._ids = IdRegistry(np.concatenate(ids).astype(np.int64) if ids else None)
        return index


class AutoIndex(VectorIndex):
    """Exact `flat` up to `threshold` vectors, then an approximate kind (hnsw by default).

    The switch happens when an add crosses the threshold: the flat vectors move into the approximate
    index once, and later adds go straight there. Removing vectors never switches back (a corpus
    hovering around the threshold would otherwise rebuild back and forth). `chosen` and
    `chosen_reason` say which kind is in use and why.
    """

    kind = "auto"

    def __init__(self, dim: int, threshold: int = AUTO_THRESHOLD, approximate: str = "hnsw",
                 approximate_params: dict[str, Any] | None = None):
        super().__init__(dim)
        self.threshold = _check_int("threshold", threshold, 0)
        if approximate not in APPROXIMATE_KINDS:
            raise VectorIndexError(f"approximate must be one of {', '.join(APPROXIMATE_KINDS)}, got {approximate!r}")
        self.approximate = approximate
        self.approximate_params = dict(approximate_params or {})
        create_index(approximate, dim, **self.approximate_params)  # fail now on bad parameters
        self.inner: VectorIndex = FlatIndex(dim)
        self._explain()

    @property
    def chosen(self) -> str:
        return self.inner.kind

    @property
    def exact(self) -> bool:  # type: ignore[override]
        return self.inner.exact

    @property
    def rebuild_on_remove(self) -> bool:  # type: ignore[override]
        return self.inner.rebuild_on_remove

    @property
    def params(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "approximate": self.approximate,
                "approximate_params": self.approximate_params}

    def _explain(self) -> None:
        count = len(self.inner)
        if self.inner.exact:
            self.chosen_reason = (f"auto chose exact flat search: {count:,} vectors, at or under the "
                                  f"{self.threshold:,} threshold where exact search stays fast")
        else:
            self.chosen_reason = (f"auto chose {self.chosen}: the corpus grew past {self.threshold:,} "
                                  f"vectors ({count:,} now), where exact search gets slow; approximate "
                                  f"search tuned for recall@10 >= 0.95")

    def describe(self) -> dict[str, Any]:
        self._explain()
        return {**super().describe(), "chosen": self.chosen, "inner": self.inner.describe()}

    def _add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self.inner.add(vectors, ids)
        if self.inner.exact and len(self.inner) > self.threshold:
            ids_now, vectors_now = self.inner.vectors()
            approximate = create_index(self.approximate, self.dim, **self.approximate_params)
            approximate.add(vectors_now, ids_now)
            self.inner = approximate
        self._explain()

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.search(queries, k)

    def _search_exhaustive(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.inner._search_exhaustive(queries, k)

    def _remove(self, ids: np.ndarray) -> bool:
        result = self.inner.remove(ids)
        self._explain()
        return result.rebuilt

    def _all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.vectors()

    def to_faiss(self) -> Any:
        return self.inner.to_faiss()

    def set_search_params(self, **params: Any) -> None:
        if not hasattr(self.inner, "set_search_params"):
            raise VectorIndexError(f"{self.chosen} has no search parameters to set")
        self.inner.set_search_params(**params)

    @classmethod
    def from_faiss(cls, faiss_index: Any, info: dict[str, Any]) -> AutoIndex:
        params = info.get("params", {})
        chosen = info.get("chosen", "flat")
        if chosen not in KINDS or chosen == "auto":
            raise VectorIndexError(f"meta.json says auto chose {chosen!r}, which is not a known kind")
        index = cls(faiss_index.d, threshold=params.get("threshold", AUTO_THRESHOLD),
                    approximate=params.get("approximate", "hnsw"),
                    approximate_params=params.get("approximate_params"))
        index.inner = KINDS[chosen][0].from_faiss(faiss_index, info.get("inner") or {})
        index._ids = IdRegistry(index.inner.ids())
        index._explain()
        return index


# kind -> (class, fixed constructor arguments); the same names as index.names.KIND_NAMES, which
# light modules (the CLI's argument parser, the app) read without importing FAISS.
KINDS: dict[str, tuple[type[VectorIndex], dict[str, Any]]] = {
    "numpy": (NumpyIndex, {}),
    "flat": (FlatIndex, {}),
    "hnsw": (HNSWIndex, {}),
    "hnsw-sq8": (HNSWIndex, {"sq8": True}),
    "ivf": (IVFIndex, {}),
    "ivf-sq8": (IVFIndex, {"sq8": True}),
    "auto": (AutoIndex, {}),
}
APPROXIMATE_KINDS = ("hnsw", "hnsw-sq8", "ivf", "ivf-sq8")


def create_index(kind: str, dim: int, **params: Any) -> VectorIndex:
    """A new empty index of `kind` (see KINDS) for `dim`-d vectors."""
    if kind not in KINDS:
        raise VectorIndexError(f"unknown index kind {kind!r}: use one of {', '.join(KIND_NAMES)}")
    cls, fixed = KINDS[kind]
    try:
        return cls(dim, **{**params, **fixed})
    except TypeError as exc:  # an unknown parameter name
        raise VectorIndexError(f"bad parameters for {kind}: {exc}") from exc
