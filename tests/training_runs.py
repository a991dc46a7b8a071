"""Test shorthand: a training request with fast settings, trained on frames the test makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from semsim.training import ClassifierTrainingRequest, PairTrainingRequest, train_classifier, train_pairs
from semsim.training.inputs import load_labelled_data, load_pair_data

# Large steps and no warm-up, so a tiny model learns something in two epochs.
FAST = {"epochs": 2, "batch_size": 16, "learning_rate": 5e-3, "warmup_ratio": 0.0, "patience": 5}


def pair_request(base: str, out: str | Path, **fields: Any) -> PairTrainingRequest:
    # No forgetting guard or STS-B rehearsal by default here: tiny models, and frames the test makes.
    return PairTrainingRequest(base=base, data="tiny-pairs", out=str(out), **{"evaluate_sts": False,
                                                                               "rehearsal": False, **FAST,
                                                                               **fields})


def fit_pairs(base: str, train: pd.DataFrame, out: str | Path, validation: pd.DataFrame | None = None,
              test: pd.DataFrame | None = None, **fields: Any) -> dict[str, Any]:
    """train_pairs on frames, through the same loading checks a CLI run makes."""
    request = pair_request(base, out, **fields)
    sources = {role: frame for role, frame in (("train", train), ("validation", validation), ("test", test))
               if frame is not None}
    return train_pairs(request, load_pair_data(request, sources))


def classifier_request(base: str, out: str | Path, **fields: Any) -> ClassifierTrainingRequest:
    return ClassifierTrainingRequest(base=base, data="tiny-reviews", out=str(out), **{**FAST, **fields})


def fit_classifier(base: str, train: pd.DataFrame, out: str | Path, validation: pd.DataFrame | None = None,
                   test: pd.DataFrame | None = None, **fields: Any) -> dict[str, Any]:
    request = classifier_request(base, out, **fields)
    sources = {role: frame for role, frame in (("train", train), ("validation", validation), ("test", test))
               if frame is not None}
    return train_classifier(request, load_labelled_data(request, sources))
