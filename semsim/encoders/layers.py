"""Small serialisable Keras layers shared by encoders and training heads (Keras 3 ops only)."""

from __future__ import annotations

from semsim._env import preload_backend

preload_backend()  # before Keras is imported, so TensorFlow's C++ start-up logs stay quiet

# ruff: noqa: E402

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="semsim")
class MaskedPooling(keras.layers.Layer):
    """Mean over non-padding tokens, or the first ([CLS]) token."""

    def __init__(self, mode: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("mean", "cls"):
            raise ValueError(f"pooling mode must be 'mean' or 'cls', not {mode!r}")
        self.mode = mode

    def call(self, sequence, padding_mask):
        if self.mode == "cls":
            return sequence[:, 0, :]
        mask = ops.cast(ops.expand_dims(padding_mask, -1), sequence.dtype)
        total = ops.sum(sequence * mask, axis=1)
        # Clamp as sentence-transformers does, so an all-padding row gives zeros, not NaN.
        return total / ops.maximum(ops.sum(mask, axis=1), 1e-9)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="semsim")
class L2Normalize(keras.layers.Layer):
    """Row-wise L2 normalisation in float32, x / sqrt(max(|x|^2, epsilon)): cosine becomes a dot product.

    The one normalisation of every encoder's output (Encoder.encode does not normalise again). The
    default epsilon clamps the norm at 1e-12, as sentence-transformers does; USE passes its reference's.
    """

    def __init__(self, epsilon: float = 1e-24, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        inputs = ops.cast(inputs, "float32")
        return inputs * ops.rsqrt(ops.maximum(ops.sum(ops.square(inputs), axis=-1, keepdims=True), self.epsilon))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
