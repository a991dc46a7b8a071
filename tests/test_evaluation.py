"""semsim.evaluation: the pair retrieval evaluator, and a package light enough to import for metrics alone."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from semsim.evaluation import PairRetrievalEvaluator


class LookupEncoder:
    """Returns fixed unit vectors, so every similarity (and every rank) is known in advance."""

    spec = "lookup"

    def __init__(self, vectors: dict[str, tuple[float, ...]]):
        self.vectors = {text: np.asarray(v, dtype=np.float32) for text, v in vectors.items()}

    def encode(self, texts, batch_size: int = 64, progress=None) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts])


def test_pair_retrieval_ranks_each_text_b_among_all_of_them():
    encoder = LookupEncoder({
        "a1": (1, 0), "b1": (1, 0),          # own b first; b4 ties with it, and a tie does not demote
        "a2": (0, 1), "b2": (0.6, 0.8),      # b3 is nearer: own b second
        "a3": (0.6, 0.8), "b3": (0, 1),      # b2 is nearer: own b second
        "a4": (1, 0), "b4": (1, 0),
    })
    frame = pd.DataFrame({"text_a": ["a1", "a2", "a3", "a4"], "text_b": ["b1", "b2", "b3", "b4"]})
    result = PairRetrievalEvaluator.from_frame(frame, name="toy")(encoder)
    assert result["dataset"] == "toy" and result["n_pairs"] == 4 and result["primary_metric"] == "recall@1"
    assert result["recall@1"] == pytest.approx(2 / 4)
    assert result["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 2 + 1) / 4)


def test_pair_retrieval_refuses_unequal_or_empty_pairs():
    with pytest.raises(ValueError, match="same length"):
        PairRetrievalEvaluator(["a"], ["b", "c"])
    with pytest.raises(ValueError, match="no pairs"):
        PairRetrievalEvaluator([], [])


def test_importing_the_evaluators_loads_no_faiss_tensorflow_or_streamlit():
    code = ("import json, sys\nimport semsim.evaluation\n"
            "print(json.dumps(sorted(m for m in ('faiss', 'tensorflow', 'keras', 'streamlit') if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
