"""Fixtures of the corpus-index and search tests: a trigram encoder, a small titles CSV, one FAISS thread."""

from __future__ import annotations

import faiss
import pandas as pd
import pytest

from tests.test_index_fakes import TrigramEncoder

TITLES = ["Data scientist", "Data analyst", "Software engineer", "Nurse", "Head chef", "Bus driver",
          "Primary school teacher", "Plumber", "Electrician", "Accountant"]


@pytest.fixture(autouse=True, scope="module")
def _one_faiss_thread():
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture
def encoder():
    return TrigramEncoder()


@pytest.fixture
def corpus_csv(tmp_path):
    frame = pd.DataFrame({"title": TITLES + ["  Data scientist ", "", "   ", "Nurse", "NA"],
                          "group": [f"g{i}" for i in range(15)]})
    path = tmp_path / "titles.csv"
    frame.to_csv(path, index=False)
    return path
