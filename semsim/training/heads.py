"""Heads that turn an encoder into the model fit() trains: a Siamese pair head, a classifier head."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="semsim")
class PairHead(keras.Model):
    """Siamese bi-encoder: one shared encoder embeds both sides; the head compares them.

    `mode="cosine"` returns one cosine per pair, `mode="matrix"` the scaled (batch, batch) similarity
    matrix used for in-batch negatives, `mode="similarities"` the unscaled cosine matrix of text_a against
    every row of b (text_b, then any hard negatives), from which a multi-task loss takes what its
    objective needs (MultiTaskObjective).

    `joint=True`: both sides come padded to one length (pair_batch_inputs), and the encoder embeds them
    in one pass over 2 x batch rows. Rows never interact inside the encoder, so the vectors are the
    ones two passes give; what changes is one program instead of two, with half the kernel launches.
    """

    def __init__(self, encoder_model: keras.Model, mode: str = "cosine", scale: float = 20.0,
                 joint: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.encoder_model = encoder_model
        self.mode = mode
        self.scale = scale
        self.joint = joint
        # Matryoshka (semsim.training.matryoshka): compare the vectors cut to each of these prefix
        # lengths, re-normalised, and stack the results on a new first axis; None compares them whole.
        self.dims: tuple[int, ...] | None = None

    def call(self, inputs, training=False):
        if self.joint:
            n = ops.shape(next(iter(inputs["a"].values())))[0]
            both = {name: ops.concatenate([inputs["a"][name], inputs["b"][name]], axis=0) for name in inputs["a"]}
            vectors = self.encoder_model(both, training=training)
            a, b = vectors[:n], vectors[n:]
        else:
            a = self.encoder_model(inputs["a"], training=training)
            b = self.encoder_model(inputs["b"], training=training)
        if self.dims:
            return ops.stack([self._compare(_prefix(a, dim), _prefix(b, dim)) for dim in self.dims], axis=0)
        return self._compare(a, b)

    def _compare(self, a, b):
        if self.mode == "matrix":
            return self.scale * ops.matmul(a, ops.transpose(b))
        if self.mode == "similarities":
            return ops.matmul(a, ops.transpose(b))
        return ops.sum(a * b, axis=-1)


def _prefix(vectors, dim: int):
    """The first `dim` dimensions, re-normalised to unit length (computed in float32)."""
    cut = ops.cast(vectors[:, :dim], "float32")
    return cut / ops.maximum(ops.sqrt(ops.sum(ops.square(cut), axis=-1, keepdims=True)), 1e-12)


@keras.saving.register_keras_serializable(package="semsim")
class ClassifierHead(keras.Model):
    """Sentence vectors -> rescale -> dropout -> dense softmax.

    Encoder outputs are unit vectors; scaling by sqrt(dim) gives the dense layer inputs of order one,
    so the head learns at the small learning rates full fine-tuning uses.
    """

    def __init__(self, n_labels: int, dim: int, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.n_labels, self.dim, self.dropout_rate = n_labels, dim, dropout
        self.rescale = keras.layers.Rescaling(math.sqrt(dim), name="rescale")
        self.dropout = keras.layers.Dropout(dropout, name="dropout")
        self.dense = keras.layers.Dense(n_labels, activation="softmax", name="classifier", dtype="float32")

    def call(self, vectors, training=False):
        return self.dense(self.dropout(self.rescale(vectors), training=training))


class EncoderWithHead(keras.Model):
    """Full fine-tuning: gradients flow from the head through the encoder."""

    def __init__(self, encoder_model: keras.Model, head: ClassifierHead, **kwargs):
        super().__init__(**kwargs)
        self.encoder_model, self.head = encoder_model, head

    def call(self, inputs, training=False):
        return self.head(self.encoder_model(inputs, training=training), training=training)
