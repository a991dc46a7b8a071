"""Matryoshka representation learning: any pair objective applied to each truncated prefix of the embedding.

As sentence-transformers' MatryoshkaLoss wraps a base loss: the encoder's vectors are cut to each of
`dims` (first d dimensions, re-normalised), the batch's base loss is computed on each cut, and the
losses are summed with their weights (1 each by default). With only the full dimension it is the
base loss itself. The wrapper changes no objective: it works on whatever objective a batch uses
(one pair objective, or the multi-task objective of a run with several parts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from semsim.training.heads import PairHead
from semsim.training.objectives import Objective


class MatryoshkaObjective(Objective):
    """`base`'s loss at each of `dims` (largest first), weighted and summed."""

    def __init__(self, base: Objective, dims: Sequence[int], weights: Sequence[float] | None = None):
        self.base = base
        self.dims = tuple(int(d) for d in dims)
        if not self.dims:
            raise ValueError("Matryoshka training needs at least one dimension")
        self.weights = tuple(float(w) for w in weights) if weights is not None else (1.0,) * len(self.dims)
        if len(self.weights) != len(self.dims):
            raise ValueError(f"{len(self.dims)} dimensions but {len(self.weights)} weights")
        self.name = base.name
        self.needs_scores = base.needs_scores

    def build_model(self, encoder_model: keras.Model, joint: bool = False) -> keras.Model:
        model = self.base.build_model(encoder_model, joint=joint)
        if not isinstance(model, PairHead):
            raise TypeError(f"Matryoshka training needs a pair head, {self.base.name} builds {type(model).__name__}")
        model.dims = self.dims
        return model

    def loss(self, y_true, y_pred):
        # y_pred stacks one prediction per dimension on its first axis (PairHead with dims).
        total = ops.zeros((), "float32")
        for index, weight in enumerate(self.weights):
            total = total + weight * ops.cast(self.base.loss(y_true, y_pred[index]), "float32")
        return total

    def targets(self, values: Any, *args: Any, **kwargs: Any) -> Any:
        return self.base.targets(values, *args, **kwargs)

    def describe(self) -> dict[str, Any]:
        return {**self.base.describe(), "matryoshka_dims": list(self.dims), "matryoshka_weights": list(self.weights)}


def matryoshka_for(objective: Objective, dims: Sequence[int], model_dim: int) -> MatryoshkaObjective:
    """`objective` wrapped for `dims`, each checked against the model's dimension."""
    from semsim.training.spec import TrainingError

    too_big = [d for d in dims if d > model_dim]
    if too_big:
        raise TrainingError(f"--matryoshka {','.join(map(str, dims))}: the model gives {model_dim}-d vectors, "
                            f"so {', '.join(map(str, too_big))} cannot be cut from them")
    return MatryoshkaObjective(objective, dims)
