"""Fine-tuning: objectives, the training loop, callbacks and model cards."""

from semsim._env import preload_backend

preload_backend()  # before any submodule imports keras: keeps TensorFlow's start-up logs quiet

# ruff: noqa: E402

from semsim.training.trainer import TrainConfig, TrainingError, train_classifier, train_pairs

__all__ = ["TrainConfig", "TrainingError", "train_classifier", "train_pairs"]
