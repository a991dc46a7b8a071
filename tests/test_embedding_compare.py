"""Comparing two models' embeddings: relative similarity, the aligned map, neighbourhood overlap, and the fake
tuned model (cosines squeezed towards 0.8) that must show no relative change and no significant delta."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from semsim import embedding_compare as ec
from semsim.evaluation import PairSimilarityEvaluator, RetrievalEvaluator, paired
from tests.app_fixtures import TITLES
from tests.fake_encoders import BagOfWordsEncoder, SqueezedEncoder


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_squeezed_model_shows_no_relative_change_but_a_large_raw_one():
    base = BagOfWordsEncoder()
    fake = SqueezedEncoder(base)
    texts = TITLES[:15]
    reference = [f"{a} {b}" for a in TITLES[15:30] for b in TITLES[30:]]  # a corpus of other texts
    sims, relative = {}, {}
    for role, encoder in (("base", base), ("fake", fake)):
        sims[role] = ec.similarity_matrix(encoder.encode(texts))
        relative[role] = ec.percentiles(sims[role], ec.reference_similarities(encoder.encode(reference)))
    off = ~np.eye(len(texts), dtype=bool)
    assert np.allclose(sims["fake"], 0.2 * sims["base"] + 0.8, atol=1e-5)  # the squeeze
    assert sims["fake"][off].min() > 0.6 > sims["base"][off].min()
    assert np.abs(relative["fake"] - relative["base"])[off].max() < 0.01  # percentile points
    # On the map too: one more dimension, so a PCA each and a 2-D Procrustes; nothing moves.
    frame = ec.aligned_map(base.encode(reference), fake.encode(reference))
    assert frame.moves.max() < 1e-4 * np.abs(frame.base).max()
    pairs = ec.pair_changes(texts, sims["base"], sims["fake"], relative["base"], relative["fake"])
    assert pairs.attrs["ranked_by"] == "relative" and len(pairs) == 15 * 14 // 2
    assert pairs["relative change"].abs().max() < 0.01 and pairs["change"].abs().max() > 0.3
    # Ranked on the relative view; without references, on raw cosine (and it says so).
    raw = ec.pair_changes(texts, sims["base"], sims["fake"])
    assert raw.attrs["ranked_by"] == "cosine" and raw["change"].abs().is_monotonic_decreasing


def test_squeezed_model_has_no_significant_delta_on_any_ranking_metric():
    base = BagOfWordsEncoder()
    fake = SqueezedEncoder(base)
    rng = np.random.default_rng(0)
    a = rng.choice(TITLES, 300).tolist()
    b = rng.choice(TITLES, 300).tolist()
    gold = rng.uniform(0, 1, 300)
    pairs = PairSimilarityEvaluator(a, b, gold)
    rows = paired.metric_rows("pairs", paired.pair_items(pairs, base), paired.pair_items(pairs, fake))
    corpus = pd.DataFrame({"id": [str(i) for i in range(len(TITLES))], "text": TITLES})
    queries = pd.DataFrame({"query_id": [f"q{i}" for i in range(30)],
                            "query": [f"{t} job" for t in TITLES[:30]],
                            "relevant_ids": [str(i) for i in range(30)]})
    retrieval = RetrievalEvaluator(queries, corpus)
    rows += paired.metric_rows("retrieval", paired.retrieval_items(retrieval, base),
                               paired.retrieval_items(retrieval, fake))
    assert {r["metric"] for r in rows} == {"spearman", "pearson", "ndcg@10", "mrr@10", "recall@1", "recall@10"}
    for row in rows:
        assert row["significant"] is False, row
        assert abs(row["delta"]) < 1e-3 and row["ci95"][0] <= 0 <= row["ci95"][1], row


def test_procrustes_recovers_a_rotation_and_the_map_puts_unchanged_texts_in_place():
    rng = np.random.default_rng(1)
    base = _unit(rng.normal(size=(80, 12)))
    rotation, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    tuned = base @ rotation  # the same geometry, turned
    assert np.allclose(ec.procrustes(tuned, base), rotation.T, atol=1e-8)
    frame = ec.aligned_map(base, tuned, method="pca")
    assert "Procrustes" in frame.method and frame.moves.max() < 1e-8
    spread = np.linalg.norm(frame.base - frame.base.mean(0), axis=1).mean()
    # Two independent PCAs would disagree in sign and order of axes; the aligned frame does not.
    moved = tuned.copy()
    moved[:5] = _unit(rng.normal(size=(5, 12)))  # five texts really move
    frame = ec.aligned_map(base, moved, method="pca")
    assert frame.moves[:5].mean() > 3 * frame.moves[5:].mean()
    # Another dimension: a PCA each, the tuned map turned and scaled onto the base one.
    wider = base @ np.linalg.qr(rng.normal(size=(16, 16)))[0][:12] * 3
    frame = ec.aligned_map(base, wider)
    assert "2-D Procrustes" in frame.method and frame.moves.max() < 1e-6 * max(spread, 1)
    with pytest.raises(ValueError, match="same texts"):
        ec.aligned_map(base, tuned[:10])
    base_only = ec.aligned_map(base)
    assert base_only.base.shape == (80, 2) and base_only.explained[0] >= base_only.explained[1]


def test_neighbourhood_overlap_finds_the_texts_that_moved_and_what_came_and_went():
    rng = np.random.default_rng(2)
    centres = _unit(rng.normal(size=(4, 16)))
    base = _unit(np.repeat(centres, 10, axis=0) + 0.05 * rng.normal(size=(40, 16)))  # 4 groups of 10
    texts = [f"text {i}" for i in range(40)]
    same = ec.neighbourhood_overlap(base, base.copy(), k=5)
    assert np.all(same.jaccard == 1.0)
    squeezed = ec.neighbourhood_overlap(base, SqueezedEncoder(_Fixed(base)).encode(texts), k=5)
    assert np.all(squeezed.jaccard == 1.0)  # a monotone change of every cosine keeps every neighbourhood

    tuned = base.copy()
    tuned[0] = _unit(centres[3:4] + 0.05 * rng.normal(size=(1, 16)))[0]  # text 0 joins group 3
    overlap = ec.neighbourhood_overlap(base, tuned, k=5)
    assert overlap.jaccard[0] == 0.0
    table = ec.overlap_table(texts, overlap)
    first = table.iloc[0]
    assert first["text"] == "text 0" and first["kept"] == 0
    assert set(first["came"]) <= {f"text {i}" for i in range(30, 40)}
    assert set(first["went"]) <= {f"text {i}" for i in range(1, 10)} and len(first["went"]) == 5
    assert table["jaccard"].is_monotonic_increasing
    neighbours = ec.nearest_neighbours(base, 3)
    assert neighbours.shape == (40, 3) and not np.any(neighbours == np.arange(40)[:, None])


class _Fixed:
    """An 'encoder' that returns given vectors (for the squeezed wrapper)."""

    def __init__(self, vectors):
        self.vectors, self.dim, self.spec = vectors, vectors.shape[1], "fixed"

    def encode(self, texts, batch_size=64, progress=None):
        return self.vectors[: len(texts)]
