"""The training loop every task shares: runtime set-up, compile + fit with the shared callbacks, the
run's working folder and its publication, weight merging, and what makes a tuned model a new model."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from semsim.names import CANCEL_FILE, CHECKPOINT_DIR, CONFIG_FILE, LOG_FILE, PARTIAL_SUFFIX, TENSORBOARD_DIR
from semsim.training.objectives import Objective
from semsim.training.spec import TrainingArguments, TrainingError


def interpolate_weights(base: list[Any], tuned: list[Any], alpha: float) -> list[Any]:
    """base + alpha * (tuned - base), tensor by tensor (the two lists come from the same architecture)."""
    if len(base) != len(tuned) or any(b.shape != t.shape for b, t in zip(base, tuned, strict=True)):
        raise TrainingError("cannot merge weights of two different architectures")
    return [b + alpha * (t - b) if np.issubdtype(b.dtype, np.floating) else t
            for b, t in zip(base, tuned, strict=True)]


# -- output folders -----------------------------------------------------------------------------
# In a run's working folder: whether it was started to replace a model already at --out, so that
# --resume alone may finish that replacement (the user said --overwrite when starting it).
RUN_FILE = "resume.json"


def partial_dir(out: Path) -> Path:
    """Where a run works until it finishes; kept after an interruption so --resume can continue."""
    return out.with_name(out.name + PARTIAL_SUFFIX)


def is_model_folder(folder: Path) -> bool:
    """A folder semsim wrote (a model or a classifier): the only kind --overwrite may replace."""
    return (folder / CONFIG_FILE).is_file()


def _replaces_existing(work: Path) -> bool:
    """True if the run in `work` was started with --overwrite over a model already at its --out."""
    try:
        return json.loads((work / RUN_FILE).read_text(encoding="utf-8")).get("replaces_existing") is True
    except (OSError, ValueError, AttributeError):
        return False


def prepare_output(out: Path, overwrite: bool, resume: bool) -> Path:
    """Refuse to clobber a model, a resumable run or a folder that is not a model; return the working folder.

    `resume` continues an interrupted run without --overwrite: the run's own folder is the one resumed,
    and a model at `out` that the run was started to replace (with --overwrite) may still be replaced."""
    from index.atomic import recover_folder
    from semsim.paths import OutputPathError, check_destination
    from semsim.training.checkpoint import TrainingCheckpoint

    work = partial_dir(out)
    try:
        check_destination(out, "the model to")
    except OutputPathError as exc:
        raise TrainingError(str(exc)) from None
    recover_folder(out)  # a publish that died between its renames is finished (or undone) first
    if resume and not TrainingCheckpoint(work / CHECKPOINT_DIR).exists():
        raise TrainingError(f"nothing to resume: {work / CHECKPOINT_DIR} holds no complete checkpoint")
    if out.exists():
        if not out.is_dir():
            raise TrainingError(f"{out} is a file, not a model folder; choose another --out")
        if not overwrite and not (resume and _replaces_existing(work)):
            raise TrainingError(f"{out} already exists; pass --overwrite to replace it")
        if any(out.iterdir()) and not is_model_folder(out):
            raise TrainingError(f"{out} is not a semsim model folder (no {CONFIG_FILE}); --overwrite replaces "
                                f"models only, so nothing in it was touched: choose another --out")
    if work.exists() and not resume:
        if not overwrite:
            raise TrainingError(f"an interrupted run is in {work}; pass --resume to continue it or "
                                f"--overwrite to start again")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if not resume:
        (work / RUN_FILE).write_text(json.dumps({"replaces_existing": out.exists()}), encoding="utf-8")
    return work


def publish_output(work: Path, out: Path) -> None:
    """Swap the finished folder into place with the publish index folders use (index.atomic): the old
    model stays loadable until the new one is complete, and a crash between the renames is finished or
    undone by the next access (recover_folder), never leaving the model only in a backup."""
    from index.atomic import publish_folder

    shutil.rmtree(work / CHECKPOINT_DIR, ignore_errors=True)
    (work / RUN_FILE).unlink(missing_ok=True)
    publish_folder(work, out)


def dataset_info(name: str, frame: pd.DataFrame, sha256: str | None = None) -> dict[str, Any]:
    if sha256 is None:
        from pandas.util import hash_pandas_object

        sha256 = hashlib.sha256(hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()[:16]
    return {"name": name, "rows": int(len(frame)), "sha256": sha256}


# -- the Keras side -----------------------------------------------------------------------------
def configure_runtime(config: TrainingArguments) -> dict[str, Any]:
    """Seed everything, make TF ops deterministic, and pick the precision policy before models exist."""
    from semsim.device import describe_device

    device = describe_device()
    import keras

    keras.utils.set_random_seed(config.seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    # auto: on a GPU, and on a CPU that computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere bfloat16
    # is emulated on CPU and slower than float32 (semsim.encoders.precision).
    from semsim.encoders.precision import native_bfloat16

    mixed = config.mixed_precision == "on" or (config.mixed_precision == "auto"
                                               and (device["gpu"] or native_bfloat16()))
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if mixed else "float32")
    return {**device, "mixed_precision": mixed, "keras_version": keras.__version__}


def keeps_precision_policy(train: Callable[..., Any]) -> Callable[..., Any]:
    """Put Keras' global precision policy back after a training run, which sets it (configure_runtime).

    Why: the policy is process-wide. Left at mixed_bfloat16 after a GPU run, every model the caller builds
    next (an encoder loaded for search in the same process, say) would compute in bfloat16."""
    @functools.wraps(train)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import keras

        policy = keras.mixed_precision.global_policy()
        try:
            return train(*args, **kwargs)
        finally:
            keras.mixed_precision.set_global_policy(policy)
    return wrapper


def run_fit(model: Any, objective: Objective, batches: Any, config: TrainingArguments, work: Path,
            evaluate: Callable[[], dict[str, Any]], show_progress: bool,
            learning_rate: float | None = None) -> dict[str, Any]:
    """compile + fit with the shared callbacks; returns what happened, for the model card."""
    import keras

    from semsim.training.callbacks import (
        CancelOnFile,
        JsonlProgress,
        SetEpoch,
        ValidationMetric,
        tensorboard_callback,
    )
    from semsim.training.checkpoint import TrainingCheckpoint, checkpoint_each_epoch
    from semsim.training.optimizers import make_optimizer

    steps_per_epoch = len(batches)
    total_steps = steps_per_epoch * config.epochs
    model.compile(optimizer=make_optimizer(config, total_steps, learning_rate), loss=objective.loss,
                  jit_compile=keras.backend.backend() == "jax")
    validation = ValidationMetric(evaluate)
    # The primary metric's name is known once; evaluate the base model up front to learn it.
    first = evaluate()
    monitor = f"val_{first['primary_metric']}"
    checkpoint = TrainingCheckpoint(work / CHECKPOINT_DIR)
    # After the baseline, so that it measures the base model: the epochs a checkpoint completed are
    # where fit() resumes.
    initial_epoch, resume_note = checkpoint.restore(model) if config.resume else (0, None)
    progress = JsonlProgress(work / LOG_FILE, total_steps, steps_per_epoch, config.batch_size,
                             show_bar=show_progress, initial_epoch=initial_epoch)
    progress.write({"event": "baseline", "metric": monitor, "value": float(first[first["primary_metric"]])})
    if resume_note:
        progress.write({"event": "warning", "message": resume_note})
    cancel = CancelOnFile(work / CANCEL_FILE)
    early = keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=config.patience,
                                          restore_best_weights=True, verbose=0)
    callbacks = [SetEpoch(batches), validation, early, progress, cancel,
                 tensorboard_callback(work / TENSORBOARD_DIR), checkpoint_each_epoch(checkpoint)]
    started = time.time()
    # shuffle=False: EpochSeededBatches already draws each epoch's order from (seed, epoch).
    history = model.fit(batches.as_fit_input(), epochs=config.epochs, callbacks=callbacks, verbose=0,
                        shuffle=False, initial_epoch=initial_epoch)
    seconds = time.time() - started
    epochs_run = len(history.history.get("loss", []))
    best_epoch = (early.best_epoch + 1) if early.best_weights is not None else None
    progress.write({"event": "end", "cancelled": cancel.cancelled, "seconds": round(seconds, 2),
                    "best_epoch": best_epoch})
    return {"epochs_run": epochs_run, "resumed_from_epoch": initial_epoch,
            **({"resume_note": resume_note} if resume_note else {}), "best_epoch": best_epoch,
            "stopped_early": bool(early.stopped_epoch), "cancelled": cancel.cancelled,
            "steps": steps_per_epoch * epochs_run, "seconds": round(seconds, 2),
            "loss_history": [float(x) for x in history.history.get("loss", [])],
            "validation_history": validation.history, "monitor": monitor}


def mark_as_tuned(encoder: Any, base: str, name: str) -> None:
    """A tuned encoder is a new model: new name, its base recorded, and a fingerprint of its own so an
    index built with the base model is refused for it (and vice versa)."""
    digest = hashlib.sha256(f"{encoder.fingerprint}|{name}|{time.time_ns()}".encode()).hexdigest()[:16]
    encoder.fingerprint, encoder.name, encoder.base_spec = f"tuned:{digest}", name, base
