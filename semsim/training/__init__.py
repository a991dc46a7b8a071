"""Fine-tuning: requests (spec), a pair run's parts and recipes (parts), their data (inputs), batches, heads,
objectives, optimizers, the shared loop, the pair and classifier tasks, hard-negative mining (negatives),
callbacks and model cards.

Importing the package, `spec`, `parts` or `inputs` loads no Keras (the app and `semsim --help` read the requests);
the training functions load the backend when first used."""

from typing import Any

from semsim.training.spec import (
    ClassifierTrainingRequest,
    PairClassifierTrainingRequest,
    PairTrainingRequest,
    TrainingArguments,
    TrainingError,
)

_TASKS = {"train_pairs": "semsim.training.pairs", "train_classifier": "semsim.training.classify",
          "train_pair_classifier": "semsim.training.cross"}


def __getattr__(name: str) -> Any:
    # Why lazy: `from semsim.training import train_pairs` would otherwise start TensorFlow for every
    # reader of the request dataclasses.
    if name in _TASKS:
        import importlib

        from semsim._env import preload_backend

        preload_backend()  # before keras is imported: keeps TensorFlow's start-up logs quiet
        return getattr(importlib.import_module(_TASKS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ClassifierTrainingRequest", "PairClassifierTrainingRequest", "PairTrainingRequest", "TrainingArguments",
           "TrainingError", "train_classifier", "train_pair_classifier", "train_pairs"]
