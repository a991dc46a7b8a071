"""Shared fixtures: tiny random-weight models built once per session, isolated workspace paths."""

from __future__ import annotations

import os

import pytest

# Fixture modules that tests also import names from: rewrite their asserts before that import.
pytest.register_assert_rewrite("tests.corpus_fixtures")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    from tests.tiny_models import make_bert_preset

    return make_bert_preset(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_hub_dir(tmp_path_factory):
    from tests.tiny_models import make_hub_text_encoder

    return make_hub_text_encoder(tmp_path_factory.mktemp("tiny_hub") / "use")


@pytest.fixture(scope="session")
def tiny_hub_pair(tmp_path_factory):
    from tests.tiny_models import make_hub_bert_pair

    return make_hub_bert_pair(tmp_path_factory.mktemp("tiny_hub_pair"))


@pytest.fixture(autouse=True)
def _isolated_models_dir(tmp_path, monkeypatch):
    """Tuned models listed by a test come from its own tmp folder, never the developer's workspace."""
    monkeypatch.setenv("SEMSIM_MODELS_DIR", str(tmp_path / "models"))


@pytest.fixture(scope="module")
def one_faiss_thread():
    """FAISS on one OpenMP thread for a module (opted into with pytest.mark.usefixtures): on a small
    shared machine its threads spin against each other, and these tests need no parallelism."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)
