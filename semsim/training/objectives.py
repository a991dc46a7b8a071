"""Training objectives with one contract each: a head on top of the encoder, a loss, and how to batch."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from semsim.training.heads import ClassifierHead, EncoderWithHead, PairHead


class Objective:
    """What a training objective provides.

    - `build_model(encoder_model, joint=False)`: the Keras model fit() trains (shares the encoder's
      weights); pair objectives take `joint`, PairHead's one-pass mode;
    - `loss(y_true, y_pred)`: a Keras loss on a whole batch;
    - `targets(scores_or_labels, batch_size)`: the y a batch is fitted against.
    """

    name = "objective"
    needs_scores = True

    def build_model(self, encoder_model: keras.Model, joint: bool = False) -> keras.Model:
        return PairHead(encoder_model, mode="cosine", joint=joint)

    def loss(self, y_true, y_pred):
        raise NotImplementedError

    def targets(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype="float32")

    def matrix_loss(self, scores, similarities):
        """The loss from a batch's (batch, candidates) cosine matrix, text_a against [text_b; negatives]:
        what a multi-task run computes (MultiTaskObjective). Pair scores sit on its diagonal."""
        n = ops.shape(similarities)[0]
        return self.loss(scores, ops.diagonal(similarities[:, :n]))

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

    def matrix_loss(self, scores, similarities):
        # Candidates are every text_b of the batch and then every hard negative, as in
        # sentence-transformers' MultipleNegativesRankingLoss: row i's own text_b is column i.
        return self.loss(scores, self.scale * ops.cast(similarities, "float32"))

    def describe(self) -> dict[str, Any]:
        return {"objective": self.name, "scale": self.scale}


class MultiTaskObjective(Objective):
    """Several objectives in one compiled loss, one per part of a multi-task run.

    Every batch comes from one part (EpochSeededBatches' groups); its targets are (batch, 2): the scaled
    score, and the index of the part's objective. The model returns the cosine matrix of text_a against
    text_b (plus hard negatives), which feeds any of the pair objectives (matrix_loss); each objective's
    loss is computed and all but the batch's own are multiplied by zero, which costs a few (batch, batch)
    operations against an encoder pass, and keeps one program for every part."""

    name = "multi-task"

    def __init__(self, objectives: list[Objective]):
        self.objectives = list(objectives)

    def build_model(self, encoder_model: keras.Model, joint: bool = False) -> keras.Model:
        return PairHead(encoder_model, mode="similarities", joint=joint)

    def loss(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        scores, which = y_true[:, 0], y_true[0, 1]
        total = ops.zeros((), "float32")
        for index, objective in enumerate(self.objectives):
            chosen = ops.cast(ops.equal(which, float(index)), "float32")
            total = total + chosen * objective.matrix_loss(scores, y_pred)
        return total

    def targets(self, values: np.ndarray, index: int = 0) -> np.ndarray:
        values = np.asarray(values, dtype="float32")
        return np.stack([values, np.full(len(values), index, dtype="float32")], axis=1)

    def describe(self) -> dict[str, Any]:
        return {"objective": self.name, "objectives": [o.describe() for o in self.objectives]}


class ClassificationObjective(Objective):
    """Sentiment / text classification: sparse categorical cross-entropy on a dropout + dense head.

    `build_model(encoder_model, head)`: with an encoder the whole stack trains (full fine-tuning);
    with None the head trains alone on precomputed vectors (frozen encoder, feature-based).
    """

    name = "classification"

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
