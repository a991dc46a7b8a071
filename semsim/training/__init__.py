"""Fine-tuning: requests (spec), their data (inputs), batches, heads, objectives, optimizers, the shared
loop, the pair and classifier tasks, callbacks and model cards.

`semsim.training.spec` and `semsim.training.inputs` import no Keras (the app and the CLI's --help read
them); importing this package itself loads the backend."""

from semsim._env import preload_backend

preload_backend()  # before any submodule imports keras: keeps TensorFlow's start-up logs quiet

# ruff: noqa: E402

from semsim.training.classify import train_classifier
from semsim.training.pairs import train_pairs
from semsim.training.spec import (
    ClassifierTrainingRequest,
    PairTrainingRequest,
    TrainingArguments,
    TrainingError,
)

__all__ = ["ClassifierTrainingRequest", "PairTrainingRequest", "TrainingArguments", "TrainingError",
           "train_classifier", "train_pairs"]
