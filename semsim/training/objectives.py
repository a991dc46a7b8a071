"""Training objectives with one contract each: a head on top of the encoder, a loss, and how to batch."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="semsim")
class PairHead(keras.Model):
    """Siamese bi-encoder: one shared encoder embeds both sides; the head compares them.

    `mode="cosine"` returns one cosine per pair, `mode="matrix"` the scaled (batch, batch) similarity
    matrix used for in-batch negatives.

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

    def call(self, inputs, training=False):
        if self.joint:
            n = ops.shape(next(iter(inputs["a"].values())))[0]
            both = {name: ops.concatenate([inputs["a"][name], inputs["b"][name]], axis=0) for name in inputs["a"]}
            vectors = self.encoder_model(both, training=training)
            a, b = vectors[:n], vectors[n:]
        else:
            a = self.encoder_model(inputs["a"], training=training)
            b = self.encoder_model(inputs["b"], training=training)
        if self.mode == "matrix":
            return self.scale * ops.matmul(a, ops.transpose(b))
        return ops.sum(a * b, axis=-1)


class Objective:
    """What a training objective provides.

    - `task`: "pairs" or "classification";
    - `build_model(encoder_model, joint=False)`: the Keras model fit() trains (shares the encoder's
      weights); pair objectives take `joint`, PairHead's one-pass mode;
    - `loss(y_true, y_pred)`: a Keras loss on a whole batch;
    - `targets(scores_or_labels, batch_size)`: the y a batch is fitted against.
    """

    name = "objective"
    task = "pairs"
    needs_scores = True

    def build_model(self, encoder_model: keras.Model, joint: bool = False) -> keras.Model:
        return PairHead(encoder_model, mode="cosine", joint=joint)

    def loss(self, y_true, y_pred):
        raise NotImplementedError

    def targets(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype="float32")

    def describe(self) -> dict[str, Any]:
        return {"objective": self.name}


class AngularMSEObjective(Objective):
    """The classic recipe: cosine turned into angular similarity 1 - arccos(cos)/pi, MSE to the score.

    Scores must be scaled to [0, 1] first (the trainer does it from the declared score range).
    """

    name = "angular-mse"

    def loss(self, y_true, y_pred):
        cosine = ops.clip(ops.cast(y_pred, "float32"), -1.0 + 1e-7, 1.0 - 1e-7)
        angular = 1.0 - ops.arccos(cosine) / math.pi
        return ops.mean(ops.square(angular - ops.cast(y_true, "float32")))


class CoSENTObjective(Objective):
    """CoSENT: every pair ranked above another by gold score should also be ranked above by cosine.

    loss = log(1 + sum over (i, j) with score_i > score_j of exp(scale * (cos_j - cos_i))).
    Only the order of scores matters, so no rescaling of the score range is needed.
    """

    name = "cosent"

    def __init__(self, scale: float = 20.0):
        self.scale = scale

    def loss(self, y_true, y_pred):
        cosine = ops.cast(y_pred, "float32") * self.scale
        scores = ops.cast(y_true, "float32")
        differences = cosine[None, :] - cosine[:, None]  # [i, j] = cos_j - cos_i
        should_rank_higher = ops.cast(scores[:, None] > scores[None, :], "float32")
        # Pairs that are not ordered contribute exp(-inf) = 0; the leading 0 is the "1 +" term.
        masked = differences - (1.0 - should_rank_higher) * 1e12
        flat = ops.concatenate([ops.zeros((1,), "float32"), ops.reshape(masked, (-1,))])
        return ops.logsumexp(flat)

    def describe(self) -> dict[str, Any]:
        return {"objective": self.name, "scale": self.scale}


class MultipleNegativesRankingObjective(Objective):
    """In-batch negatives for unscored positive pairs: each text_a must pick its own text_b in the batch."""

    name = "mnrl"
    needs_scores = False

    def __init__(self, scale: float = 20.0):
        self.scale = scale

    def build_model(self, encoder_model: keras.Model, joint: bool = False) -> keras.Model:
        return PairHead(encoder_model, mode="matrix", scale=self.scale, joint=joint)

    def loss(self, y_true, y_pred):
        labels = ops.arange(ops.shape(y_pred)[0])
        return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=True))

    def targets(self, values: np.ndarray) -> np.ndarray:
        return np.zeros(len(values), dtype="float32")  # ignored: the diagonal is the target

    def describe(self) -> dict[str, Any]:
        return {"objective": self.name, "scale": self.scale}


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


class ClassificationObjective(Objective):
    """Sentiment / text classification: sparse categorical cross-entropy on a dropout + dense head.

    `build_model(encoder_model, head)`: with an encoder the whole stack trains (full fine-tuning);
    with None the head trains alone on precomputed vectors (frozen encoder, feature-based).
    """

    name = "classification"
    task = "classification"

    def build_model(self, encoder_model: keras.Model | None, head: ClassifierHead) -> keras.Model:
        return head if encoder_model is None else EncoderWithHead(encoder_model, head)

    def loss(self, y_true, y_pred):
        return ops.mean(keras.losses.sparse_categorical_crossentropy(y_true, y_pred))

    def targets(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype="int32")


PAIR_OBJECTIVES = {"cosent": CoSENTObjective, "angular-mse": AngularMSEObjective,
                   "mnrl": MultipleNegativesRankingObjective}


def make_objective(name: str) -> Objective:
    if name not in PAIR_OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(PAIR_OBJECTIVES)}")
    return PAIR_OBJECTIVES[name]()
