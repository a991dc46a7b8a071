"""Training callbacks: epoch seeding, validation metric, live JSON-lines progress, cancellation, TensorBoard."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

if TYPE_CHECKING:
    from semsim.training.batches import EpochSeededBatches


class SetEpoch(keras.callbacks.Callback):
    """Tells the batches which epoch starts, so each epoch's order comes from (seed, epoch)."""

    def __init__(self, batches: EpochSeededBatches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)


class ValidationMetric(keras.callbacks.Callback):
    """Runs an evaluator at each epoch end and puts its primary metric into logs as `val_<metric>`,
    where EarlyStopping and the progress log pick it up. Must come before them in the callback list."""

    def __init__(self, evaluate: Callable[[], dict[str, Any]]):
        super().__init__()
        self.evaluate = evaluate
        self.history: list[dict[str, Any]] = []

    def on_epoch_end(self, epoch, logs=None):
        result = self.evaluate()
        metric = result["primary_metric"]
        if logs is not None:
            logs[f"val_{metric}"] = float(result[metric])
        self.history.append({"epoch": epoch + 1, **result})


class JsonlProgress(keras.callbacks.Callback):
    """Appends progress events to a JSON-lines file the app follows live, and draws a terminal bar.

    Step events: step, epoch, loss, learning rate, examples/s, ETA. Epoch events add the validation
    metric. Writes are line-buffered and flushed, so a reader never sees half a line for long.
    """

    def __init__(self, path: Path, total_steps: int, steps_per_epoch: int, batch_size: int,
                 every_seconds: float = 1.0, show_bar: bool = False, initial_epoch: int = 0):
        super().__init__()
        self.path, self.total_steps, self.steps_per_epoch = path, total_steps, steps_per_epoch
        self.batch_size, self.every_seconds, self.show_bar = batch_size, every_seconds, show_bar
        self.epoch = initial_epoch
        self._bar = None

    def write(self, event: dict[str, Any]) -> None:
        event = {"time": round(time.time(), 3), **event}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")

    def _learning_rate(self) -> float | None:
        try:
            rate = self.model.optimizer.learning_rate
            return float(keras.ops.convert_to_numpy(rate))
        except (AttributeError, TypeError, ValueError):
            return None

    def on_train_begin(self, logs=None):
        self.started = time.time()
        self.last_write = 0.0
        self.steps_done_at_start = self.epoch * self.steps_per_epoch
        self.write({"event": "start", "total_steps": self.total_steps, "steps_per_epoch": self.steps_per_epoch,
                    "resumed_from_epoch": self.epoch})
        if self.show_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total_steps, initial=self.steps_done_at_start, unit="step",
                             desc="training", leave=False)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self.epoch * self.steps_per_epoch + batch + 1
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            if logs and "loss" in logs:
                self._bar.set_postfix(loss=f"{float(logs['loss']):.4f}")
        now = time.time()
        if now - self.last_write < self.every_seconds and step < self.total_steps:
            return
        self.last_write = now
        elapsed = now - self.started
        done_here = step - self.steps_done_at_start
        rate = done_here / elapsed if elapsed > 0 else 0.0
        self.write({"event": "step", "step": step, "epoch": self.epoch + 1,
                    "loss": float(logs.get("loss", float("nan"))) if logs else None,
                    "learning_rate": self._learning_rate(),
                    "examples_per_s": round(rate * self.batch_size, 2),
                    "eta_s": round((self.total_steps - step) / rate, 1) if rate > 0 else None})

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float)}
        self.write({"event": "epoch", "epoch": epoch + 1, "step": (epoch + 1) * self.steps_per_epoch, **logs})

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()


class CancelOnFile(keras.callbacks.Callback):
    """Stops training after the current batch once a cancel file appears (the app's Cancel button)."""

    def __init__(self, path: Path | None):
        super().__init__()
        self.path = path
        self.cancelled = False

    def on_train_batch_end(self, batch, logs=None):
        if self.path is not None and self.path.exists():
            self.cancelled = True
            self.model.stop_training = True


class EpochScalars(keras.callbacks.Callback):
    """Epoch-level TensorBoard scalars written with the tensorboard package alone, no TensorFlow.

    Why: Keras' TensorBoard callback writes through tf.summary, so a JAX-only install (a GPU box
    without TensorFlow) would fail at the first epoch. Same layout as Keras': `train/` and
    `validation/` runs with `epoch_<name>` tags, val_ logs going to `validation/` without the prefix."""

    def __init__(self, log_dir: str | Path):
        super().__init__()
        self.log_dir = Path(log_dir)
        self._writers: dict[str, Any] = {}

    def _writer(self, run: str) -> Any:
        if run not in self._writers:
            from tensorboard.summary import Writer

            self._writers[run] = Writer(str(self.log_dir / run))
        return self._writers[run]

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            if not isinstance(value, int | float):
                continue
            run, tag = ("validation", name[4:]) if name.startswith("val_") else ("train", name)
            self._writer(run).add_scalar(f"epoch_{tag}", float(value), step=epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


def tensorboard_callback(log_dir: str | Path) -> keras.callbacks.Callback:
    """Keras' TensorBoard callback where TensorFlow is installed, else EpochScalars."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is not None:
        return keras.callbacks.TensorBoard(log_dir=str(log_dir), update_freq="epoch")
    return EpochScalars(log_dir)
