"""A text classifier: an encoder plus a dropout + dense head, saved and loaded as one folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from semsim.encoders import EncoderError, load_encoder, recover_model_folder
from semsim.encoders.base import Encoder
from semsim.encoders.config import FORMAT_VERSION, read_config
from semsim.names import CONFIG_FILE

HEAD_WEIGHTS = "head.weights.h5"


class TextClassifier:
    """`predict_proba(texts)` -> (n, n_labels) probabilities; `predict(texts)` -> labels."""

    def __init__(self, encoder: Encoder, head: Any, labels: list[str], mode: str, dropout: float = 0.1,
                 spec: str = ""):
        self.encoder, self.head, self.labels, self.mode = encoder, head, list(labels), mode
        self.dropout = dropout
        self.spec = spec or encoder.spec

    @classmethod
    def build(cls, encoder: Encoder, labels: list[str], mode: str, dropout: float = 0.1) -> TextClassifier:
        from semsim.training.heads import ClassifierHead

        head = ClassifierHead(len(labels), encoder.dim, dropout=dropout)
        head(np.zeros((1, encoder.dim), dtype="float32"))
        return cls(encoder, head, labels, mode, dropout)

    def predict_proba(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        vectors = self.encoder.encode(texts, batch_size=batch_size)
        return np.asarray(self.head.predict(vectors, batch_size=256, verbose=0), dtype=np.float32)

    def predict(self, texts: list[str], batch_size: int = 64) -> tuple[list[str], np.ndarray]:
        probabilities = self.predict_proba(texts, batch_size)
        return [self.labels[i] for i in probabilities.argmax(axis=1)], probabilities

    def save(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        (folder / "encoder").mkdir(parents=True, exist_ok=True)
        self.encoder.save(folder / "encoder")
        self.head.save_weights(str(folder / HEAD_WEIGHTS))
        config = {"format_version": FORMAT_VERSION, "task": "classifier", "labels": self.labels,
                  "mode": self.mode, "dropout": self.dropout, "dim": self.encoder.dim,
                  "base_spec": self.encoder.spec, "fingerprint": self.encoder.fingerprint}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))


def load_classifier(folder: str | os.PathLike) -> TextClassifier:
    """Load a classifier folder; weights only (h5), nothing executable is deserialised."""
    from semsim.training.heads import ClassifierHead

    recover_model_folder(str(folder))
    folder = Path(folder)
    config = read_config(folder)
    if config.get("task") != "classifier":
        raise EncoderError(f"{folder} is an encoder, not a classifier (train one with "
                           f"`semsim train sentiment`)")
    labels = config.get("labels")
    if not isinstance(labels, list) or len(labels) < 2:
        raise EncoderError(f"{folder / CONFIG_FILE} has no usable label list")
    encoder = load_encoder(str(folder / "encoder"), cache=False)
    head = ClassifierHead(len(labels), encoder.dim, dropout=float(config.get("dropout", 0.1)))
    head(np.zeros((1, encoder.dim), dtype="float32"))
    head.load_weights(str(folder / HEAD_WEIGHTS))
    return TextClassifier(encoder, head, labels, config.get("mode", "full"), spec=str(folder))
