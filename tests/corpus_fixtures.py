"""Fixtures of the corpus-index and search tests: a trigram encoder, a small titles CSV."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.test_index_fakes import TrigramEncoder

TITLES = ["Data scientist", "Data analyst", "Software engineer", "Nurse", "Head chef", "Bus driver",
          "Primary school teacher", "Plumber", "Electrician", "Accountant"]


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
