"""Seeded synthetic embeddings with cluster structure, exact neighbours and recall, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from index.base import exact_search, l2_normalize


class ClusteredEmbeddings:
    """A mixture of Gaussians on the unit sphere that looks like sentence embeddings to an ANN index.

    Uniform random vectors in 384-d have no neighbourhood structure (every point is nearly equidistant
    from every other), so ANN recall on them says nothing about real corpora. Real embeddings sit
    around topics and vary locally along few directions; this generator mimics that: each point is a
    random centroid plus noise mostly inside a shared low-rank subspace, plus a little isotropic noise.
    Database points and queries drawn from the same instance share the centroids.
    """

    def __init__(self, dim: int, n_clusters: int = 1000, seed: int = 0, rank: int = 32,
                 local_spread: float = 1.0, isotropic_spread: float = 0.4, clusters_per_topic: int = 20,
                 topic_spread: float = 0.6):
        self.dim = dim
        self.n_clusters = n_clusters
        self.seed = seed
        rng = np.random.default_rng(seed)
        # Two levels, like topics and sub-topics: clusters of one topic overlap, so neighbours often
        # sit across a cluster boundary (what makes IVF need nprobe > 1 on real corpora).
        n_topics = max(1, n_clusters // clusters_per_topic)
        topics = l2_normalize(rng.standard_normal((n_topics, dim)))
        offsets = rng.standard_normal((n_clusters, dim)) * (topic_spread / np.sqrt(dim))
        self.centroids = l2_normalize(topics[rng.integers(0, n_topics, n_clusters)] + offsets)
        self.rank = min(rank, dim)
        # Orthonormal basis of the local subspace, so local_spread is the expected noise norm in it.
        basis, _ = np.linalg.qr(rng.standard_normal((dim, self.rank)))
        self.basis = basis.T.astype(np.float32)
        self.local_spread = local_spread
        self.isotropic_spread = isotropic_spread

    def chunks(self, n: int, seed: int, chunk_size: int = 50_000) -> Iterator[np.ndarray]:
        """`n` normalised float32 vectors in chunks (memory stays bounded for millions of rows)."""
        rng = np.random.default_rng([self.seed, seed])
        for start in range(0, n, chunk_size):
            size = min(chunk_size, n - start)
            labels = rng.integers(0, self.n_clusters, size)
            local = rng.standard_normal((size, self.rank), dtype=np.float32) @ self.basis
            local *= self.local_spread / np.sqrt(self.rank)
            isotropic = rng.standard_normal((size, self.dim), dtype=np.float32)
            isotropic *= self.isotropic_spread / np.sqrt(self.dim)
            yield l2_normalize(self.centroids[labels] + local + isotropic)

    def sample(self, n: int, seed: int, chunk_size: int = 50_000) -> np.ndarray:
        out = np.empty((n, self.dim), dtype=np.float32)
        start = 0
        for chunk in self.chunks(n, seed, chunk_size):
            out[start:start + len(chunk)] = chunk
            start += len(chunk)
        return out


def exact_neighbors(database: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product (the oracle): (scores, row positions in `database`), best first."""
    database = np.asarray(database, dtype=np.float32)
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    return exact_search(database, np.arange(len(database)), queries, min(k, len(database)))


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean fraction of the true top-k ids found in the returned top-k (ties make this a lower bound)."""
    found = np.asarray(found)[:, :k]
    truth = np.asarray(truth)[:, :k]
    hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size if truth.size else 1.0
