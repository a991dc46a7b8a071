"""Training batches: an epoch-seeded, group-aware, weighted batch order, pair-batch inputs, and the parts' rows."""

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

    `weights` (group label -> weight) draws round(weight x rows) rows of a group each epoch: a seeded
    subset below 1, every row and then more above (sentence-transformers' proportional sampling, scaled).
    `keys` (one tuple of hashables per row, or None) keep rows that share any key out of one batch, as
    sentence-transformers' NoDuplicatesBatchSampler does for in-batch negatives: a repeated text, or two
    rows of one group_id, would make a true positive count as a negative. Each group keeps its number of
    batches every epoch, so the epoch's length never changes.
    """

    def __init__(self, n_rows: int, batch_size: int, make_batch: Callable[[Any], tuple[Any, Any]],
                 seed: int, shuffle: bool = True, max_batches: int | None = None,
                 groups: Sequence[Any] | None = None, weights: dict[Any, float] | None = None,
                 keys: Sequence[tuple[Any, ...] | None] | None = None):
        super().__init__(workers=1, use_multiprocessing=False)
        self.n_rows, self.batch_size, self.make_batch = n_rows, batch_size, make_batch
        self.seed, self.shuffle, self.max_batches = seed, shuffle, max_batches
        if groups is not None and len(groups) != n_rows:
            raise ValueError(f"groups has {len(groups)} labels for {n_rows} rows")
        if keys is not None and len(keys) != n_rows:
            raise ValueError(f"keys has {len(keys)} entries for {n_rows} rows")
        self.keys = keys
        # Group members in row order; a single group is the plain, ungrouped case.
        if groups is None:
            self.labels, self.members = [None], [np.arange(n_rows)]
        else:
            labels = np.asarray(groups)
            self.labels = list(dict.fromkeys(labels.tolist()))
            self.members = [np.flatnonzero(labels == label) for label in self.labels]
        weights = weights or {}
        self.draws = [max(1, round(len(rows) * float(weights.get(label, 1.0))))
                      for label, rows in zip(self.labels, self.members, strict=True)]
        self.group_batches = [math.ceil(draw / batch_size) for draw in self.draws]
        self.keyed = [keys is not None and keys[int(rows[0])] is not None if len(rows) else False
                      for rows in self.members]
        self.n_batches = sum(self.group_batches)
        self.set_epoch(0)

    def _draw(self, rows: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
        """`count` of `rows`: whole shuffled passes, then a shuffled part of one more."""
        if not self.shuffle:
            return np.resize(rows, count)
        passes = [rng.permutation(rows) for _ in range(math.ceil(count / len(rows)))]
        return np.concatenate(passes)[:count]

    def _no_duplicate_batches(self, rows: np.ndarray, n_batches: int) -> list[np.ndarray]:
        """`n_batches` batches of `rows`, none holding two rows that share a key. A row that clashes with
        the batch being filled goes to the next batch with room for it; one that fits nowhere is left out
        of this epoch, and an empty batch takes a row of the fullest one (both rare)."""
        keys = self.keys
        batches: list[list[int]] = [[] for _ in range(n_batches)]
        taken: list[set[Any]] = [set() for _ in range(n_batches)]
        current = 0
        for row in rows.tolist():
            own = keys[row] or ()
            while current < n_batches and len(batches[current]) >= self.batch_size:
                current += 1
            for j in range(current, n_batches):
                if len(batches[j]) < self.batch_size and not taken[j].intersection(own):
                    batches[j].append(row)
                    taken[j].update(own)
                    break
        for batch in batches:
            if not batch:
                fullest = max(batches, key=len)
                batch.append(fullest.pop())
        return [np.asarray(batch) for batch in batches]

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        if len(self.members) == 1 and not self.keyed[0] and self.draws[0] == self.n_rows:
            order = rng.permutation(self.n_rows) if self.shuffle else np.arange(self.n_rows)
            self.batches = [order[i:i + self.batch_size] for i in range(0, self.n_rows, self.batch_size)]
            self.batch_groups = [0] * len(self.batches)
            return
        batches, owners = [], []
        for group, (rows, count, n_batches) in enumerate(zip(self.members, self.draws, self.group_batches,
                                                             strict=True)):
            rows = self._draw(rows, count, rng)
            if self.keyed[group]:
                made = self._no_duplicate_batches(rows, n_batches)
            else:
                made = [rows[i:i + self.batch_size] for i in range(0, len(rows), self.batch_size)]
            batches += made
            owners += [group] * len(made)
        order = rng.permutation(len(batches)) if self.shuffle else np.arange(len(batches))
        self.batches = [batches[i] for i in order]
        self.batch_groups = [owners[i] for i in order]

    def steps_per_group(self) -> dict[Any, int]:
        """How many of this epoch's batches (within max_batches) each group label gets."""
        counts = dict.fromkeys(self.labels, 0)
        for group in self.batch_groups[:len(self)]:
            counts[self.labels[group]] += 1
        return counts

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


def part_table(parts: Sequence[Any]) -> pd.DataFrame:
    """Every part's rows in one table for EpochSeededBatches: text_a, text_b, negative ("" when the part
    has none), target (the score mapped from the part's range onto [0, 1]; 0 for unscored parts), part
    (its index, the batches' group) and keys (the texts and group_id an mnrl batch may hold once each).

    Each part keeps its own scale: a rehearsal pair scoring 4.2 of 5 becomes 0.84, comparable with the
    domain's 0..1 only within its own batches, which is where CoSENT compares them."""
    tables = []
    for index, loaded in enumerate(parts):
        frame = loaded.frame
        if loaded.part.unscored:
            target = np.zeros(len(frame))
        else:
            low, high = loaded.score_range
            if not high > low:
                raise TrainingError(f"the score range {loaded.score_range} of {loaded.name} is empty")
            target = (frame["score"].to_numpy("float64") - low) / (high - low)
        negative = frame["negative"].astype(str) if loaded.part.unscored and "negative" in frame else ""
        table = pd.DataFrame({"text_a": frame["text_a"].astype(str).to_numpy(),
                              "text_b": frame["text_b"].astype(str).to_numpy(),
                              "negative": negative if isinstance(negative, str) else negative.to_numpy(),
                              "target": target.astype("float32"), "part": index})
        if loaded.part.unscored:
            group_ids = frame["group_id"].astype(str).to_numpy() if "group_id" in frame else None
            table["keys"] = [tuple(x for x in (a, b, n, ("group_id", g) if g is not None else None) if x)
                             for a, b, n, g in zip(table["text_a"], table["text_b"], table["negative"],
                                                   group_ids if group_ids is not None else [None] * len(table),
                                                   strict=True)]
        else:
            table["keys"] = None
        tables.append(table)
    return pd.concat(tables, ignore_index=True)
