"""Training batches: an epoch-seeded, group-aware batch order, pair-batch inputs, and rehearsal mixing."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import pandas as pd

from semsim.training.spec import TrainingError


class EpochSeededBatches(keras.utils.PyDataset):
    """Batches in an order drawn from (seed, epoch), so a resumed run sees the same batches as an
    uninterrupted one. `make_batch(indices)` turns row indices into (inputs, targets).

    `groups` (one label per row) keeps each batch within one group, as sentence-transformers does when
    it trains on several datasets at once: in-batch losses (CoSENT ranks every pair against every other
    pair of the batch; in-batch negatives) would otherwise compare scores or texts across datasets whose
    scales mean different things. Batches of all groups are then shuffled together.
    """

    def __init__(self, n_rows: int, batch_size: int, make_batch: Callable[[Any], tuple[Any, Any]],
                 seed: int, shuffle: bool = True, max_batches: int | None = None,
                 groups: Sequence[Any] | None = None):
        super().__init__(workers=1, use_multiprocessing=False)
        self.n_rows, self.batch_size, self.make_batch = n_rows, batch_size, make_batch
        self.seed, self.shuffle, self.max_batches = seed, shuffle, max_batches
        if groups is not None and len(groups) != n_rows:
            raise ValueError(f"groups has {len(groups)} labels for {n_rows} rows")
        # Group members in row order; a single group is the plain, ungrouped case.
        if groups is None:
            self.members = [np.arange(n_rows)]
        else:
            labels = np.asarray(groups)
            self.members = [np.flatnonzero(labels == label) for label in dict.fromkeys(labels.tolist())]
        self.n_batches = sum(math.ceil(len(rows) / batch_size) for rows in self.members)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        if len(self.members) == 1:
            order = rng.permutation(self.n_rows) if self.shuffle else np.arange(self.n_rows)
            self.batches = [order[i:i + self.batch_size] for i in range(0, self.n_rows, self.batch_size)]
            return
        batches = []
        for rows in self.members:
            rows = rng.permutation(rows) if self.shuffle else rows
            batches += [rows[i:i + self.batch_size] for i in range(0, len(rows), self.batch_size)]
        self.batches = [batches[i] for i in rng.permutation(len(batches))] if self.shuffle else batches

    def __len__(self) -> int:
        return min(self.n_batches, self.max_batches) if self.max_batches else self.n_batches

    def __getitem__(self, index: int):
        return self.make_batch(self.batches[index])

    def as_fit_input(self) -> Any:
        """What model.fit() should iterate.

        JAX: this PyDataset itself. TensorFlow: `Dataset.range(len(self)).map(...)`, each batch made in
        Python through tf.numpy_function, with every dimension left open (Keras' own PyDataset adapter
        fixes the sequence length from the first two batches, and a later, longer batch would fail).
        Not `Dataset.from_generator`: with it, every MiniLM training step on CPU took 1.7x longer
        (660 vs 390 ms, same batches), although fetching a batch took 1 ms. The dataset holds exactly
        one epoch, so fit() iterates it afresh every epoch and reads that epoch's order, set by SetEpoch.
        """
        if keras.backend.backend() != "tensorflow":
            return self
        import tensorflow as tf

        first = self[0]
        structure = tf.nest.map_structure(lambda value: None, first)
        specs = [tf.convert_to_tensor(value) for value in tf.nest.flatten(first)]

        def as_numpy(value: Any) -> Any:
            array = np.asarray(value)
            if array.dtype.kind == "U":  # tf.numpy_function returns strings as bytes objects
                array = np.char.encode(array, "utf-8").astype(object)
            return array

        def fetch(index: Any) -> list[Any]:
            return [as_numpy(value) for value in tf.nest.flatten(self[int(index)])]

        def batch(index: Any) -> Any:
            values = tf.numpy_function(fetch, [index], [spec.dtype for spec in specs], stateful=True)
            values = [tf.ensure_shape(value, [None] * spec.shape.rank) for value, spec in zip(values, specs, strict=True)]
            return tf.nest.pack_sequence_as(structure, values)

        return tf.data.Dataset.range(len(self)).map(batch).prefetch(2)


def joint_pair_batches() -> bool:
    """Whether pair batches pad both sides to one length and embed them in one pass (PairHead joint):
    with JAX on a GPU.

    Why there: JAX compiles one program per input shape, and on an H200 one compile of the MiniLM train
    step took ~16 s while a step took ~6 ms. Padded apart, the two sides of the job-title + STS-B
    rehearsal batches come in 22 (length a, length b) combinations; padded together to a GPU's buckets
    (pad_to_bucket), in 3. One pass also halves the kernel launches that bound such a small step. On a
    CPU the extra padding cost more than it saved (README: slower on both backends), so there each side
    keeps its own length."""
    from semsim.encoders.base import jax_on_gpu

    return keras.backend.backend() == "jax" and jax_on_gpu()


def pair_batch_inputs(encoder: Any, texts_a: list[str], texts_b: list[str], joint: bool) -> dict[str, Any]:
    """{"a": ..., "b": ...} model inputs for a batch of pairs; `joint`: both padded to one length."""
    if not joint:
        return {"a": encoder.preprocess(texts_a), "b": encoder.preprocess(texts_b)}
    both = encoder.preprocess(texts_a + texts_b)
    n = len(texts_a)
    return {"a": {name: value[:n] for name, value in both.items()},
            "b": {name: value[n:] for name, value in both.items()}}


def add_rehearsal(train: pd.DataFrame, rehearsal: pd.DataFrame, rehearsal_range: tuple[float, float],
                  score_range: tuple[float, float]) -> pd.DataFrame:
    """Domain pairs plus general-domain "rehearsal" pairs, against forgetting general similarity.

    Rehearsal scores are mapped linearly from their own range into the training range, and a `group`
    column keeps the two sources in separate batches (see EpochSeededBatches).
    """
    (low, high), (to_low, to_high) = rehearsal_range, score_range
    if not high > low:
        raise TrainingError(f"rehearsal score range {rehearsal_range} is empty")
    extra = rehearsal[["text_a", "text_b", "score"]].copy()
    extra["score"] = to_low + (extra["score"].astype("float64") - low) / (high - low) * (to_high - to_low)
    return pd.concat([train.assign(group="train"), extra.assign(group="rehearsal")], ignore_index=True)
