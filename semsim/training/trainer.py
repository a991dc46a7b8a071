"""Fine-tuning runs: pairs (bi-encoder) and text classification, with checkpoints, logs and model cards."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from semsim.training.card import write_model_card
from semsim.training.objectives import ClassificationObjective, Objective, make_objective

LOG_FILE = "train_log.jsonl"
CANCEL_FILE = "CANCEL"


class TrainingError(ValueError):
    """Bad training input, reported before any training starts."""


@dataclasses.dataclass
class TrainConfig:
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    clipnorm: float = 1.0
    patience: int = 2
    seed: int = 42
    validation_fraction: float = 0.1
    max_steps_per_epoch: int | None = None
    mixed_precision: str = "auto"  # auto: on when a GPU is in use; "on" / "off" force it
    # WiSE-FT (Wortsman et al., 2022): keep base + merge_alpha * (tuned - base). Below 1 it trades some
    # in-domain gain for general similarity the tuning would otherwise forget; 1 keeps the tuned weights.
    merge_alpha: float = 1.0
    # Classifier, full mode: first fit the new head alone on frozen vectors for this many epochs, then
    # fine-tune everything (LP-FT, Kumar et al., 2022). A random head trained at the encoder's small
    # learning rate learns slowly and pushes noisy gradients into the encoder meanwhile.
    head_warmup_epochs: int = 0

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise TrainingError("epochs must be >= 1 and batch size >= 2")
        if not 0 < self.learning_rate < 1:
            raise TrainingError(f"learning rate {self.learning_rate} is out of range (0, 1)")
        if not 0 <= self.warmup_ratio < 1:
            raise TrainingError("warm-up ratio must be in [0, 1)")
        if not 0 < self.validation_fraction < 0.5:
            raise TrainingError("validation fraction must be in (0, 0.5)")
        if self.head_warmup_epochs < 0:
            raise TrainingError("head warm-up epochs must be >= 0")
        if not 0 < self.merge_alpha <= 1:
            raise TrainingError(f"merge alpha {self.merge_alpha} is out of range (0, 1]")


def interpolate_weights(base: list[Any], tuned: list[Any], alpha: float) -> list[Any]:
    """base + alpha * (tuned - base), tensor by tensor (the two lists come from the same architecture)."""
    if len(base) != len(tuned) or any(b.shape != t.shape for b, t in zip(base, tuned, strict=True)):
        raise TrainingError("cannot merge weights of two different architectures")
    return [b + alpha * (t - b) if np.issubdtype(b.dtype, np.floating) else t
            for b, t in zip(base, tuned, strict=True)]


# -- output folders -----------------------------------------------------------------------------
def partial_dir(out: Path) -> Path:
    """Where a run works until it finishes; kept after an interruption so --resume can continue."""
    return out.with_name(out.name + ".partial")


def prepare_output(out: Path, overwrite: bool, resume: bool) -> Path:
    """Refuse to clobber a model or a resumable run unless told to; return the working folder."""
    work = partial_dir(out)
    if out.exists() and not overwrite:
        raise TrainingError(f"{out} already exists; pass --overwrite to replace it")
    if work.exists() and not resume:
        if not overwrite:
            raise TrainingError(f"an interrupted run is in {work}; pass --resume to continue it or "
                                f"--overwrite to start again")
        shutil.rmtree(work)
    if resume and not (work / "checkpoint").exists():
        raise TrainingError(f"nothing to resume: {work / 'checkpoint'} does not exist")
    work.mkdir(parents=True, exist_ok=True)
    return work


def publish_output(work: Path, out: Path) -> None:
    """Swap the finished folder into place: the old model stays intact until the new one is complete."""
    shutil.rmtree(work / "checkpoint", ignore_errors=True)
    backup = out.with_name(out.name + ".old")
    if out.exists():
        shutil.rmtree(backup, ignore_errors=True)
        out.rename(backup)
    work.rename(out)
    shutil.rmtree(backup, ignore_errors=True)


# -- data checks (all before training starts) ---------------------------------------------------
def check_rows(frame: pd.DataFrame, role: str, batch_size: int, minimum_batches: int = 1) -> None:
    if frame is None or len(frame) == 0:
        raise TrainingError(f"the {role} data is empty")
    if len(frame) < batch_size * minimum_batches:
        raise TrainingError(f"the {role} data has {len(frame)} rows, fewer than one batch of {batch_size}; "
                            f"lower the batch size or add data")


def split_validation(frame: pd.DataFrame, fraction: float, seed: int,
                     stratify: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    if stratify:
        held = []
        for _, group in frame.groupby(stratify, sort=True):
            take = max(1, int(round(len(group) * fraction)))
            held.extend(rng.choice(group.index.to_numpy(), size=take, replace=False).tolist())
        mask = frame.index.isin(held)
    else:
        mask = np.zeros(len(frame), dtype=bool)
        mask[rng.choice(len(frame), size=max(2, int(round(len(frame) * fraction))), replace=False)] = True
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def dataset_info(name: str, frame: pd.DataFrame, sha256: str | None = None) -> dict[str, Any]:
    if sha256 is None:
        import hashlib

        from pandas.util import hash_pandas_object

        sha256 = hashlib.sha256(hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()[:16]
    return {"name": name, "rows": int(len(frame)), "sha256": sha256}


# -- the Keras side -----------------------------------------------------------------------------
def configure_runtime(config: TrainConfig) -> dict[str, Any]:
    """Seed everything, make TF ops deterministic, and pick the precision policy before models exist."""
    from semsim.device import describe_device

    device = describe_device()
    import keras

    keras.utils.set_random_seed(config.seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    mixed = config.mixed_precision == "on" or (config.mixed_precision == "auto" and device["gpu"])
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


def joint_pair_batches() -> bool:
    """Whether pair batches pad both sides to one length and embed them in one pass (PairHead joint):
    with JAX on a GPU.

    Why there: JAX compiles one program per input shape, and on an H200 one compile of the MiniLM train
    step took ~16 s while a step took ~6 ms. Padded apart, the two sides of the job-title + STS-B
    rehearsal batches come in 22 (length a, length b) combinations; padded together to a GPU's buckets
    (pad_to_bucket), in 3. One pass also halves the kernel launches that bound such a small step. On a
    CPU the extra padding cost more than it saved (README: slower on both backends), so there each side
    keeps its own length."""
    import keras

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


def make_optimizer(config: TrainConfig, total_steps: int, learning_rate: float | None = None) -> Any:
    from semsim.training.callbacks import WarmupLinearDecay
    from semsim.training.optimizers import FusedAdamW

    schedule = WarmupLinearDecay(learning_rate or config.learning_rate,
                                 int(total_steps * config.warmup_ratio), total_steps)
    return FusedAdamW(learning_rate=schedule, weight_decay=config.weight_decay, clipnorm=config.clipnorm)


def run_fit(model: Any, objective: Objective, batches: Any, config: TrainConfig, work: Path,
            evaluate: Callable[[], dict[str, Any]], resume: bool, show_progress: bool,
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

    steps_per_epoch = len(batches)
    total_steps = steps_per_epoch * config.epochs
    model.compile(optimizer=make_optimizer(config, total_steps, learning_rate), loss=objective.loss,
                  jit_compile=keras.backend.backend() == "jax")
    validation = ValidationMetric(evaluate)
    metric_name = None

    def monitor() -> str:
        return f"val_{metric_name}"

    # The primary metric's name is known once; evaluate the base model up front to learn it.
    first = evaluate()
    metric_name = first["primary_metric"]
    initial_epoch = 0
    checkpoint = work / "checkpoint"
    if resume and (checkpoint / "training_metadata.json").exists():
        import json

        # Keras records the next epoch to run (epochs completed), which is where fit() resumes.
        initial_epoch = int(json.loads((checkpoint / "training_metadata.json").read_text()).get("epoch", 0))
    progress = JsonlProgress(work / LOG_FILE, total_steps, steps_per_epoch, config.batch_size,
                             show_bar=show_progress, initial_epoch=initial_epoch)
    progress.write({"event": "baseline", "metric": monitor(), "value": float(first[metric_name])})
    cancel = CancelOnFile(work / CANCEL_FILE)
    early = keras.callbacks.EarlyStopping(monitor=monitor(), mode="max", patience=config.patience,
                                          restore_best_weights=True, verbose=0)
    callbacks = [SetEpoch(batches), validation, early, progress, cancel,
                 tensorboard_callback(work / "tensorboard"),
                 keras.callbacks.BackupAndRestore(str(checkpoint), save_freq="epoch", delete_checkpoint=False)]
    started = time.time()
    # shuffle=False: EpochSeededBatches already draws each epoch's order from (seed, epoch).
    history = model.fit(batches.as_fit_input(), epochs=config.epochs, callbacks=callbacks, verbose=0,
                        shuffle=False)
    seconds = time.time() - started
    epochs_run = len(history.history.get("loss", []))
    best_epoch = (early.best_epoch + 1) if early.best_weights is not None else None
    progress.write({"event": "end", "cancelled": cancel.cancelled, "seconds": round(seconds, 2),
                    "best_epoch": best_epoch})
    return {"epochs_run": epochs_run, "resumed_from_epoch": initial_epoch, "best_epoch": best_epoch,
            "stopped_early": bool(early.stopped_epoch), "cancelled": cancel.cancelled,
            "steps": steps_per_epoch * epochs_run, "seconds": round(seconds, 2),
            "loss_history": [float(x) for x in history.history.get("loss", [])],
            "validation_history": validation.history, "monitor": monitor()}


# -- pair training ------------------------------------------------------------------------------
@keeps_precision_policy
def train_pairs(base: str, train: pd.DataFrame, out: str | Path, *, objective: str = "cosent",
                validation: pd.DataFrame | None = None, test: pd.DataFrame | None = None,
                score_range: tuple[float, float] = (0.0, 1.0), config: TrainConfig | None = None,
                dataset_name: str = "pairs", dataset_sha256: str | None = None,
                evaluate_sts: bool = True, resume: bool = False, overwrite: bool = False,
                show_progress: bool = False, rehearsal: pd.DataFrame | None = None,
                rehearsal_range: tuple[float, float] | None = None,
                rehearsal_name: str = "rehearsal") -> dict[str, Any]:
    """Fine-tune a bi-encoder on (text_a, text_b[, score]) pairs; write the model and its model card.

    `rehearsal`: general-domain scored pairs (scores in `rehearsal_range`, default `score_range`) trained
    alongside, in batches of their own, against forgetting. Validation stays on the domain data.
    """
    from semsim.encoders import load_encoder
    from semsim.evaluation import PairSimilarityEvaluator
    from semsim.training.callbacks import EpochSeededBatches

    config = config or TrainConfig()
    config.check()
    chosen = make_objective(objective)
    out = Path(out)
    if chosen.needs_scores and "score" not in train.columns:
        raise TrainingError(f"the {chosen.name} objective needs a score column; use mnrl for unscored pairs")
    if rehearsal is not None and not chosen.needs_scores:
        raise TrainingError(f"rehearsal pairs need a scored objective, not {chosen.name}")
    if validation is None:
        train, validation = split_validation(train, config.validation_fraction, config.seed)
    check_rows(train, "training", config.batch_size)
    check_rows(validation, "validation", 2)
    if chosen.needs_scores and train["score"].nunique() < 2:
        raise TrainingError("every training pair has the same score; nothing to learn from")
    datasets = {"train": dataset_info(dataset_name, train, dataset_sha256)}
    if rehearsal is not None:
        check_rows(rehearsal, "rehearsal", 2)
        datasets["rehearsal"] = dataset_info(rehearsal_name, rehearsal)
        train = add_rehearsal(train, rehearsal, rehearsal_range or score_range, score_range)
    work = prepare_output(out, overwrite, resume)

    runtime = configure_runtime(config)
    encoder = load_encoder(base, cache=False)
    low, high = score_range
    scale = (lambda s: (np.asarray(s, dtype="float32") - low) / (high - low)) if high > low else np.asarray

    def evaluator_for(frame: pd.DataFrame, name: str) -> Callable[[Any], dict[str, Any]]:
        if "score" in frame.columns:
            return PairSimilarityEvaluator.from_frame(frame, name=name)
        return _PairRetrievalEvaluator(frame, name)

    evaluators = {"validation": evaluator_for(validation, "validation")}
    if test is not None:
        evaluators["test"] = evaluator_for(test, "test")
    if evaluate_sts:
        from semsim import data

        evaluators["sts-b test"] = PairSimilarityEvaluator.from_frame(data.load_sts("test"), name="sts-b test")
    base_metrics = {name: evaluator(encoder) for name, evaluator in evaluators.items()}

    joint = joint_pair_batches()
    model = chosen.build_model(encoder.model, joint=joint)
    texts_a, texts_b = train["text_a"].tolist(), train["text_b"].tolist()
    targets = chosen.targets(scale(train["score"]) if "score" in train.columns else np.zeros(len(train)))

    def make_batch(rows: np.ndarray):
        inputs = pair_batch_inputs(encoder, [texts_a[i] for i in rows], [texts_b[i] for i in rows], joint)
        return inputs, targets[rows]

    groups = train["group"].astype(str).to_numpy() if "group" in train.columns else None
    batches = EpochSeededBatches(len(train), config.batch_size, make_batch, seed=config.seed,
                                 max_batches=config.max_steps_per_epoch, groups=groups)
    model(make_batch(np.arange(min(2, len(train))))[0])  # build before a checkpoint is restored into it
    base_weights = encoder.model.get_weights() if config.merge_alpha < 1 else None
    training = run_fit(model, chosen, batches, config, work,
                       lambda: evaluators["validation"](encoder), resume, show_progress)
    if base_weights is not None:
        encoder.model.set_weights(interpolate_weights(base_weights, encoder.model.get_weights(),
                                                      config.merge_alpha))
    tuned_metrics = {name: evaluator(encoder) for name, evaluator in evaluators.items()}

    mark_as_tuned(encoder, base, out.name)
    encoder.save(work)
    card = {"name": out.name, "task": "pairs", "base_model": base, "objective": chosen.describe(),
            "datasets": {**datasets, "validation": dataset_info(f"{dataset_name} (validation)", validation),
                         **({"test": dataset_info(f"{dataset_name} (test)", test)} if test is not None else {})},
            "hyperparameters": {**dataclasses.asdict(config), "score_range": list(score_range)},
            "training": {**training, **runtime}, "metrics": {"base": base_metrics, "tuned": tuned_metrics}}
    write_model_card(work, card)
    publish_output(work, out)
    return card


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


def warm_up_head(encoder: Any, objective: ClassificationObjective, head: Any, texts: list[str],
                 labels: np.ndarray, config: TrainConfig) -> dict[str, Any] | None:
    """LP-FT's first stage: fit the head on the encoder's (fixed) vectors, at a head's learning rate."""
    if not config.head_warmup_epochs:
        return None
    import keras

    started = time.time()
    vectors = encoder.encode(texts)
    head_model = objective.build_model(None, head)
    head_model.compile(optimizer=keras.optimizers.AdamW(max(config.learning_rate, 1e-3),
                                                        weight_decay=config.weight_decay), loss=objective.loss)
    history = head_model.fit(vectors, labels, batch_size=config.batch_size, epochs=config.head_warmup_epochs,
                             shuffle=True, verbose=0)
    return {"epochs": config.head_warmup_epochs, "loss_history": [float(x) for x in history.history["loss"]],
            "seconds": round(time.time() - started, 2)}


def mark_as_tuned(encoder: Any, base: str, name: str) -> None:
    """A tuned encoder is a new model: new name, its base recorded, and a fingerprint of its own so an
    index built with the base model is refused for it (and vice versa)."""
    import hashlib

    digest = hashlib.sha256(f"{encoder.fingerprint}|{name}|{time.time_ns()}".encode()).hexdigest()[:16]
    encoder.fingerprint, encoder.name, encoder.base_spec = f"tuned:{digest}", name, base


class _PairRetrievalEvaluator:
    """For unscored pairs: how often text_a's nearest text_b (among all of them) is its own."""

    def __init__(self, frame: pd.DataFrame, name: str):
        self.a, self.b, self.name = frame["text_a"].tolist(), frame["text_b"].tolist(), name

    def __call__(self, encoder: Any) -> dict[str, Any]:
        a, b = encoder.encode(self.a), encoder.encode(self.b)
        ranks = (a @ b.T > np.sum(a * b, axis=1, keepdims=True)).sum(axis=1)
        return {"dataset": self.name, "n_pairs": len(self.a), "recall@1": float(np.mean(ranks == 0)),
                "mrr@10": float(np.mean(np.where(ranks < 10, 1.0 / (ranks + 1), 0.0))),
                "primary_metric": "recall@1"}


# -- classification -----------------------------------------------------------------------------
@keeps_precision_policy
def train_classifier(base: str, train: pd.DataFrame, out: str | Path, *, mode: str = "full",
                     validation: pd.DataFrame | None = None, test: pd.DataFrame | None = None,
                     config: TrainConfig | None = None, dataset_name: str = "labelled",
                     dataset_sha256: str | None = None, resume: bool = False, overwrite: bool = False,
                     show_progress: bool = False, dropout: float = 0.1) -> dict[str, Any]:
    """Train encoder + dropout + dense head. `mode="frozen"` trains the head on fixed vectors
    (feature-based); `mode="full"` fine-tunes the encoder too."""
    from semsim.classifier import TextClassifier
    from semsim.encoders import load_encoder
    from semsim.evaluation import ClassificationEvaluator, classification_metrics
    from semsim.training.callbacks import EpochSeededBatches

    if mode not in ("full", "frozen"):
        raise TrainingError(f"mode must be 'full' or 'frozen', not {mode!r}")
    config = config or TrainConfig()
    if config.merge_alpha != 1:
        raise TrainingError("weight merging (merge alpha) applies to pair training only")
    config.check()
    out = Path(out)
    labels = sorted(train["label"].astype(str).unique().tolist())
    if len(labels) < 2:
        raise TrainingError(f"the training data has only one class ({labels[0] if labels else 'none'}); "
                            f"a classifier needs at least two")
    if validation is None:
        train, validation = split_validation(train, config.validation_fraction, config.seed, stratify="label")
    unknown = sorted(set(validation["label"].astype(str)) - set(labels))
    if unknown:
        raise TrainingError(f"validation labels {unknown} never occur in the training data")
    check_rows(train, "training", config.batch_size)
    check_rows(validation, "validation", 2)
    work = prepare_output(out, overwrite, resume)

    runtime = configure_runtime(config)
    encoder = load_encoder(base, cache=False)
    classifier = TextClassifier.build(encoder, labels, mode, dropout)
    objective = ClassificationObjective()
    label_ids = {label: i for i, label in enumerate(labels)}
    y_train = objective.targets(train["label"].astype(str).map(label_ids).to_numpy())
    evaluators = {"validation": ClassificationEvaluator.from_frame(validation, "validation")}
    if test is not None:
        evaluators["test"] = ClassificationEvaluator.from_frame(test, "test")

    # The untrained reference: always predicting the most frequent training label.
    majority = max(labels, key=lambda label: int((train["label"].astype(str) == label).sum()))
    base_metrics = {name: {"dataset": name, **classification_metrics(ev.labels, [majority] * len(ev.labels),
                                                                     label_names=labels)}
                    for name, ev in evaluators.items()}

    texts = train["text"].tolist()
    head_warmup = None
    if mode == "frozen":
        # Feature-based: the encoder never changes, so embed once and train only the head on vectors.
        encoder.model.trainable = False
        vectors = encoder.encode(texts)
        model = objective.build_model(None, classifier.head)

        def make_batch(rows: np.ndarray):
            return vectors[rows], y_train[rows]

        learning_rate = max(config.learning_rate, 1e-3)  # a lone linear head wants a larger step
    else:
        head_warmup = warm_up_head(encoder, objective, classifier.head, texts, y_train, config)
        model = objective.build_model(encoder.model, classifier.head)

        def make_batch(rows: np.ndarray):
            return encoder.preprocess([texts[i] for i in rows]), y_train[rows]

        learning_rate = None
    batches = EpochSeededBatches(len(train), config.batch_size, make_batch, seed=config.seed,
                                 max_batches=config.max_steps_per_epoch)
    model(make_batch(np.arange(min(2, len(train))))[0])
    training = run_fit(model, objective, batches, config, work,
                       lambda: evaluators["validation"](classifier), resume, show_progress, learning_rate)
    tuned_metrics = {name: evaluator(classifier) for name, evaluator in evaluators.items()}

    if mode == "full":
        mark_as_tuned(encoder, base, out.name)
    classifier.save(work)
    card = {"name": out.name, "task": "classification", "mode": mode, "base_model": base,
            "objective": {**objective.describe(), "mode": mode, "dropout": dropout}, "labels": labels,
            "datasets": {"train": dataset_info(dataset_name, train, dataset_sha256),
                         "validation": dataset_info(f"{dataset_name} (validation)", validation),
                         **({"test": dataset_info(f"{dataset_name} (test)", test)} if test is not None else {})},
            "hyperparameters": {**dataclasses.asdict(config), "effective_learning_rate":
                                learning_rate or config.learning_rate},
            "training": {**training, **runtime, **({"head_warmup": head_warmup} if mode == "full" else {})},
            "metrics": {"base": base_metrics, "tuned": tuned_metrics},
            "notes": [f"'base' is the majority-class baseline (always '{majority}')."]}
    write_model_card(work, card)
    publish_output(work, out)
    return card


def print_summary(card: dict[str, Any], stream: Any = sys.stdout) -> None:
    print(f"saved {card['name']} ({card['task']}, base {card['base_model']})", file=stream)
