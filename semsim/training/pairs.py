"""Pair training: a Siamese bi-encoder fine-tuned on (text_a, text_b[, score]) pairs, with its model card."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from semsim.training.card import GUARD_RETRIEVAL, guard_summary, write_model_card
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
from semsim.training.objectives import MultiTaskObjective, make_objective
from semsim.training.spec import PairTrainingRequest


def guard_evaluators(rows: int | None, seed: int) -> tuple[dict[str, Callable[[Any], dict[str, Any]]], str]:
    """The forgetting guard every pair card reports for base and tuned: STS-B test (general similarity)
    and ESCO occupation retrieval (a job-title source never trained on), on a seeded sample of `rows`
    pairs / queries when given; with a sentence saying what was measured, for the card's notes."""
    from semsim import data
    from semsim.evaluation import PairSimilarityEvaluator, RetrievalEvaluator

    sts = data.load_sts("test")
    queries, corpus = data.load_bundled("esco-retrieval")
    sts_sample, query_sample = data.sample_rows(sts, rows, seed), data.sample_rows(queries, rows, seed)
    evaluators = {"sts-b test": PairSimilarityEvaluator.from_frame(sts_sample, name="sts-b test"),
                  GUARD_RETRIEVAL: RetrievalEvaluator(query_sample, corpus, name=GUARD_RETRIEVAL)}
    sampled = len(sts_sample) < len(sts) or len(query_sample) < len(queries)
    what = (f"Forgetting guard: STS-B test ({len(sts_sample):,} of {len(sts):,} pairs) and ESCO retrieval "
            f"({len(query_sample):,} of {len(queries):,} queries against all {len(corpus):,} occupations)"
            + (", a seeded quick sample (--guard-rows): the full sets take longer on this machine; "
               "`semsim evaluate sts` and `semsim evaluate retrieval` measure them in full." if sampled
               else ", the full sets."))
    return evaluators, what


def part_steps(batches: Any, first_epoch: int, epochs: int) -> dict[Any, int]:
    """Batches each part got over the epochs a run trained (each epoch draws its own order)."""
    totals: dict[Any, int] = {}
    for epoch in range(first_epoch, first_epoch + epochs):
        batches.set_epoch(epoch)
        for label, count in batches.steps_per_group().items():
            totals[label] = totals.get(label, 0) + count
    return totals


@keeps_precision_policy
def train_pairs(request: PairTrainingRequest, loaded: TrainingData | None = None,
                show_progress: bool = False) -> dict[str, Any]:
    """Fine-tune a bi-encoder as `request` says; write the model and its model card; return the card.

    `loaded`: the request's data, already loaded and checked (load_pair_data); loaded here when None.
    Every part (the first is --data, then the recipe's parts, every --part and the STS-B rehearsal)
    trains in batches of its own with its own objective; validation stays on the first part's data."""
    from semsim.encoders import load_encoder
    from semsim.evaluation import PairRetrievalEvaluator, PairSimilarityEvaluator
    from semsim.training.batches import EpochSeededBatches, joint_pair_batches, pair_batch_inputs, part_table

    loaded = loaded or load_pair_data(request)
    parts = loaded.parts
    out = Path(request.out)
    validation, test = loaded.validation, loaded.test
    name = loaded.names.get("train", "pairs")
    objectives = [make_objective(p.part.objective) for p in parts]
    chosen = objectives[0] if len(parts) == 1 else MultiTaskObjective(objectives)
    multi = MultiTaskObjective(objectives)
    table = part_table(parts)
    work = prepare_output(out, request.overwrite, request.resume)

    runtime = configure_runtime(request)
    encoder = load_encoder(request.base, cache=False)
    if request.matryoshka_dims:  # the loss of every batch, whatever its objective, at each prefix length
        from semsim.training.matryoshka import matryoshka_for

        multi = matryoshka_for(multi, request.matryoshka_dims, encoder.dim)
        chosen = matryoshka_for(chosen, request.matryoshka_dims, encoder.dim)

    def evaluator_for(frame: pd.DataFrame, role: str) -> Callable[[Any], dict[str, Any]]:
        if "score" in frame.columns:
            return PairSimilarityEvaluator.from_frame(frame, name=role)
        return PairRetrievalEvaluator.from_frame(frame, name=role)

    evaluators = {"validation": evaluator_for(validation, "validation")}
    if test is not None:
        evaluators["test"] = evaluator_for(test, "test")
    notes = list(loaded.notes)
    if request.evaluate_sts:
        guard, what = guard_evaluators(request.guard_rows, request.seed)
        evaluators.update(guard)
        notes.append(what)
    base_metrics = {role: evaluator(encoder) for role, evaluator in evaluators.items()}

    joint = joint_pair_batches()
    model = multi.build_model(encoder.model, joint=joint)
    texts_a, texts_b = table["text_a"].tolist(), table["text_b"].tolist()
    negatives, owner = table["negative"].tolist(), table["part"].to_numpy()
    targets = table["target"].to_numpy("float32")
    with_negatives = [bool((table["negative"][owner == i] != "").all()) and p.part.unscored
                      for i, p in enumerate(parts)]

    def make_batch(rows: np.ndarray):
        part = int(owner[rows[0]])
        side_b = [texts_b[i] for i in rows] + ([negatives[i] for i in rows] if with_negatives[part] else [])
        inputs = pair_batch_inputs(encoder, [texts_a[i] for i in rows], side_b, joint)
        return inputs, multi.targets(targets[rows], part)

    keyed = table["keys"].notna().any()
    batches = EpochSeededBatches(len(table), request.batch_size, make_batch, seed=request.seed,
                                 max_batches=request.max_steps_per_epoch,
                                 groups=owner if len(parts) > 1 else None,
                                 weights={i: p.part.weight for i, p in enumerate(parts)} if len(parts) > 1
                                 else ({None: parts[0].part.weight}),
                                 keys=table["keys"].tolist() if keyed else None)
    model(make_batch(np.arange(min(2, len(parts[0].frame))))[0])  # build before a checkpoint is restored into it
    base_weights = encoder.model.get_weights() if request.merge_alpha < 1 else None
    training = run_fit(model, multi, batches, request, work, lambda: evaluators["validation"](encoder),
                       show_progress)
    if base_weights is not None:
        encoder.model.set_weights(interpolate_weights(base_weights, encoder.model.get_weights(),
                                                      request.merge_alpha))
    tuned_metrics = {role: evaluator(encoder) for role, evaluator in evaluators.items()}

    steps = part_steps(batches, training["resumed_from_epoch"], training["epochs_run"])
    part_rows = [{"dataset": p.name, "objective": p.part.objective, "weight": p.part.weight, "role": p.part.role,
                  "rows": int(len(p.frame)), "steps": int(steps.get(i if len(parts) > 1 else None, 0)),
                  "hard_negatives": with_negatives[i], "sha256": p.sha256} for i, p in enumerate(parts)]
    datasets = {"train": dataset_info(name, parts[0].frame, loaded.hashes.get("train"))}
    for p in parts[1:]:
        key = "rehearsal" if p.part.role == "rehearsal" else f"part: {p.name}"
        datasets[key] = dataset_info(p.name, p.frame, p.sha256)
    mark_as_tuned(encoder, request.base, out.name)
    encoder.save(work)
    card = {"name": out.name, "task": "pairs", "base_model": request.base, "objective": chosen.describe(),
            "parts": part_rows,
            "datasets": {**datasets, "validation": dataset_info(f"{name} (validation)", validation),
                         **({"test": dataset_info(f"{name} (test)", test)} if test is not None else {})},
            "hyperparameters": request.to_dict(), "notes": notes,
            "training": {**training, **runtime}, "metrics": {"base": base_metrics, "tuned": tuned_metrics}}
    card["guard"] = guard_summary(card)
    write_model_card(work, card)
    publish_output(work, out)
    return card
