"""One contract for every index kind: add, search, remove, save/load, edge cases, recall vs the oracle.

Every kind also runs the read side of the contract opened memory-mapped (`KIND:mmap`: saved, then read
back with faiss's mmap flag), where writes are refused instead of aborting the process."""

from __future__ import annotations

import numpy as np
import pytest

from index import KINDS, VectorIndex, VectorIndexError, create_index, load_vector_index, save_vector_index
from index.datasets import ClusteredEmbeddings, exact_neighbors, recall_at_k

DIM = 64
# `auto` gets a low threshold so the test exercises its switch to the approximate kind.
KIND_PARAMS = {kind: ({"threshold": 1_000} if kind == "auto" else {}) for kind in KINDS}
EXACT_KINDS = {"numpy", "flat"}


pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def dataset():
    """4,000 clustered 64-d unit vectors with scattered int64 ids, 200 queries, exact top-10."""
    generator = ClusteredEmbeddings(DIM, n_clusters=60, seed=7)
    vectors = generator.sample(4_000, seed=1)
    queries = generator.sample(200, seed=2)
    ids = np.random.default_rng(3).choice(10**12, size=len(vectors), replace=False).astype(np.int64)
    _, positions = exact_neighbors(vectors, queries, 10)
    return {"vectors": vectors, "queries": queries, "ids": ids, "truth": ids[positions]}


def make(kind: str) -> VectorIndex:
    return create_index(kind, DIM, **KIND_PARAMS[kind])


@pytest.fixture(scope="module", params=[*KINDS, *(f"{kind}:mmap" for kind in KINDS)])
def built(request, dataset, tmp_path_factory):
    """Each kind filled in three uneven batches (streamed adds, as the CLI does); `KIND:mmap` is the same
    index saved and opened memory-mapped."""
    kind, _, mapped = request.param.partition(":")
    index = make(kind)
    for rows in np.array_split(np.arange(len(dataset["ids"])), [700, 3_000]):
        index.add(dataset["vectors"][rows], dataset["ids"][rows])
    if mapped:
        folder = tmp_path_factory.mktemp("mmap") / kind
        save_vector_index(index, folder)
        index = load_vector_index(folder, mmap=True)
        assert index.read_only
    return index


def small(kind: str, count: int = 300, seed: int = 11) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    vectors = ClusteredEmbeddings(DIM, n_clusters=10, seed=seed).sample(count, seed=5)
    ids = np.arange(100, 100 + count, dtype=np.int64)
    index = make(kind)
    index.add(vectors, ids)
    return index, vectors, ids


def test_len_kind_and_params(built, dataset):
    assert len(built) == len(dataset["ids"])
    assert built.kind in KINDS
    assert isinstance(built.params, dict)
    description = built.describe()
    assert description["count"] == len(dataset["ids"]) and description["dim"] == DIM
    assert description["chosen_reason"]


def test_recall_at_10_against_the_numpy_oracle(built, dataset):
    _, found = built.search(dataset["queries"], 10)
    recall = recall_at_k(found, dataset["truth"], 10)
    assert recall >= (0.999 if built.kind in EXACT_KINDS else 0.95), f"{built.kind}: recall@10 {recall:.3f}"


def test_scores_are_cosines_best_first(built, dataset):
    scores, found = built.search(dataset["queries"][:20], 10)
    assert scores.dtype == np.float32 and found.dtype == np.int64
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    position = {int(i): p for p, i in enumerate(dataset["ids"])}
    vectors = dataset["vectors"][[[position[int(i)] for i in row] for row in found]]
    cosines = np.einsum("qd,qkd->qk", dataset["queries"][:20], vectors)
    tolerance = 0.03 if "sq8" in built.kind else 1e-4
    np.testing.assert_allclose(scores, cosines, atol=tolerance)


def test_one_dimensional_query_is_one_query(built, dataset):
    scores, found = built.search(dataset["queries"][0], 5)
    assert scores.shape == found.shape == (1, 5)
    _, batch = built.search(dataset["queries"][:1], 5)
    assert found.tolist() == batch.tolist()


def test_unnormalised_vectors_are_normalised(built, dataset):
    _, plain = built.search(dataset["queries"][:5], 5)
    _, scaled = built.search(dataset["queries"][:5] * 7.5, 5)
    assert plain.tolist() == scaled.tolist()


@pytest.mark.parametrize("kind", list(KINDS))
def test_k_larger_than_the_index_returns_only_what_exists(kind):
    index, vectors, ids = small(kind, count=7)
    scores, found = index.search(vectors[:3], 50)
    assert found.shape == scores.shape == (3, 7)
    assert (found >= 0).all()
    assert all(sorted(row) == sorted(ids.tolist()) for row in found.tolist())


@pytest.mark.parametrize("kind", list(KINDS))
def test_empty_index_search_returns_empty_results(kind, tmp_path):
    index = make(kind)
    assert len(index) == 0
    scores, found = index.search(np.ones(DIM, dtype=np.float32), 10)
    assert scores.shape == found.shape == (1, 0)
    save_vector_index(index, tmp_path / "empty")
    reloaded = load_vector_index(tmp_path / "empty")
    assert len(reloaded) == 0 and reloaded.kind == kind
    with pytest.raises(VectorIndexError, match="dimension mismatch"):
        index.search(np.ones(DIM + 1, dtype=np.float32), 10)


@pytest.mark.parametrize("kind", list(KINDS))
def test_duplicate_ids_are_refused(kind):
    index, vectors, ids = small(kind, count=50)
    with pytest.raises(VectorIndexError, match="already in the index"):
        index.add(vectors[:2], ids[:2])
    with pytest.raises(VectorIndexError, match="duplicate ids"):
        index.add(vectors[:2], [10**9, 10**9])
    assert len(index) == 50


@pytest.mark.parametrize("kind", list(KINDS))
def test_bad_input_gives_clear_errors(kind):
    index, vectors, ids = small(kind, count=20)
    with pytest.raises(VectorIndexError, match="dimension mismatch"):
        index.add(np.ones((2, DIM + 3), dtype=np.float32), [1, 2])
    with pytest.raises(VectorIndexError, match="dimension mismatch"):
        index.search(np.ones((2, DIM - 1), dtype=np.float32), 3)
    with pytest.raises(VectorIndexError, match="2 vectors but 3 ids"):
        index.add(vectors[:2], [1, 2, 3])
    with pytest.raises(VectorIndexError, match="NaN"):
        index.add(np.full((1, DIM), np.nan, dtype=np.float32), [1])
    with pytest.raises(VectorIndexError, match="k must be"):
        index.search(vectors[:1], 0)
    with pytest.raises(VectorIndexError, match="integers"):
        index.add(vectors[:1], ["a"])
    assert len(index) == 20


@pytest.mark.parametrize("kind", list(KINDS))
def test_remove(kind):
    index, vectors, ids = small(kind, count=300)
    gone = ids[::3]
    result = index.remove(np.concatenate([gone, [999_999]]))
    assert result.removed == len(gone)
    assert result.missing == [999_999]
    assert result.rebuilt == index.rebuild_on_remove
    assert bool(result.message) == result.rebuilt
    assert len(index) == len(ids) - len(gone)
    _, found = index.search(vectors, 10)
    assert not np.isin(found, gone).any()
    kept = ~np.isin(ids, gone)
    _, truth = exact_neighbors(vectors[kept], vectors, 10)
    assert recall_at_k(found, ids[kept][truth], 10) >= 0.95
    index.add(vectors[:1], gone[:1])  # a removed id can be added again
    assert len(index) == kept.sum() + 1
    assert index.remove([]).removed == 0


@pytest.mark.parametrize("kind", list(KINDS))
def test_memory_mapped_open_searches_and_refuses_writes(kind, tmp_path):
    index, vectors, ids = small(kind, count=300)
    save_vector_index(index, tmp_path / "index")
    mapped = load_vector_index(tmp_path / "index", mmap=True)
    assert len(mapped) == 300 and mapped.kind == kind
    assert mapped.search(vectors[:20], 10)[1].tolist() == index.search(vectors[:20], 10)[1].tolist()
    assert mapped.search(vectors[:2], 500)[1].shape == (2, 300)  # k past the size: only what exists
    # faiss aborts the whole process on a write to a mapped structure: the index must refuse first.
    with pytest.raises(VectorIndexError, match="read-only"):
        mapped.add(vectors[:1], [10**9])
    with pytest.raises(VectorIndexError, match="read-only"):
        mapped.remove(ids[:1])
    empty = tmp_path / "empty"
    save_vector_index(make(kind), empty)
    assert load_vector_index(empty, mmap=True).search(vectors[0], 5)[1].shape == (1, 0)


def test_ivf_pq_trains_on_a_sample_when_told_the_size(dataset):
    """A streamed build that says its size buffers one training sample, never the whole corpus."""
    # A sample of max(40 * 20, 39 * 2**5) = 1,248; 5-bit codes need more candidates re-ranked.
    index = create_index("ivf-pq", DIM, nlist=20, nbits=5, refine_factor=50)
    index.expect(len(dataset["ids"]))
    sample = index._train_points(len(dataset["ids"]))
    assert sample < len(dataset["ids"])
    for start in range(0, len(dataset["ids"]), 500):
        index.add(dataset["vectors"][start:start + 500], dataset["ids"][start:start + 500])
        assert sum(len(i) for _, i in index._pending) < sample + 500
    assert index._index is not None and not index._pending
    _, found = index.search(dataset["queries"], 10)
    assert recall_at_k(found, dataset["truth"], 10) >= 0.95


def test_ivf_pq_refine_reranks_with_exact_vectors(dataset):
    codes_only = create_index("ivf-pq", DIM, refine=False)
    refined = create_index("ivf-pq", DIM)
    for index in (codes_only, refined):
        index.add(dataset["vectors"], dataset["ids"])
    scores, found = refined.search(dataset["queries"][:20], 10)
    position = {int(i): p for p, i in enumerate(dataset["ids"])}
    exact = np.einsum("qd,qkd->qk", dataset["queries"][:20],
                      dataset["vectors"][[[position[int(i)] for i in row] for row in found]])
    np.testing.assert_allclose(scores, exact, atol=1e-5)  # refined scores are exact cosines
    recall = {name: recall_at_k(index.search(dataset["queries"], 10)[1], dataset["truth"], 10)
              for name, index in (("codes", codes_only), ("refined", refined))}
    assert recall["refined"] > recall["codes"], recall
    # Exact vectors are read memory-mapped once the index is saved and opened, not held in RAM.
    assert refined.describe()["memory"]["mapped"] == len(dataset["ids"]) * DIM * 4
    assert codes_only.memory_bytes() == {**refined.memory_bytes(), "mapped": 0}


def test_auto_starts_in_the_kind_its_expected_size_needs():
    index = create_index("auto", DIM, threshold=100, large_threshold=1_000)
    index.expect(50)
    assert index.chosen == "flat"
    index.expect(500)
    assert index.chosen == "hnsw"
    index.expect(5_000)
    assert index.chosen == "ivf-pq" and "ivf-pq" in index.describe()["chosen_reason"]


def test_hnsw_says_that_removal_rebuilds():
    assert create_index("hnsw", DIM).rebuild_on_remove is True
    assert create_index("flat", DIM).rebuild_on_remove is False
    assert create_index("ivf", DIM).rebuild_on_remove is False


def test_save_and_load_round_trip(built, dataset, tmp_path):
    save_vector_index(built, tmp_path / "index")
    assert (tmp_path / "index" / "index.faiss").is_file()
    reloaded = load_vector_index(tmp_path / "index")
    assert type(reloaded) is type(built)
    assert reloaded.kind == built.kind and len(reloaded) == len(built)
    assert reloaded.params == built.params
    before_scores, before = built.search(dataset["queries"][:50], 10)
    after_scores, after = reloaded.search(dataset["queries"][:50], 10)
    assert before.tolist() == after.tolist()
    np.testing.assert_allclose(before_scores, after_scores, atol=1e-6)
    # A loaded index keeps working: new ids go in, known ids are refused.
    reloaded.add(dataset["queries"][:1], [-5])
    with pytest.raises(VectorIndexError):
        reloaded.add(dataset["queries"][:1], dataset["ids"][:1])
    assert reloaded.search(dataset["queries"][0], 1)[1][0, 0] == -5


def test_vectors_gives_back_what_was_added(built, dataset):
    ids, vectors = built.vectors()
    order, expected = np.argsort(ids), np.argsort(dataset["ids"])
    assert ids[order].tolist() == dataset["ids"][expected].tolist()
    tolerance = 0.02 if "sq8" in built.kind else 1e-6
    np.testing.assert_allclose(vectors[order], dataset["vectors"][expected], atol=tolerance)


def test_search_parameters_can_be_tuned_without_rebuilding(dataset):
    index = create_index("ivf", DIM)
    index.add(dataset["vectors"], dataset["ids"])
    index.set_search_params(nprobe=1)
    _, narrow = index.search(dataset["queries"], 10)
    index.set_search_params(nprobe=index.nlist)  # every list: exact
    _, wide = index.search(dataset["queries"], 10)
    assert recall_at_k(narrow, dataset["truth"], 10) < recall_at_k(wide, dataset["truth"], 10)
    assert recall_at_k(wide, dataset["truth"], 10) >= 0.999
    assert index.describe()["effective_nprobe"] == index.nlist


def test_unknown_kind_and_parameters_are_refused():
    with pytest.raises(VectorIndexError, match="unknown index kind"):
        create_index("annoy", DIM)
    with pytest.raises(VectorIndexError, match="bad parameters"):
        create_index("hnsw", DIM, nprobe=3)
    with pytest.raises(VectorIndexError, match="ef_search"):
        create_index("hnsw", DIM, ef_search=0)
    with pytest.raises(VectorIndexError, match="approximate"):
        create_index("auto", DIM, approximate="flat")
