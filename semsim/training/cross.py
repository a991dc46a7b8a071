"""Pair-classifier training: a cross-encoder or the bi-encoder baseline with a classification or regression head, frozen or fully fine-tuned, through the shared loop."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from semsim.training.card import write_model_card
from semsim.training.loop import (
    configure_runtime,
    dataset_info,
    keeps_precision_policy,
    mark_as_tuned,
    prepare_output,
    publish_output,
    run_fit,
)
from semsim.training.objectives import Objective
from semsim.training.pair_inputs import CLASSIFICATION, PairClassData, load_pair_class_data
from semsim.training.spec import PairClassifierTrainingRequest, TrainingError


class PairLabelObjective(Objective):
    """Cross-entropy over the labels of a pair (the head ends in a softmax)."""

    name = "pair-cross-entropy"

    def loss(self, y_true, y_pred):
        return ops.mean(keras.losses.sparse_categorical_crossentropy(y_true, y_pred))

    def targets(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype="int32")


class PairScoreObjective(Objective):
    """Regression as sentence-transformers' CrossEncoder does it with one output: the score scaled to
    0..1, binary cross-entropy on the head's logit (a sigmoid of it is the prediction)."""

    name = "pair-score-bce"

    def loss(self, y_true, y_pred):
        logits = ops.reshape(ops.cast(y_pred, "float32"), (-1,))
        return ops.mean(keras.losses.binary_crossentropy(ops.reshape(ops.cast(y_true, "float32"), (-1,)),
                                                         logits, from_logits=True))


def _evaluators(loaded: PairClassData) -> dict[str, Any]:
    from semsim.evaluation import PairSimilarityEvaluator
    from semsim.evaluation.pair_classification import PairClassificationEvaluator

    make = (PairClassificationEvaluator.from_frame if loaded.head == CLASSIFICATION
            else PairSimilarityEvaluator.from_frame)
    evaluators = {"validation": make(loaded.validation, name="validation")}
    if loaded.test is not None:
        evaluators["test"] = make(loaded.test, name="test")
    return evaluators


def _baseline(loaded: PairClassData, labels: list[str], evaluators: dict[str, Any], encoder: Any) -> tuple[dict, str]:
    """What "base" means in the card: the majority class (classification), or the base encoder's cosine
    as a bi-encoder (regression: what a cross-encoder has to beat)."""
    from semsim.evaluation import classification_metrics

    if loaded.head == CLASSIFICATION:
        counts = loaded.train["label"].astype(str).value_counts()
        majority = max(labels, key=lambda label: int(counts.get(label, 0)))
        metrics = {role: {"dataset": role, **classification_metrics(ev.labels, [majority] * len(ev.labels),
                                                                    label_names=labels)}
                   for role, ev in evaluators.items()}
        return metrics, f"'base' is the majority-class baseline (always '{majority}')."
    return ({role: evaluator(encoder) for role, evaluator in evaluators.items()},
            "'base' is the base encoder's cosine similarity (as a bi-encoder, no training).")


@keeps_precision_policy
def train_pair_classifier(request: PairClassifierTrainingRequest, loaded: PairClassData | None = None,
                          show_progress: bool = False) -> dict[str, Any]:
    """Train a pair classifier as `request` says and write it with its model card.

    cross: the pair is read together ([CLS] a [SEP] b [SEP], segment ids) and the head classifies the
    backbone's pooled vector; bi: each text is embedded alone and the head reads [u, v, |u - v|, u * v].
    Mode "frozen" embeds once and trains the head on the fixed vectors; "full" fine-tunes the encoder too."""
    from semsim.encoders import load_encoder
    from semsim.pair_classifier import CROSS, PairClassifier, cross_encoder_refusal
    from semsim.training.batches import EpochSeededBatches, joint_pair_batches, pair_batch_inputs

    loaded = loaded or load_pair_class_data(request)
    out = Path(request.out)
    train, validation, test = loaded.train, loaded.validation, loaded.test
    classification = loaded.head == CLASSIFICATION
    labels = sorted(train["label"].astype(str).unique().tolist()) if classification else []
    fresh = not (request.resume and out.with_name(out.name + ".partial").exists())
    work = prepare_output(out, request.overwrite, request.resume)

    runtime = configure_runtime(request)
    encoder = load_encoder(request.base, cache=False)
    refusal = cross_encoder_refusal(encoder) if request.architecture == CROSS else None
    if refusal:
        if fresh:
            shutil.rmtree(work, ignore_errors=True)  # nothing was trained: leave no run to resume
        raise TrainingError(refusal)
    evaluators = _evaluators(loaded)
    base_metrics, base_note = _baseline(loaded, labels, evaluators, encoder)
    model_kwargs = {"score_range": loaded.score_range} if loaded.score_range else {}
    pairs = PairClassifier.build(encoder, architecture=request.architecture, head_kind=loaded.head, labels=labels,
                                 dropout=request.dropout, relevance_order=request.labels_in_order(),
                                 mode=request.mode, max_length=request.max_length, **model_kwargs)

    if classification:
        objective: Objective = PairLabelObjective()
        index = {label: i for i, label in enumerate(labels)}
        y_train = objective.targets(train["label"].astype(str).map(index).to_numpy())
    else:
        objective = PairScoreObjective()
        low, high = pairs.score_range
        y_train = objective.targets(np.clip((train["score"].to_numpy(dtype=np.float64) - low) / (high - low), 0, 1))
    texts_a, texts_b = train["text_a"].astype(str).tolist(), train["text_b"].astype(str).tolist()

    if request.mode == "frozen":
        # Feature-based: the encoder never changes, so its vectors are computed once and only the head trains.
        encoder.model.trainable = False
        if request.architecture == CROSS:
            encoder.backbone.trainable = False
            features: Any = pairs.cross_features(texts_a, texts_b)

            def make_batch(rows: np.ndarray):
                return features[rows], y_train[rows]
        else:
            features = pairs.sentence_pairs(texts_a, texts_b)

            def make_batch(rows: np.ndarray):
                return {"u": features["u"][rows], "v": features["v"][rows]}, y_train[rows]
        model = pairs.head
        learning_rate = max(request.learning_rate, 1e-3)  # a lone linear head wants a larger step
    else:
        model = pairs.net
        if request.architecture == CROSS:
            def make_batch(rows: np.ndarray):
                return pairs.pack([texts_a[i] for i in rows], [texts_b[i] for i in rows]), y_train[rows]
        else:
            joint = joint_pair_batches()

            def make_batch(rows: np.ndarray):
                return pair_batch_inputs(encoder, [texts_a[i] for i in rows], [texts_b[i] for i in rows],
                                         joint), y_train[rows]
        learning_rate = None
    batches = EpochSeededBatches(len(train), request.batch_size, make_batch, seed=request.seed,
                                 max_batches=request.max_steps_per_epoch)
    model(make_batch(np.arange(min(2, len(train))))[0])
    training = run_fit(model, objective, batches, request, work, lambda: evaluators["validation"](pairs),
                       show_progress, learning_rate)
    tuned_metrics = {role: evaluator(pairs) for role, evaluator in evaluators.items()}

    if request.mode == "full":
        mark_as_tuned(encoder, request.base, out.name)
    pairs.save(work)
    name = loaded.names.get("train", "pairs")
    kind = "pair-classification" if classification else "pair-regression"
    card = {"name": out.name, "task": kind, "architecture": request.architecture, "mode": request.mode,
            "base_model": request.base,
            "objective": {**objective.describe(), "architecture": request.architecture, "head": loaded.head,
                          "mode": request.mode, "dropout": request.dropout},
            "labels": labels, "score_range": list(pairs.score_range) if not classification else None,
            "relevance_order": pairs.relevance_order if classification else None,
            "datasets": {"train": dataset_info(name, train, loaded.hashes.get("train")),
                         "validation": dataset_info(f"{loaded.names.get('validation', name)} (validation)", validation),
                         **({"test": dataset_info(f"{loaded.names.get('test', name)} (test)", test)}
                            if test is not None else {})},
            "hyperparameters": {**request.to_dict(), "effective_learning_rate": learning_rate or request.learning_rate,
                                "max_length": pairs.max_length if request.architecture == CROSS else None},
            "training": {**training, **runtime},
            "metrics": {"base": base_metrics, "tuned": tuned_metrics},
            "notes": [*loaded.notes, base_note]}
    write_model_card(work, card)
    publish_output(work, out)
    return card
