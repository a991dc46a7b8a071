"""The index kinds (numpy, flat, hnsw, ivf, their sq8 variants, ivf-pq with refine, auto) and their factory."""

from __future__ import annotations

import math
from typing import Any

import faiss
import numpy as np

from index.base import IdRegistry, VectorIndex, exact_search, prepare_vectors
from index.errors import VectorIndexError
from index.names import KIND_NAMES, POSITION_IDS_FILE, REFINE_FILE
from index.refine import RefineStore, map_npy

# Exact search is fast enough below this many vectors (a 384-d flat scan of 50k rows takes a few
# milliseconds); above it `auto` switches to an approximate kind.
AUTO_THRESHOLD = 50_000

# HNSW defaults. M=32 links per node is the usual sweet spot for 256-768-d embeddings (M=16 loses
# recall as the graph grows, M=64 doubles the link memory for little gain). With efConstruction=80,
# efSearch=128 measured recall@10 0.983 at 100k x 384 clustered vectors (efSearch=64: 0.960; see
# bench/index.py). At 1M it loses far more than the point or two usually quoted: 0.891 at 384-d
# (256: 0.941, 1024: 0.957) and 0.962 at 128-d (bench/scale.py on a quiet machine, README "Scale"),
# which is why `auto` switches to ivf-pq past AUTO_LARGE_THRESHOLD.
# efConstruction costs build time linearly, efSearch costs query time linearly.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128

# IVF: k-means iterations and training points per list (faiss warns under 39). Training dominates
# the build and costs points x lists x dim x iterations (~5 TFLOP at 1M x 384 with 4,000 lists), so
# it uses fewer iterations than faiss's 25: the lists only need to be a rough partition, since
# nprobe visits many of them and distances inside a list are exact.
IVF_TRAIN_ITERATIONS = 10
IVF_TRAIN_POINTS_PER_LIST = 40

# Above this many vectors `auto` uses ivf-pq (with exact refine from a memory-mapped file) instead of
# HNSW. Recall decides it first: at 1M x 384 clustered vectors HNSW (M 32, efConstruction 80) gave
# recall@10 0.891 at efSearch 128 and levelled off at 0.957 by efSearch 1024 (31x exact), where ivf-pq
# with refine gave 1.000 at 91x and builds in a fifth of the time (bench/scale.py, README "Scale");
# at 100k HNSW gave 0.983. 500k sits between the two measured sizes. Memory agrees: HNSW holds 1.8 KB
# a 384-d vector in RAM, ivf-pq about 80 bytes, reading the candidates' exact vectors from disk.
AUTO_LARGE_THRESHOLD = 500_000
# IVF-PQ: one sub-quantizer per 8 dimensions (48 bytes of code at 384-d, 16 at 128-d; m must divide
# dim), 8 bits each, and the refine step re-ranks REFINE_FACTOR * k candidates with exact vectors
# (on 4,000 clustered 64-d vectors, 10 candidates per hit gave recall@10 0.95 and 20 gave 0.98).
PQ_DIMS_PER_CODE = 8
PQ_NBITS = 8
REFINE_FACTOR = 20
# PQ needs this many training points per centroid (256 for 8 bits) before its k-means is meaningful.
PQ_TRAIN_POINTS_PER_CENTROID = 39
# Training samples never exceed this many vectors: 40 per list up to 50,000 lists (nlist at 100M is
# 40,000), 3 GB at 384-d; the one sample a streamed build holds in RAM.
MAX_TRAIN_POINTS = 2_000_000


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

    def memory_bytes(self) -> dict[str, int]:
        return {"resident": len(self) * (4 * self.dim + 8 + 8), "mapped": 0}

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

    def memory_bytes(self) -> dict[str, int]:
        # Storage, level-0 links (2*M int32), upper levels (~1/M of the nodes), level and offset
        # arrays, the id map and the id registry.
        per = (self.dim if self.sq8 else 4 * self.dim) + 2 * self.M * 4 + 8 + 12 + 8 + 8
        return {"resident": (len(self) + sum(len(i) for _, i in self._pending)) * per, "mapped": 0}

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
        self._expected: int | None = None

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

    def expect(self, count: int) -> None:
        """Size the lists for `count` vectors and train as soon as a sample of that size has arrived,
        so a streamed build buffers one training sample, not the whole corpus."""
        self._expected = _check_int("count", count, 0)

    def _train_points(self, count: int) -> int:
        """How many vectors training wants for a corpus of `count`."""
        nlist = self.requested_nlist or choose_nlist(count)
        return min(count, max(IVF_TRAIN_POINTS_PER_LIST * nlist, self._sample_floor(), 1), MAX_TRAIN_POINTS)

    def _add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if self._index is not None:
            self._insert(vectors, ids)
            return
        self._pending.append((vectors, ids))
        if self._expected and sum(len(i) for _, i in self._pending) >= self._train_points(self._expected):
            self.flush()

    def _insert(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self._index.add_with_ids(vectors, ids)

    def train(self, sample: Any) -> None:
        """Train on a sample (a shard build draws it across the corpus), then insert anything buffered;
        later adds go straight into the lists. nlist comes from expect()'s count, else the sample's."""
        sample = prepare_vectors(sample, self.dim, "the training sample")
        with self._lock:
            self._check_writable()
            if self._index is not None:
                raise VectorIndexError(f"this {self.kind} index is already trained")
            self._index = self._train(sample, self._expected or len(sample))
            vectors, ids = self._take_pending()
            if vectors is not None:
                self._insert(vectors, ids)

    def flush(self) -> None:
        """Train on everything buffered (choosing nlist from its size, or from expect()'s) and add it."""
        with self._lock:
            if not self._pending:
                return
            vectors, ids = self._take_pending()
            if self._index is None:
                self._index = self._train(vectors, max(self._expected or 0, len(vectors)))
            self._insert(vectors, ids)

    def memory_bytes(self) -> dict[str, int]:
        count = len(self) + sum(len(i) for _, i in self._pending)
        code = self.dim if self.sq8 else 4 * self.dim
        return {"resident": count * (code + 8 + 8) + 4 * self.dim * (self.nlist or 0), "mapped": 0}

    def _make_ivf(self, quantizer: Any, nlist: int, vectors: np.ndarray) -> Any:
        if self.sq8:
            # Without residuals, codes decode on their own (vectors() stays simple); on unit
            # vectors 8 bits per dimension loses well under 1% recall either way.
            return faiss.IndexIVFScalarQuantizer(quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                 faiss.METRIC_INNER_PRODUCT, False)
        return faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)

    def _train(self, vectors: np.ndarray, count: int | None = None) -> Any:
        nlist = self.requested_nlist or choose_nlist(count or len(vectors))
        if nlist > len(vectors):  # k-means needs at least one point per list
            nlist = len(vectors)
            self.chosen_reason = f"nlist lowered to {nlist}: only {len(vectors)} vectors to train on"
        quantizer = faiss.IndexFlatIP(self.dim)
        index = self._make_ivf(quantizer, nlist, vectors)
        index.cp.niter = IVF_TRAIN_ITERATIONS
        index.cp.spherical = True  # centroids on the sphere, like the data
        index.train(self._training_sample(vectors, min(max(IVF_TRAIN_POINTS_PER_LIST * nlist,
                                                           self._sample_floor()), MAX_TRAIN_POINTS)))
        return index

    def _sample_floor(self) -> int:
        """Training points the codes need beyond the lists' (PQ's 256 centroids per sub-quantizer)."""
        return 0

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


def choose_pq_m(dim: int) -> int:
    """Sub-quantizers for `dim`: the divisor of dim nearest dim / PQ_DIMS_PER_CODE (faiss needs m | dim)."""
    target = max(1.0, dim / PQ_DIMS_PER_CODE)
    return min((m for m in range(1, dim + 1) if dim % m == 0), key=lambda m: (abs(m - target), -m))


class IVFPQIndex(IVFIndex):
    """Inverted lists of product-quantized codes (faiss IndexIVFPQ), re-ranked with exact vectors.

    Each vector costs m bytes of code (8 bits per sub-quantizer) plus its 8-byte list entry in RAM;
    with `refine` (the default) its exact float32 copy goes to refine_vectors.npy, which an opened
    index reads memory-mapped: a search takes REFINE_FACTOR * k candidates from the codes and re-ranks
    them by exact cosine, reading only those rows from disk. The inverted lists store positions into
    that file (position_ids.npy maps them back to ids), so re-ranking is one gather. Removal is in
    place; the removed rows stay in the file, unreferenced, until the index is rebuilt.
    A build that calls expect(n) (or train(sample)) trains on a sample and never holds the corpus's
    float32 vectors in RAM; spill_refine_to(folder) keeps the exact vectors on disk while building.
    """

    def __init__(self, dim: int, nlist: int | None = None, nprobe: int | None = None, m: int | None = None,
                 nbits: int = PQ_NBITS, refine: bool = True, refine_factor: int = REFINE_FACTOR):
        super().__init__(dim, nlist=nlist, nprobe=nprobe)
        self.kind = "ivf-pq"
        self.m = choose_pq_m(self.dim) if m is None else _check_int("m", m, 1, self.dim)
        if self.dim % self.m:
            raise VectorIndexError(f"m must divide the dimension {self.dim}, got {self.m}")
        self.nbits = _check_int("nbits", nbits, 1, 16)
        self.refine = bool(refine)
        self.refine_factor = _check_int("refine_factor", refine_factor, 1, 1000)
        self._store = RefineStore(self.dim)
        self._positions = np.empty(0, dtype=np.int64)  # position -> id; -1 once removed
        self._position_count = 0
        self.chosen_reason = "ivf-pq requested explicitly"

    @property
    def params(self) -> dict[str, Any]:
        return {"nlist": self.nlist, "nprobe": self.requested_nprobe, "m": self.m, "nbits": self.nbits,
                "refine": self.refine, "refine_factor": self.refine_factor}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "effective_nbits": self._index.pq.nbits if self._index is not None else None,
                "code_bytes": self._index.code_size if self._index is not None else None}

    def set_search_params(self, nprobe: int | None = None, refine_factor: int | None = None) -> None:
        """Trade query speed for recall without rebuilding: lists visited, candidates re-ranked per hit."""
        if nprobe is not None:
            self.requested_nprobe = _check_int("nprobe", nprobe, 1)
        if refine_factor is not None:
            self.refine_factor = _check_int("refine_factor", refine_factor, 1, 1000)

    def spill_refine_to(self, folder: Any) -> None:
        """Write exact vectors to a file in `folder` as they arrive instead of keeping them in RAM."""
        if self.refine:
            self._store.spill_to(folder)

    def _sample_floor(self) -> int:
        return PQ_TRAIN_POINTS_PER_CENTROID * (1 << self.nbits)

    def _make_ivf(self, quantizer: Any, nlist: int, vectors: np.ndarray) -> Any:
        # A sample too small for 2**nbits centroids per sub-quantizer gets fewer bits (small indexes
        # only; at 10k vectors and more the requested 8 bits stay).
        nbits = max(1, min(self.nbits, int(math.log2(max(2, len(vectors) // 4)))))
        index = faiss.IndexIVFPQ(quantizer, self.dim, nlist, self.m, nbits, faiss.METRIC_INNER_PRODUCT)
        # As for the lists: a rough codebook suffices once candidates are re-ranked exactly (65k x 384
        # with m=48 trained in 18 s at 10 iterations against 46 s at faiss's 25, on one core).
        index.pq.cp.niter = IVF_TRAIN_ITERATIONS
        if nbits < self.nbits:
            self.chosen_reason = (f"PQ codes lowered to {nbits} bits: only {len(vectors)} vectors to train on")
        return index

    def _insert(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        positions = np.arange(self._position_count, self._position_count + len(ids), dtype=np.int64)
        if self.refine:  # the store's positions run in step with these (both append only)
            self._store.append(vectors)
        needed = self._position_count + len(ids)
        if needed > len(self._positions):  # grow geometrically, as streamed adds arrive
            grown = np.full(max(needed, 2 * len(self._positions), 1024), -1, dtype=np.int64)
            grown[:self._position_count] = self._positions[:self._position_count]
            self._positions = grown
        self._positions[self._position_count:needed] = ids
        self._position_count = needed
        self._index.add_with_ids(vectors, positions)

    def _position_ids(self) -> np.ndarray:
        return self._positions[:self._position_count]

    def _rerank(self, queries: np.ndarray, positions: np.ndarray, scores: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top k of the candidates by exact cosine (by code score without refine); ids, -1 where short."""
        valid = positions >= 0
        if self.refine:
            out_scores = np.full((len(queries), k), -1.0, dtype=np.float32)
            out_positions = np.full((len(queries), k), -1, dtype=np.int64)
            block = max(1, 4_000_000 // max(1, positions.shape[1] * self.dim))  # ~16 MB of candidates
            for start in range(0, len(queries), block):
                rows = slice(start, start + block)
                found, ok = positions[rows], valid[rows]
                vectors = self._store.get(np.where(ok, found, 0)).reshape(*found.shape, self.dim)
                exact = np.einsum("qd,qkd->qk", queries[rows], vectors)
                exact[~ok] = -np.inf
                order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
                top = np.take_along_axis(exact, order, axis=1)
                out_scores[rows] = np.where(np.isfinite(top), top, -1.0)
                out_positions[rows] = np.where(np.isfinite(top), np.take_along_axis(found, order, axis=1), -1)
            scores, positions = out_scores, out_positions
        else:
            scores, positions = scores[:, :k], positions[:, :k]
        ids = np.where(positions >= 0, self._position_ids()[np.maximum(positions, 0)], -1)
        return scores, ids

    def _candidates(self, k: int) -> int:
        return min(len(self), k * self.refine_factor) if self.refine else k

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.flush()
        params = faiss.SearchParametersIVF(nprobe=self.nprobe)
        scores, positions = self._index.search(queries, self._candidates(k), params=params)
        return self._rerank(queries, positions, scores, k)

    def _search_exhaustive(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # Every list visited; candidates still re-ranked by exact vectors.
        params = faiss.SearchParametersIVF(nprobe=self._index.nlist)
        scores, positions = self._index.search(queries, self._candidates(k), params=params)
        return self._rerank(queries, positions, scores, k)

    def _remove(self, ids: np.ndarray) -> bool:
        self.flush()
        positions = np.flatnonzero(np.isin(self._position_ids(), ids)).astype(np.int64)
        if self._index is not None and len(positions):
            self._index.remove_ids(positions)
        self._positions[positions] = -1
        return False

    def _all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        from faiss.contrib.inspect_tools import get_invlist

        self.flush()
        alive = np.flatnonzero(self._position_ids() >= 0)
        if not len(alive):
            return np.empty(0, dtype=np.int64), np.empty((0, self.dim), dtype=np.float32)
        if self.refine:
            return self._position_ids()[alive].copy(), self._store.get(alive)
        found, decoded = [], []
        for list_no in range(self._index.nlist):
            if not self._index.invlists.list_size(list_no):
                continue
            positions, codes = get_invlist(self._index.invlists, list_no)
            residuals = self._index.pq.decode(codes)
            found.append(positions.astype(np.int64))
            decoded.append(residuals + self._index.quantizer.reconstruct(list_no)[None, :])
        positions = np.concatenate(found)
        return self._position_ids()[positions].copy(), np.concatenate(decoded)

    def memory_bytes(self) -> dict[str, int]:
        count = self._position_count + sum(len(i) for _, i in self._pending)
        code = self._index.code_size if self._index is not None else math.ceil(self.m * self.nbits / 8)
        centroids = 4 * self.dim * ((self.nlist or 0) + (1 << self.nbits))
        # Per vector: its code and list entry, the position -> id map and the id registry. The refine
        # vectors count as mapped: that is how a saved index reads them once opened (while being built
        # they sit in RAM or in a spill file).
        resident = len(self) * (code + 8) + count * 8 + len(self) * 8 + centroids
        mapped = len(self._store) * 4 * self.dim if self.refine else 0
        return {"resident": int(resident), "mapped": int(mapped)}

    def to_faiss(self) -> Any:
        with self._lock:
            self.flush()
            if self._index is None:
                return faiss.IndexIVFPQ(faiss.IndexFlatIP(self.dim), self.dim, 1, self.m, self.nbits,
                                        faiss.METRIC_INNER_PRODUCT)
            return self._index

    @classmethod
    def extra_files(cls, info: dict[str, Any]) -> tuple[str, ...]:
        refine = (info.get("params") or {}).get("refine", True)
        return (POSITION_IDS_FILE, REFINE_FILE) if refine else (POSITION_IDS_FILE,)

    def write_extra(self, folder: Any) -> list[str]:
        from pathlib import Path

        with self._lock:
            self.flush()
            with open(Path(folder) / POSITION_IDS_FILE, "wb") as handle:
                np.save(handle, self._position_ids(), allow_pickle=False)
            if not self.refine:
                return [POSITION_IDS_FILE]
            self._store.write(Path(folder) / REFINE_FILE)
            return [POSITION_IDS_FILE, REFINE_FILE]

    @classmethod
    def from_faiss(cls, faiss_index: Any, info: dict[str, Any], files: dict[str, Any] | None = None) -> IVFPQIndex:
        if not isinstance(faiss_index, faiss.IndexIVFPQ):
            raise VectorIndexError("index.faiss does not hold an IVF-PQ index")
        _check_metric(faiss_index, "ivf-pq")
        params = dict(info.get("params") or {})
        files = files or {}
        missing = [name for name in cls.extra_files(info) if name not in files]
        if missing:
            raise VectorIndexError(f"the ivf-pq index lacks {', '.join(missing)}; rebuild it")
        keep = {key: params[key] for key in ("nprobe", "nbits", "refine", "refine_factor") if key in params}
        if not faiss_index.is_trained:
            return cls(faiss_index.d, nlist=params.get("nlist"), m=faiss_index.pq.M, **keep)
        index = cls(faiss_index.d, nlist=faiss_index.nlist, m=faiss_index.pq.M, **keep)
        positions = np.array(map_npy(files[POSITION_IDS_FILE], POSITION_IDS_FILE), dtype=np.int64)
        if positions.ndim != 1:
            raise VectorIndexError(f"{POSITION_IDS_FILE} is not a list of ids; rebuild the index")
        if index.refine:
            vectors = map_npy(files[REFINE_FILE], REFINE_FILE)
            if vectors.ndim != 2 or vectors.shape != (len(positions), index.dim):
                raise VectorIndexError(f"{REFINE_FILE} holds {vectors.shape} vectors for {len(positions)} "
                                       f"positions of {index.dim}-d; rebuild the index")
            index._store = RefineStore(index.dim, mapped=vectors)
        if faiss_index.ntotal != int((positions >= 0).sum()):
            raise VectorIndexError(f"index.faiss holds {faiss_index.ntotal} codes but {POSITION_IDS_FILE} "
                                   f"{int((positions >= 0).sum())} ids; rebuild the index")
        index._index = faiss_index
        index._positions, index._position_count = positions, len(positions)
        index._ids = IdRegistry(positions[positions >= 0])
        return index


class AutoIndex(VectorIndex):
    """Exact `flat` up to `threshold` vectors, an approximate kind (hnsw by default) above, and ivf-pq
    with refine above `large_threshold` (AUTO_LARGE_THRESHOLD, where HNSW's RAM gets large).

    The switch happens when an add crosses a threshold: the vectors move into the next kind once, and
    later adds go straight there. A build that knows its size (expect(n)) starts in the right kind and
    moves nothing. Removing vectors never switches back (a corpus hovering around the threshold would
    otherwise rebuild back and forth). `chosen` and `chosen_reason` say which kind is in use and why.
    """

    kind = "auto"

    def __init__(self, dim: int, threshold: int = AUTO_THRESHOLD, approximate: str = "hnsw",
                 approximate_params: dict[str, Any] | None = None, large_threshold: int = AUTO_LARGE_THRESHOLD,
                 large_params: dict[str, Any] | None = None):
        super().__init__(dim)
        self.threshold = _check_int("threshold", threshold, 0)
        if approximate not in APPROXIMATE_KINDS:
            raise VectorIndexError(f"approximate must be one of {', '.join(APPROXIMATE_KINDS)}, got {approximate!r}")
        self.approximate = approximate
        self.approximate_params = dict(approximate_params or {})
        create_index(approximate, dim, **self.approximate_params)  # fail now on bad parameters
        self.large_threshold = _check_int("large_threshold", large_threshold, self.threshold)
        self.large_params = dict(large_params or {})
        create_index("ivf-pq", dim, **self.large_params)
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
                "approximate_params": self.approximate_params, "large_threshold": self.large_threshold,
                "large_params": self.large_params}

    def _explain(self) -> None:
        count = len(self.inner)
        if self.inner.exact:
            self.chosen_reason = (f"auto chose exact flat search: {count:,} vectors, at or under the "
                                  f"{self.threshold:,} threshold where exact search stays fast")
        elif self.inner.kind == "ivf-pq":
            self.chosen_reason = (f"auto chose ivf-pq with exact refine: the corpus is past {self.large_threshold:,} "
                                  f"vectors ({max(count, self._expected_count):,}), where float32 vectors "
                                  f"and a graph in RAM get large; codes stay in RAM, exact vectors on disk")
        else:
            self.chosen_reason = (f"auto chose {self.chosen}: the corpus grew past {self.threshold:,} "
                                  f"vectors ({count:,} now), where exact search gets slow; approximate "
                                  f"search tuned for recall@10 >= 0.95")

    def describe(self) -> dict[str, Any]:
        self._explain()
        return {**super().describe(), "chosen": self.chosen, "inner": self.inner.describe()}

    _expected_count = 0

    def _kind_for(self, count: int) -> tuple[str, dict[str, Any]]:
        if count > self.large_threshold:
            return "ivf-pq", self.large_params
        if count > self.threshold:
            return self.approximate, self.approximate_params
        return "flat", {}

    def expect(self, count: int) -> None:
        """Start in the kind `count` vectors call for (nothing added yet), and pass the count on."""
        self._expected_count = _check_int("count", count, 0)
        kind, params = self._kind_for(count)
        if not len(self.inner) and kind != self.inner.kind:
            self.inner = create_index(kind, self.dim, **params)
        self.inner.expect(count)
        self._explain()

    def memory_bytes(self) -> dict[str, int]:
        return self.inner.memory_bytes()

    def train(self, sample: Any) -> None:
        if hasattr(self.inner, "train"):
            self.inner.train(sample)

    def spill_refine_to(self, folder: Any) -> None:
        if hasattr(self.inner, "spill_refine_to"):
            self.inner.spill_refine_to(folder)

    def _add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self.inner.add(vectors, ids)
        kind, params = self._kind_for(len(self.inner))
        grows = {"flat": 0, self.approximate: 1, "ivf-pq": 2}
        if grows.get(kind, 0) > grows.get(self.inner.kind, 0):
            ids_now, vectors_now = self.inner.vectors()
            bigger = create_index(kind, self.dim, **params)
            bigger.expect(max(len(ids_now), self._expected_count))
            bigger.add(vectors_now, ids_now)
            self.inner = bigger
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

    @classmethod
    def extra_files(cls, info: dict[str, Any]) -> tuple[str, ...]:
        chosen = info.get("chosen", "flat")
        if chosen not in KINDS or chosen == "auto":
            return ()
        return KINDS[chosen][0].extra_files(info.get("inner") or {})

    def write_extra(self, folder: Any) -> list[str]:
        return self.inner.write_extra(folder)

    def set_search_params(self, **params: Any) -> None:
        if not hasattr(self.inner, "set_search_params"):
            raise VectorIndexError(f"{self.chosen} has no search parameters to set")
        self.inner.set_search_params(**params)

    @classmethod
    def from_faiss(cls, faiss_index: Any, info: dict[str, Any], files: dict[str, Any] | None = None) -> AutoIndex:
        params = info.get("params", {})
        chosen = info.get("chosen", "flat")
        if chosen not in KINDS or chosen == "auto":
            raise VectorIndexError(f"meta.json says auto chose {chosen!r}, which is not a known kind")
        index = cls(faiss_index.d, threshold=params.get("threshold", AUTO_THRESHOLD),
                    approximate=params.get("approximate", "hnsw"),
                    approximate_params=params.get("approximate_params"),
                    large_threshold=params.get("large_threshold", AUTO_LARGE_THRESHOLD),
                    large_params=params.get("large_params"))
        inner_class, inner_info = KINDS[chosen][0], info.get("inner") or {}
        index.inner = (inner_class.from_faiss(faiss_index, inner_info, files=files)
                       if inner_class.extra_files(inner_info) else inner_class.from_faiss(faiss_index, inner_info))
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
    "ivf-pq": (IVFPQIndex, {}),
    "auto": (AutoIndex, {}),
}
APPROXIMATE_KINDS = ("hnsw", "hnsw-sq8", "ivf", "ivf-sq8", "ivf-pq")


def create_index(kind: str, dim: int, **params: Any) -> VectorIndex:
    """A new empty index of `kind` (see KINDS) for `dim`-d vectors."""
    if kind not in KINDS:
        raise VectorIndexError(f"unknown index kind {kind!r}: use one of {', '.join(KIND_NAMES)}")
    cls, fixed = KINDS[kind]
    try:
        return cls(dim, **{**params, **fixed})
    except TypeError as exc:  # an unknown parameter name
        raise VectorIndexError(f"bad parameters for {kind}: {exc}") from exc
