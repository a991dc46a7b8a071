"""Two models' embeddings of the same texts, compared: similarity relative to each model's own scale,
one 2-D map with the tuned points aligned to the base ones, and how each text's neighbourhood changed.

Raw cosines of two models are not on one scale: a model can push every pair towards 0.8 without ranking
anything differently. Each function here compares what survives such a shift: percentiles against the
model's own random pairs, positions after an orthogonal alignment, and nearest-neighbour sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SEED = 0
REFERENCE_PAIRS = 20_000
NEIGHBOURS = 10
_ROWS_AT_ONCE = 1024  # rows of the similarity matrix held at once by the neighbour search


# -- relative similarity ------------------------------------------------------------------------
def reference_similarities(vectors: np.ndarray, pairs: int = REFERENCE_PAIRS, seed: int = SEED) -> np.ndarray:
    """Cosines of `pairs` random pairs of different rows (a model's embeddings of a reference corpus),
    sorted: the scale that model's similarities are read against."""
    vectors = np.asarray(vectors, dtype=np.float64)
    n = len(vectors)
    if n < 2:
        raise ValueError("a reference corpus needs at least 2 different texts")
    rng = np.random.default_rng(seed)
    first = rng.integers(0, n, size=pairs)
    second = (first + rng.integers(1, n, size=pairs)) % n  # never the row itself
    return np.sort(np.einsum("ij,ij->i", vectors[first], vectors[second]))


def percentiles(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each value's percentile (0-100) among the sorted `reference` cosines; ties count half."""
    values = np.asarray(values, dtype=np.float64)
    below = np.searchsorted(reference, values, side="left")
    through = np.searchsorted(reference, values, side="right")
    return 100.0 * (below + through) / (2.0 * len(reference))


def similarity_matrix(vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of every pair of unit rows, clipped to [-1, 1]."""
    vectors = np.asarray(vectors, dtype=np.float64)
    return np.clip(vectors @ vectors.T, -1.0, 1.0)


def pair_changes(texts: Sequence[str], base: np.ndarray, tuned: np.ndarray, base_relative: np.ndarray | None = None,
                 tuned_relative: np.ndarray | None = None) -> Any:
    """Every pair of texts (a DataFrame), the most changed first: by the change in relative similarity
    (percentile points) when both relative matrices are given, else by the change in raw cosine.
    `ranked_by` in its attrs says which ("relative" or "cosine")."""
    import pandas as pd

    first, second = np.triu_indices(len(texts), k=1)
    frame = pd.DataFrame({"text a": [texts[i] for i in first], "text b": [texts[j] for j in second],
                          "base": base[first, second], "tuned": tuned[first, second]})
    frame["change"] = frame["tuned"] - frame["base"]
    ranked_by = "cosine"
    if base_relative is not None and tuned_relative is not None:
        frame["base %"] = base_relative[first, second]
        frame["tuned %"] = tuned_relative[first, second]
        frame["relative change"] = frame["tuned %"] - frame["base %"]
        ranked_by = "relative"
    key = "relative change" if ranked_by == "relative" else "change"
    frame = frame.reindex(frame[key].abs().sort_values(ascending=False, kind="stable").index).reset_index(drop=True)
    frame.attrs["ranked_by"] = ranked_by
    return frame


# -- one map for both models --------------------------------------------------------------------
def procrustes(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The orthogonal matrix R that best maps centred `source` rows onto centred `target` rows
    (least squares, rotation and reflection only: distances within `source` are kept)."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.shape != target.shape:
        raise ValueError(f"Procrustes needs the same texts in the same dimension, got {source.shape} and "
                         f"{target.shape}")
    left, _, right = np.linalg.svd((source - source.mean(0)).T @ (target - target.mean(0)))
    return left @ right


def _pca(rows: np.ndarray, fit_on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows projected on the first two principal components of `fit_on`, and the variance each explains."""
    mean = fit_on.mean(axis=0, keepdims=True)
    _, singular, components = np.linalg.svd(fit_on - mean, full_matrices=False)
    coords = (rows - mean) @ components[:2].T
    variance = singular ** 2
    explained = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    if coords.shape[1] < 2:  # one-dimensional data: pad with a zero axis
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
        explained = np.pad(explained, (0, 2 - len(explained)))
    return coords, explained


def _umap(rows: np.ndarray, seed: int) -> np.ndarray | None:
    try:
        import umap  # optional: not in requirements.txt
    except ImportError:
        return None
    return np.asarray(umap.UMAP(n_components=2, random_state=seed, metric="cosine").fit_transform(rows))


@dataclass
class AlignedMap:
    """Base and tuned 2-D coordinates of the same texts in one frame."""

    base: np.ndarray  # (n, 2)
    tuned: np.ndarray  # (n, 2)
    method: str  # how the frame was made, for the caption
    explained: np.ndarray | None  # PCA: variance share of each axis over both models' points

    @property
    def moves(self) -> np.ndarray:
        """How far each text moved on the map."""
        return np.linalg.norm(self.tuned - self.base, axis=1)


def aligned_map(base: np.ndarray, tuned: np.ndarray | None = None, method: str = "auto",
                seed: int = SEED) -> AlignedMap:
    """One 2-D frame for both models' embeddings of the same texts (rows in the same order).

    Same dimension: the tuned vectors are rotated onto the base ones (orthogonal Procrustes on this very
    sample), then both sets are projected together, by UMAP where it is installed (method "auto" or
    "umap") or by PCA fitted on both. Different dimensions: each model gets its own PCA and the tuned
    map is rotated and scaled onto the base one (2-D Procrustes). Without `tuned`: the base map alone.
    """
    base = np.asarray(base, dtype=np.float64)
    if base.ndim != 2 or len(base) < 3:
        raise ValueError("a map needs at least 3 texts")
    if method not in ("auto", "umap", "pca"):
        raise ValueError(f"unknown map method {method!r}: auto, umap or pca")
    if tuned is None:
        coords, explained = _pca(base, base)
        return AlignedMap(coords, coords.copy(), "PCA", explained)
    tuned = np.asarray(tuned, dtype=np.float64)
    if len(tuned) != len(base):
        raise ValueError(f"the two models embedded {len(base)} and {len(tuned)} texts; a map needs the same texts")
    if tuned.shape[1] == base.shape[1]:
        rotated = (tuned - tuned.mean(0)) @ procrustes(tuned, base) + base.mean(0)
        joint = np.vstack([base, rotated])
        if method in ("auto", "umap"):
            projected = _umap(joint, seed)
            if projected is not None:
                n = len(base)
                return AlignedMap(projected[:n], projected[n:], "UMAP of both, tuned rotated onto base "
                                  "(orthogonal Procrustes)", None)
            if method == "umap":
                raise ValueError("UMAP is not installed (pip install umap-learn); use PCA")
        coords, explained = _pca(joint, joint)
        n = len(base)
        return AlignedMap(coords[:n], coords[n:], "one PCA of both, tuned rotated onto base "
                          "(orthogonal Procrustes)", explained)
    base_2d, explained = _pca(base, base)
    tuned_2d, _ = _pca(tuned, tuned)
    centred_tuned = tuned_2d - tuned_2d.mean(0)
    rotation = procrustes(tuned_2d, base_2d)
    turned = centred_tuned @ rotation
    # Different spaces have different spreads: also scale the tuned map onto the base one's.
    scale = float(np.sum(turned * (base_2d - base_2d.mean(0))) / max(np.sum(turned ** 2), 1e-12))
    return AlignedMap(base_2d, turned * scale + base_2d.mean(0), "a PCA per model (different dimensions), "
                      "tuned rotated and scaled onto base (2-D Procrustes)", explained)


# -- neighbourhoods -----------------------------------------------------------------------------
def nearest_neighbours(vectors: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """Row positions of each row's k most similar other rows (cosine; unit rows), best first."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    if n < 2:
        raise ValueError("neighbours need at least 2 texts")
    k = min(int(k), n - 1)
    if k < 1:
        raise ValueError("k must be at least 1")
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, _ROWS_AT_ONCE):
        block = vectors[start:start + _ROWS_AT_ONCE] @ vectors.T
        rows = np.arange(start, start + len(block))
        block[rows - start, rows] = -np.inf  # a text is not its own neighbour
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(block, top, axis=1), axis=1, kind="stable")
        out[start:start + len(block)] = np.take_along_axis(top, order, axis=1)
    return out


@dataclass
class NeighbourhoodOverlap:
    """Each text's top-k neighbours under base and tuned, and the Jaccard overlap of the two sets."""

    base: np.ndarray  # (n, k) positions
    tuned: np.ndarray  # (n, k) positions
    jaccard: np.ndarray  # (n,)

    @property
    def k(self) -> int:
        return self.base.shape[1]


def neighbourhood_overlap(base: np.ndarray, tuned: np.ndarray, k: int = NEIGHBOURS) -> NeighbourhoodOverlap:
    """Jaccard |A ∩ B| / |A ∪ B| of each text's top-k neighbours under the base (A) and the tuned (B)
    model, over the same texts: 1 = the same neighbours, 0 = none kept."""
    if len(base) != len(tuned):
        raise ValueError(f"the two models embedded {len(base)} and {len(tuned)} texts; overlap needs the same texts")
    base_nn, tuned_nn = nearest_neighbours(base, k), nearest_neighbours(tuned, k)
    shared = np.array([len(set(a) & set(b)) for a, b in zip(base_nn.tolist(), tuned_nn.tolist(), strict=True)])
    k = base_nn.shape[1]
    return NeighbourhoodOverlap(base_nn, tuned_nn, shared / (2 * k - shared))


def overlap_table(texts: Sequence[str], overlap: NeighbourhoodOverlap, rows: int | None = None) -> Any:
    """A DataFrame, lowest overlap first: text, jaccard, kept (neighbours in both top-k), came (new in
    the tuned top-k) and went (gone from it), best first within each list."""
    import pandas as pd

    records = []
    for i, (a, b) in enumerate(zip(overlap.base.tolist(), overlap.tuned.tolist(), strict=True)):
        in_base, in_tuned = set(a), set(b)
        records.append({"text": texts[i], "jaccard": float(overlap.jaccard[i]), "kept": len(in_base & in_tuned),
                        "came": [texts[j] for j in b if j not in in_base],
                        "went": [texts[j] for j in a if j not in in_tuned]})
    frame = pd.DataFrame(records, columns=["text", "jaccard", "kept", "came", "went"])
    frame = frame.sort_values("jaccard", kind="stable").reset_index(drop=True)
    return frame if rows is None else frame.head(rows)
