"""Pair training: a Siamese bi-encoder fine-tuned on (text_a, text_b[, score]) pairs, with its model card."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from semsim.training.card import write_model_card
from semsim.training.inputs import TrainingData, load_pair_data
from semsim.training.loop import (
    configure_runtime,
    dataset_info,
    interpolate_weights,
    keeps_precision_policy,
    mark_as_tuned,
    prepare_output,
    publish_output,
    run_fit,
)
from semsim.training.objectives import make_objective
from semsim.training.spec import PairTrainingRequest


@keeps_precision_policy
def train_pairs(request: PairTrainingRequest, loaded: TrainingData | None = None,
                show_progress: bool = False) -> dict[str, Any]:
    """Fine-tune a bi-encoder as `request` says; write the model and its model card; return the card.

    `loaded`: the request's data, already loaded and checked (load_pair_data); loaded here when None.
    Rehearsal pairs (general-domain, scored) train alongside in batches of their own, against forgetting;
    validation stays on the domain data."""
    from semsim import data
    from semsim.encoders import load_encoder
    from semsim.evaluation import PairRetrievalEvaluator, PairSimilarityEvaluator
    from semsim.training.batches import EpochSeededBatches, add_rehearsal, joint_pair_batches, pair_batch_inputs

    chosen = make_objective(request.objective)
    loaded = loaded or load_pair_data(request)
    out = Path(request.out)
    train, validation, test = loaded.train, loaded.validation, loaded.test
    name = loaded.names.get("train", "pairs")
    datasets = {"train": dataset_info(name, train, loaded.hashes.get("train"))}
    if loaded.rehearsal is not None:
        datasets["rehearsal"] = dataset_info(loaded.names.get("rehearsal", "rehearsal"), loaded.rehearsal)
        train = add_rehearsal(train, loaded.rehearsal, loaded.rehearsal_range or request.score_range,
                              request.score_range)
    work = prepare_output(out, request.overwrite, request.resume)

    runtime = configure_runtime(request)
    encoder = load_encoder(request.base, cache=False)
    if request.matryoshka_dims:  # the loss of every batch at each prefix length, around its objective
        from semsim.training.matryoshka import matryoshka_for

        chosen = matryoshka_for(chosen, request.matryoshka_dims, encoder.dim)
    low, high = request.score_range
    scale = (lambda s: (np.asarray(s, dtype="float32") - low) / (high - low)) if high > low else np.asarray

    def evaluator_for(frame: pd.DataFrame, role: str) -> Callable[[Any], dict[str, Any]]:
        if "score" in frame.columns:
            return PairSimilarityEvaluator.from_frame(frame, name=role)
        return PairRetrievalEvaluator.from_frame(frame, name=role)

    evaluators = {"validation": evaluator_for(validation, "validation")}
    if test is not None:
        evaluators["test"] = evaluator_for(test, "test")
    if request.evaluate_sts:
        evaluators["sts-b test"] = PairSimilarityEvaluator.from_frame(data.load_sts("test"), name="sts-b test")
    base_metrics = {role: evaluator(encoder) for role, evaluator in evaluators.items()}

    joint = joint_pair_batches()
    model = chosen.build_model(encoder.model, joint=joint)
    texts_a, texts_b = train["text_a"].tolist(), train["text_b"].tolist()
    targets = chosen.targets(scale(train["score"]) if "score" in train.columns else np.zeros(len(train)))

    def make_batch(rows: np.ndarray):
        inputs = pair_batch_inputs(encoder, [texts_a[i] for i in rows], [texts_b[i] for i in rows], joint)
        return inputs, targets[rows]

    groups = train["group"].astype(str).to_numpy() if "group" in train.columns else None
    batches = EpochSeededBatches(len(train), request.batch_size, make_batch, seed=request.seed,
                                 max_batches=request.max_steps_per_epoch, groups=groups)
    model(make_batch(np.arange(min(2, len(train))))[0])  # build before a checkpoint is restored into it
    base_weights = encoder.model.get_weights() if request.merge_alpha < 1 else None
    training = run_fit(model, chosen, batches, request, work, lambda: evaluators["validation"](encoder),
                       show_progress)
    if base_weights is not None:
        encoder.model.set_weights(interpolate_weights(base_weights, encoder.model.get_weights(),
                                                      request.merge_alpha))
    tuned_metrics = {role: evaluator(encoder) for role, evaluator in evaluators.items()}

    mark_as_tuned(encoder, request.base, out.name)
    encoder.save(work)
    card = {"name": out.name, "task": "pairs", "base_model": request.base, "objective": chosen.describe(),
            "datasets": {**datasets, "validation": dataset_info(f"{name} (validation)", validation),
                         **({"test": dataset_info(f"{name} (test)", test)} if test is not None else {})},
            "hyperparameters": request.to_dict(), "notes": loaded.notes,
            "training": {**training, **runtime}, "metrics": {"base": base_metrics, "tuned": tuned_metrics}}
    write_model_card(work, card)
    publish_output(work, out)
    return card
