"""Classifier training: encoder + dropout + dense head on (text, label) rows, frozen or fully fine-tuned."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from semsim.training.card import write_model_card
from semsim.training.inputs import TrainingData, class_labels, load_labelled_data
from semsim.training.loop import (
    configure_runtime,
    dataset_info,
    keeps_precision_policy,
    mark_as_tuned,
    prepare_output,
    publish_output,
    run_fit,
)
from semsim.training.objectives import ClassificationObjective
from semsim.training.spec import ClassifierTrainingRequest

# Frozen mode fits the head on cached vectors to convergence: epochs are a fraction of a second each, so
# no step cap, and early stopping on validation accuracy ends it (the request's epochs, step cap and
# patience are for training the encoder, where an epoch takes minutes).
FROZEN_MAX_EPOCHS = 300
FROZEN_PATIENCE = 10


def frozen_validation(head: Any, vectors: np.ndarray, labels: list[str], names: list[str]) -> Any:
    """The validation metric of a frozen run from cached vectors: the head alone, no encoder pass."""
    from semsim.evaluation import classification_metrics

    def evaluate() -> dict[str, Any]:
        probabilities = np.asarray(head(vectors, training=False))
        predicted = [names[i] for i in probabilities.argmax(axis=1)]
        return {"dataset": "validation", **classification_metrics(labels, predicted, probabilities, names)}
    return evaluate


def warm_up_head(encoder: Any, objective: ClassificationObjective, head: Any, texts: list[str],
                 labels: np.ndarray, request: ClassifierTrainingRequest) -> dict[str, Any] | None:
    """LP-FT's first stage: fit the head on the encoder's (fixed) vectors, at a head's learning rate.

    Why: a random head trained at the encoder's small learning rate learns slowly and pushes noisy
    gradients into the encoder meanwhile (Kumar et al., 2022)."""
    if not request.head_warmup_epochs:
        return None
    import keras

    started = time.time()
    vectors = encoder.encode(texts)
    head_model = objective.build_model(None, head)
    head_model.compile(optimizer=keras.optimizers.AdamW(max(request.learning_rate, 1e-3),
                                                        weight_decay=request.weight_decay), loss=objective.loss)
    history = head_model.fit(vectors, labels, batch_size=request.batch_size, epochs=request.head_warmup_epochs,
                             shuffle=True, verbose=0)
    return {"epochs": request.head_warmup_epochs, "loss_history": [float(x) for x in history.history["loss"]],
            "seconds": round(time.time() - started, 2)}


@keeps_precision_policy
def train_classifier(request: ClassifierTrainingRequest, loaded: TrainingData | None = None,
                     show_progress: bool = False) -> dict[str, Any]:
    """Train encoder + dropout + dense head as `request` says. Mode "frozen" trains the head on fixed
    vectors (feature-based); "full" fine-tunes the encoder too. Writes the classifier and its card."""
    from semsim.classifier import TextClassifier
    from semsim.encoders import load_encoder
    from semsim.evaluation import ClassificationEvaluator, classification_metrics
    from semsim.training.batches import EpochSeededBatches

    loaded = loaded or load_labelled_data(request)
    out = Path(request.out)
    train, validation, test = loaded.train, loaded.validation, loaded.test
    labels = class_labels(train)
    work = prepare_output(out, request.overwrite, request.resume)

    runtime = configure_runtime(request)
    encoder = load_encoder(request.base, cache=False)
    classifier = TextClassifier.build(encoder, labels, request.mode, request.dropout)
    objective = ClassificationObjective()
    label_ids = {label: i for i, label in enumerate(labels)}
    y_train = objective.targets(train["label"].astype(str).map(label_ids).to_numpy())
    evaluators = {"validation": ClassificationEvaluator.from_frame(validation, "validation")}
    if test is not None:
        evaluators["test"] = ClassificationEvaluator.from_frame(test, "test")

    # The untrained reference: always predicting the most frequent training label.
    majority = max(labels, key=lambda label: int((train["label"].astype(str) == label).sum()))
    base_metrics = {role: {"dataset": role, **classification_metrics(ev.labels, [majority] * len(ev.labels),
                                                                     label_names=labels)}
                    for role, ev in evaluators.items()}

    texts = train["text"].tolist()
    head_warmup = None
    fit_request, validate = request, lambda: evaluators["validation"](classifier)
    if request.mode == "frozen":
        # Feature-based: the encoder never changes, so embed once and train only the head on vectors,
        # validated on cached vectors too, until validation accuracy stops improving.
        encoder.model.trainable = False
        vectors = encoder.encode(texts)
        validate = frozen_validation(classifier.head, encoder.encode(validation["text"].tolist()),
                                     validation["label"].astype(str).tolist(), labels)
        # No warm-up: the schedule spans the epoch budget, and a warm-up over a tenth of it would hold the
        # head's learning rate down for its first 30 epochs.
        fit_request = request.replace(epochs=FROZEN_MAX_EPOCHS, max_steps_per_epoch=None, patience=FROZEN_PATIENCE,
                                      warmup_ratio=0.0)
        model = objective.build_model(None, classifier.head)

        def make_batch(rows: np.ndarray):
            return vectors[rows], y_train[rows]

        learning_rate = max(request.learning_rate, 1e-3)  # a lone linear head wants a larger step
    else:
        head_warmup = warm_up_head(encoder, objective, classifier.head, texts, y_train, request)
        model = objective.build_model(encoder.model, classifier.head)

        def make_batch(rows: np.ndarray):
            return encoder.preprocess([texts[i] for i in rows]), y_train[rows]

        learning_rate = None
    batches = EpochSeededBatches(len(train), request.batch_size, make_batch, seed=request.seed,
                                 max_batches=fit_request.max_steps_per_epoch)
    model(make_batch(np.arange(min(2, len(train))))[0])
    training = run_fit(model, objective, batches, fit_request, work, validate, show_progress, learning_rate)
    tuned_metrics = {role: evaluator(classifier) for role, evaluator in evaluators.items()}

    if request.mode == "full":
        mark_as_tuned(encoder, request.base, out.name)
    classifier.save(work)
    name = loaded.names.get("train", "labelled")
    card = {"name": out.name, "task": "classification", "mode": request.mode, "base_model": request.base,
            "objective": {**objective.describe(), "mode": request.mode, "dropout": request.dropout},
            "labels": labels,
            "datasets": {"train": dataset_info(name, train, loaded.hashes.get("train")),
                         "validation": dataset_info(f"{name} (validation)", validation),
                         **({"test": dataset_info(f"{name} (test)", test)} if test is not None else {})},
            "hyperparameters": {**request.to_dict(), "effective_learning_rate":
                                learning_rate or request.learning_rate},
            "training": {**training, **runtime, **({"head_warmup": head_warmup} if request.mode == "full" else {})},
            "metrics": {"base": base_metrics, "tuned": tuned_metrics},
            "notes": [*loaded.notes, f"'base' is the majority-class baseline (always '{majority}')."]
            + ([f"Frozen encoder: the head was fitted on cached vectors to convergence (at most "
                f"{FROZEN_MAX_EPOCHS} epochs, no step cap, stopping after {FROZEN_PATIENCE} epochs without a "
                f"better validation accuracy, best weights kept); --epochs, --max-steps-per-epoch and "
                f"--patience apply when the encoder trains."] if request.mode == "frozen" else [])}
    write_model_card(work, card)
    publish_output(work, out)
    return card
