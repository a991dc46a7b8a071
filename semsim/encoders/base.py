"""The one encoder interface: a Python preprocessor (texts -> padded arrays) plus a trainable Keras model."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semsim._env import preload_backend
from semsim.encoders.config import FORMAT_VERSION
from semsim.encoders.text_batches import encode_in_length_order, validate_texts  # noqa: F401  (validate_texts: re-exported)
from semsim.names import CONFIG_FILE

preload_backend()

ProgressFn = Callable[[int, int], None]


def jax_on_gpu() -> bool:
    """Whether the JAX backend computes on a GPU (asked once; the answer cannot change in a process)."""
    global _JAX_ON_GPU
    if _JAX_ON_GPU is None:
        import jax

        _JAX_ON_GPU = any(device.platform == "gpu" for device in jax.devices())
    return _JAX_ON_GPU


_JAX_ON_GPU: bool | None = None


def pad_to_bucket(length: int, multiple: int | None = None, cap: int | None = None) -> int:
    """The padded length of a batch whose longest text has `length` tokens.

    TensorFlow's graph (traced with open dimensions) takes any length, and padding short job titles from ~5 to 8
    tokens costs ~40% of the compute on a CPU, so there the padding is exact. JAX compiles one program
    per input shape, so lengths are bucketed: on a CPU to a multiple of 8; on a GPU to a power of two
    from 32, since there a compile costs far more than padding does: on an H200, one compile of the
    MiniLM train step took ~16 s and one step ~6 ms, and the job-title recipe's 9 lengths become 3.
    """
    if multiple is None:
        import keras

        if keras.backend.backend() == "jax" and jax_on_gpu():
            padded = 32
            while padded < length:
                padded *= 2
            return min(padded, cap) if cap else padded
        multiple = 8 if keras.backend.backend() == "jax" else 1
    padded = max(multiple, -(-length // multiple) * multiple)
    return min(padded, cap) if cap else padded


class Encoder:
    """A sentence encoder.

    `preprocess(texts)` turns a batch of strings into a dict of arrays padded only to the batch's
    longest text; `model` maps that dict to L2-normalised embeddings of width `dim` and is an ordinary
    trainable Keras model, so every training objective works on every source. `encode` sorts texts by
    length before batching (short job titles are never padded to a fixed 128) and restores the order.
    """

    #: Which loader reads a saved folder back (written to semsim.json).
    source: str = "base"
    #: What the forward pass computes in (semsim.encoders.precision); the vectors are float32 always.
    precision: str = "float32"
    precision_reason: str = ""

    def __init__(self, *, spec: str, name: str, model: Any, dim: int, fingerprint: str,
                 description: str = ""):
        self.spec = spec
        self.name = name
        self.model = model
        self.dim = int(dim)
        self.fingerprint = fingerprint
        self.description = description
        self.base_spec: str | None = None  # set on tuned models: what they were fine-tuned from
        self._predict_fn = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, dim={self.dim})"

    # -- to be provided by each source --------------------------------------------------------
    def preprocess(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Tokenise a batch into the model's input dict."""
        raise NotImplementedError

    def save(self, folder: str | os.PathLike) -> None:
        """Write everything needed to load this encoder back from `folder` (which exists)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved")

    @property
    def multilingual(self) -> bool:
        return False

    # -- shared behaviour ---------------------------------------------------------------------
    def _predict(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        if self._predict_fn is None:
            self._predict_fn = make_inference_fn(self.model)
        return np.asarray(self._predict_fn(inputs), dtype=np.float32)

    def encode(self, texts: Sequence[str] | str, batch_size: int = 64,
               progress: ProgressFn | None = None) -> np.ndarray:
        """Embed texts -> float32 array (n, dim), rows L2-normalised, in the input order."""
        # Already unit rows: every model ends in layers.L2Normalize.
        return encode_in_length_order(texts, self.dim, batch_size, lambda batch: self._predict(self.preprocess(batch)),
                                      progress)

    def similarity(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None) -> np.ndarray:
        """Cosine similarity matrix between two lists (or a list and itself)."""
        a = self.encode(texts_a)
        b = a if texts_b is None else self.encode(texts_b)
        return np.clip(a @ b.T, -1.0, 1.0)

    def reset_compiled(self) -> None:
        """Forget the compiled inference function (call after the weights were replaced)."""
        self._predict_fn = None

    def write_config(self, folder: str | os.PathLike, **extra: Any) -> None:
        config = {"format_version": FORMAT_VERSION, "source": self.source, "spec": self.spec,
                  "name": self.name, "dim": self.dim, "fingerprint": self.fingerprint,
                  "base_spec": self.base_spec, **extra}
        Path(folder, CONFIG_FILE).write_text(json.dumps(config, indent=2))


def make_inference_fn(model: Any) -> Callable[[dict[str, np.ndarray]], Any]:
    """A compiled forward pass for the active Keras backend.

    TensorFlow: a tf.function whose input signature leaves every dimension open, so one trace serves
    every batch size and length.
    JAX: a jitted stateless call; lengths are bucketed by the preprocessors to bound recompiles.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        compiled: dict[str, Any] = {}

        def run(inputs):
            # Traced once, on the first batch, with every dimension unknown: reduce_retracing alone traces
            # again when it first sees a second length and again at the first short last batch (about
            # 2 s each for MiniLM on 2 cores, a third of the first 4,000 STS-B sentences' encoding time).
            if "forward" not in compiled:
                signature = {key: tf.TensorSpec([None] * np.ndim(value), tf.as_dtype(np.asarray(value).dtype))
                             for key, value in inputs.items()}
                compiled["forward"] = tf.function(lambda batch: model(batch, training=False),
                                                  input_signature=[signature])
            return compiled["forward"](inputs).numpy()

        return run
    if backend == "jax":
        import jax

        @jax.jit
        def forward(trainable, non_trainable, inputs):
            outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
            return outputs

        def run(inputs):
            trainable = [v.value for v in model.trainable_variables]
            non_trainable = [v.value for v in model.non_trainable_variables]
            return np.asarray(forward(trainable, non_trainable, inputs))

        return run
    return lambda inputs: keras.ops.convert_to_numpy(model(inputs, training=False))
