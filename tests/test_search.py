"""semsim.search: one query or several, the encoder check, and the loaded-index cache."""

from __future__ import annotations

import pytest

from index import VectorIndexError
from semsim.corpus_index import add_to_index, build_index
from semsim.search import load_index, search_index
from tests.corpus_fixtures import TITLES
from tests.test_index_fakes import TrigramEncoder

pytest_plugins = ["tests.corpus_fixtures"]
pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # tests/conftest.py


def test_search_one_query_or_several(encoder, corpus_csv, tmp_path):
    build_index(encoder, corpus_csv, column="title", out_dir=tmp_path / "idx", extra_columns=["group"])
    hits = search_index(encoder, tmp_path / "idx", "data scientist", k=3)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["text"] == "Data scientist" and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert hits[0]["group"] == "g0" and hits[1]["text"] == "Data analyst"
    many = search_index(encoder, tmp_path / "idx", ["nurse", "plumber"], k=100)
    assert len(many) == 2 and len(many[0]) == 11  # k above the index size: only what exists
    assert many[1][0]["text"] == "Plumber"
    with pytest.raises(VectorIndexError, match="non-empty"):
        search_index(encoder, tmp_path / "idx", ["ok", "  "])


def test_a_different_encoder_is_refused_everywhere(encoder, tmp_path):
    build_index(encoder, TITLES, "text", out_dir=tmp_path / "idx")
    other = TrigramEncoder(spec="other-model", salt="x")
    with pytest.raises(VectorIndexError, match="built with 'fake-trigram'.*'other-model'"):
        search_index(other, tmp_path / "idx", "nurse")
    with pytest.raises(VectorIndexError, match="other-model"):
        add_to_index(other, tmp_path / "idx", ["Vet"])
    with pytest.raises(VectorIndexError, match="16-d|32-d"):
        search_index(TrigramEncoder(dim=16), load_index(tmp_path / "idx"), "nurse")


def test_load_index_is_cached_until_the_index_changes(encoder, tmp_path):
    build_index(encoder, TITLES[:4], "text", out_dir=tmp_path / "idx")
    first = load_index(tmp_path / "idx")
    assert load_index(tmp_path / "idx") is first
    add_to_index(encoder, tmp_path / "idx", ["Vet"])
    second = load_index(tmp_path / "idx", expected_encoder=encoder)
    assert second is not first and len(second) == 5
