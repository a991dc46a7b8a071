"""A training request's data: its files or bundled datasets loaded, split and checked before training.

The Train page calls the same functions to preview and check a request before it starts a run, and the
run calls them again when it starts: one set of checks, in one place. No Keras here."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from semsim import data
from semsim.training.spec import ClassifierTrainingRequest, PairTrainingRequest, TrainingError

# mnrl learns from positive pairs only: a graded pair counts as positive at or above this share of its range.
POSITIVE_THRESHOLD = 0.75


@dataclasses.dataclass
class TrainingData:
    """The frames a run trains and evaluates on, with the names and hashes its model card records."""

    train: pd.DataFrame
    validation: pd.DataFrame | None = None
    test: pd.DataFrame | None = None
    rehearsal: pd.DataFrame | None = None
    rehearsal_range: tuple[float, float] | None = None
    names: dict[str, str] = dataclasses.field(default_factory=dict)  # role -> dataset name
    hashes: dict[str, str] = dataclasses.field(default_factory=dict)  # role -> content hash
    notes: list[str] = dataclasses.field(default_factory=list)  # what loading changed, for people
    validation_split_off: bool = False  # validation was held out of `train` (no validation data given)


def bundled_split(name: str, role: str) -> str:
    """The file split a bundled dataset uses for a role (STS-B calls its validation split "dev")."""
    splits = data.BUNDLED_DATASETS[name].splits
    if role == "validation" and "validation" not in splits and "dev" in splits:
        return "dev"
    return role


def resolve(source: str | None, role: str) -> str | None:
    """A CSV path, or a bundled dataset name (its split for `role` implied)."""
    if source is None or source not in data.BUNDLED_DATASETS:
        return source
    return str(data.bundled_path(source, bundled_split(source, role)))


def _sample(frame: pd.DataFrame | None, rows: int | None, seed: int) -> pd.DataFrame | None:
    """A seeded sample of `rows` rows (all of them when there are fewer)."""
    if frame is None or rows is None or len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=seed).reset_index(drop=True)


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


def check_rows(frame: pd.DataFrame | None, role: str, batch_size: int) -> None:
    if frame is None or len(frame) == 0:
        raise TrainingError(f"the {role} data is empty")
    if len(frame) < batch_size:
        raise TrainingError(f"the {role} data has {len(frame):,} rows, fewer than one batch of {batch_size}; "
                            f"lower the batch size or add data")


# -- pairs --------------------------------------------------------------------------------------
def _positives(frame: pd.DataFrame, low: float, high: float) -> pd.DataFrame:
    cut = low + POSITIVE_THRESHOLD * (high - low)
    return frame[frame["score"] >= cut][["text_a", "text_b"]].reset_index(drop=True)


def _load_pairs(request: PairTrainingRequest, source: Any, role: str, notes: list[str]) -> pd.DataFrame:
    """One split of pairs: graded (text_a, text_b, score) or, for mnrl, positive (text_a, text_b)."""
    bundled = data.BUNDLED_DATASETS.get(source) if isinstance(source, str) else None
    if bundled is not None:
        frame = data.load_pairs(resolve(source, role), bundled.score_range, bundled.columns)
        if request.unscored:
            low, high = bundled.score_range
            frame = _positives(frame, low, high)
            if role == "train":
                notes.append(f"mnrl trains on positive pairs only: {len(frame):,} pairs scoring at least "
                             f"{low + POSITIVE_THRESHOLD * (high - low):g}.")
        return frame
    if request.unscored:
        return data.load_positive_pairs(source)
    return data.load_pairs(source, score_range=tuple(request.score_range))


def _name(source: Any, default: str) -> str:
    if isinstance(source, str):
        return source if source in data.BUNDLED_DATASETS else Path(source).name
    return getattr(source, "name", None) or default


def load_pair_data(request: PairTrainingRequest, sources: dict[str, Any] | None = None) -> TrainingData:
    """Load, split and check the data of a pair-training request.

    `sources` maps a role (train, validation, test) to a file-like object or frame that replaces the
    request's path for it: the page checks an upload before it is saved; tests pass frames."""
    sources = sources or {}
    notes: list[str] = []
    frames: dict[str, pd.DataFrame | None] = {}
    names: dict[str, str] = {}
    hashes: dict[str, str] = {}
    for role, path in (("train", request.data), ("validation", request.validation), ("test", request.test)):
        source = sources.get(role, path)
        if source is None:
            frames[role] = None
            continue
        frame = source if isinstance(source, pd.DataFrame) else _load_pairs(request, source, role, notes)
        frames[role] = frame
        names[role] = _name(source if not isinstance(source, pd.DataFrame) else path, role)
        hashes[role] = data.content_hash(resolve(source, role)) if isinstance(source, str) else data.content_hash(frame)
    result = TrainingData(frames["train"], frames["validation"], frames["test"], names=names, hashes=hashes,
                          notes=notes)
    if request.rehearsal_data:
        bundled = data.BUNDLED_DATASETS.get(request.rehearsal_data)
        result.rehearsal_range = (tuple(request.rehearsal_score_range or ())
                                  or (bundled.score_range if bundled else None) or tuple(request.score_range))
        path = resolve(request.rehearsal_data, "train")
        result.rehearsal = sources.get("rehearsal")
        if result.rehearsal is None:
            result.rehearsal = data.load_pairs(path, score_range=result.rehearsal_range,
                                               columns=bundled.columns if bundled else ("text_a", "text_b", "score"))
        result.names["rehearsal"] = _name(request.rehearsal_data, "rehearsal")
        result.hashes["rehearsal"] = data.content_hash(result.rehearsal)
    return check_pair_data(request, result)


def check_pair_data(request: PairTrainingRequest, loaded: TrainingData) -> TrainingData:
    """Hold out validation if none was given, sample it, and refuse data that cannot train."""
    train, validation = loaded.train, loaded.validation
    if not request.unscored and "score" not in train.columns:
        raise TrainingError(f"the {request.objective} objective needs a score column; use mnrl for unscored pairs")
    if validation is None and train is not None and len(train) >= 4:
        train, validation = split_validation(train, request.validation_fraction, request.seed)
        loaded.validation_split_off = True
    check_rows(train, "training", request.batch_size)
    check_rows(validation, "validation", 2)
    if not request.unscored and train["score"].nunique() < 2:
        raise TrainingError("every training pair has the same score: there is nothing to learn from; use pairs "
                            "with different scores, or the mnrl objective for unscored pairs")
    if loaded.rehearsal is not None:
        check_rows(loaded.rehearsal, "rehearsal", 2)
    loaded.train, loaded.validation = train, _sample(validation, request.validation_rows, request.seed)
    return loaded


# -- classification -----------------------------------------------------------------------------
def load_labelled_data(request: ClassifierTrainingRequest, sources: dict[str, Any] | None = None) -> TrainingData:
    """Load, split and check the data of a classifier request (`sources` as for load_pair_data)."""
    sources = sources or {}
    frames: dict[str, pd.DataFrame | None] = {}
    names: dict[str, str] = {}
    hashes: dict[str, str] = {}
    for role, path in (("train", request.data), ("validation", request.validation), ("test", request.test)):
        source = sources.get(role, path)
        if source is None:
            frames[role] = None
            continue
        frame = source if isinstance(source, pd.DataFrame) else data.load_labelled(resolve(source, role)
                                                                                 if isinstance(source, str) else source)
        frames[role] = frame
        names[role] = _name(source if not isinstance(source, pd.DataFrame) else path, role)
        hashes[role] = data.content_hash(resolve(source, role)) if isinstance(source, str) else data.content_hash(frame)
    return check_labelled_data(request, TrainingData(frames["train"], frames["validation"], frames["test"],
                                                     names=names, hashes=hashes))


def class_labels(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["label"].astype(str).unique().tolist())


def check_labelled_data(request: ClassifierTrainingRequest, loaded: TrainingData) -> TrainingData:
    train, validation = loaded.train, loaded.validation
    labels = class_labels(train)
    if len(labels) < 2:
        raise TrainingError(f"the training data has only one class ({labels[0] if labels else 'none'}); "
                            f"a classifier needs at least two")
    if validation is None:
        train, validation = split_validation(train, request.validation_fraction, request.seed, stratify="label")
        loaded.validation_split_off = True
    unknown = sorted(set(validation["label"].astype(str)) - set(labels))
    if unknown:
        raise TrainingError(f"validation labels {unknown} never occur in the training data")
    check_rows(train, "training", request.batch_size)
    check_rows(validation, "validation", 2)
    loaded.train, loaded.validation = train, _sample(validation, request.validation_rows, request.seed)
    return loaded
