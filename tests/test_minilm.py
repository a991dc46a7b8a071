"""The bundled all-MiniLM-L6-v2 through keras-hub matches sentence-transformers, vector for vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsim.encoders import load_encoder

FIXTURE = Path(__file__).parent / "fixtures" / "minilm_reference.npz"  # scripts/make_minilm_reference.py

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def minilm():
    return load_encoder("minilm")


def test_parity_with_sentence_transformers(minilm):
    reference = np.load(FIXTURE, allow_pickle=False)
    ours = minilm.encode(reference["sentences"].tolist(), batch_size=8)
    cosines = np.sum(ours * reference["embeddings"], axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.9999, f"{reference['sentences'][worst]!r}: cosine {cosines.min():.6f}"


def test_job_titles_are_padded_only_to_their_own_length(minilm):
    from semsim.encoders.base import pad_to_bucket

    inputs = minilm.preprocess(["nurse", "data scientist"])
    assert inputs["token_ids"].shape[1] == pad_to_bucket(4)  # [CLS] data scientist [SEP]


def test_minilm_knows_which_titles_are_close(minilm):
    similarity = minilm.similarity(["data scientist", "machine learning engineer", "registered nurse"])
    assert similarity[0, 1] > similarity[0, 2] + 0.2
