"""Fine-tuning: objectives, the training loop, callbacks and model cards."""

from semsim.training.trainer import TrainConfig, TrainingError, train_classifier, train_pairs

__all__ = ["TrainConfig", "TrainingError", "train_classifier", "train_pairs"]
