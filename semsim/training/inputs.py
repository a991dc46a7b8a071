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
from semsim.training.parts import Part, request_parts
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
    parts: list[Any] = dataclasses.field(default_factory=list)  # pairs: LoadedPart per part, the first is `train`


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
@dataclasses.dataclass
class LoadedPart:
    """One part of a pair run with its rows: (text_a, text_b, score) for scored objectives, (text_a,
    text_b[, negative][, group_id]) for mnrl; `score_range` is the range its scores come in."""

    part: Part
    frame: pd.DataFrame
    score_range: tuple[float, float] | None
    name: str
    sha256: str


def _positives(frame: pd.DataFrame, low: float, high: float) -> pd.DataFrame:
    cut = low + POSITIVE_THRESHOLD * (high - low)
    return frame[frame["score"] >= cut][["text_a", "text_b"]].reset_index(drop=True)


def _load_part_rows(part: Part, source: Any, split: str, score_range: tuple[float, float] | None,
                    notes: list[str], note: bool) -> pd.DataFrame:
    """One split of a part's dataset, in the columns its objective trains on."""
    bundled = data.BUNDLED_DATASETS.get(source) if isinstance(source, str) else None
    if bundled is not None:
        path = resolve(source, split)
        if bundled.kind == "positives":
            if not part.unscored:
                raise TrainingError(f"{source} holds unscored positive pairs: train it with mnrl, not "
                                    f"{part.objective}")
            return data.load_positive_pairs(path, bundled.columns)
        if bundled.kind not in ("pairs", "sts"):
            raise TrainingError(f"{source} is not a pairs dataset (it holds {bundled.kind}); choose one of "
                                f"{', '.join(n for n, d in data.BUNDLED_DATASETS.items() if d.kind in PAIR_KINDS)}")
        frame = data.load_pairs(path, bundled.score_range, bundled.columns)
        if part.unscored:
            low, high = bundled.score_range
            frame = _positives(frame, low, high)
            if note:
                notes.append(f"mnrl trains {source} on its positive pairs only: {len(frame):,} pairs scoring at "
                             f"least {low + POSITIVE_THRESHOLD * (high - low):g}.")
        return frame
    if part.unscored:
        return data.load_positive_pairs(source)
    return data.load_pairs(source, score_range=score_range)


PAIR_KINDS = ("pairs", "sts", "positives")


def _part_range(part: Part, request: PairTrainingRequest) -> tuple[float, float]:
    bundled = data.BUNDLED_DATASETS.get(part.dataset)
    if part.role == "rehearsal" and request.rehearsal_score_range:
        return tuple(request.rehearsal_score_range)
    if bundled is not None and bundled.score_range is not None:
        return tuple(bundled.score_range)
    return tuple(request.score_range)


def _name(source: Any, default: str) -> str:
    if isinstance(source, str):
        return source if source in data.BUNDLED_DATASETS else Path(source).name
    return getattr(source, "name", None) or default


def _hash(source: Any, frame: pd.DataFrame, split: str) -> str:
    if isinstance(source, str):
        return data.content_hash(resolve(source, split))
    return data.content_hash(frame)


def load_pair_data(request: PairTrainingRequest, sources: dict[str, Any] | None = None) -> TrainingData:
    """Load, split and check the data of a pair-training request: every part, validation and test.

    `sources` maps a role (train, validation, test, rehearsal) or a part's dataset name to a file-like
    object or frame that replaces the request's path for it: the page checks an upload before it is
    saved; tests pass frames."""
    sources = sources or {}
    parts, notes = request_parts(request)
    loaded_parts: list[LoadedPart] = []
    for index, part in enumerate(parts):
        key = "train" if index == 0 else "rehearsal" if part.role == "rehearsal" else part.dataset
        source = sources.get(key, sources.get(part.dataset, part.dataset))
        score_range = None if part.unscored else _part_range(part, request)
        if isinstance(source, pd.DataFrame):
            frame = source
        else:
            frame = _load_part_rows(part, source, "train", score_range, notes, note=True)
        name = _name(source if not isinstance(source, pd.DataFrame) else part.dataset, part.role)
        loaded_parts.append(LoadedPart(part, frame, score_range, name, _hash(source, frame, "train")))
    first = loaded_parts[0]
    frames: dict[str, pd.DataFrame | None] = {}
    names = {"train": first.name}
    hashes = {"train": first.sha256}
    validation = request.validation
    if validation is None and "validation" not in sources and first.part.dataset in data.BUNDLED_DATASETS:
        if "validation" in data.BUNDLED_DATASETS[first.part.dataset].splits or bundled_split(
                first.part.dataset, "validation") == "dev":
            validation = first.part.dataset
            notes.append(f"Validation: the bundled {validation} validation split.")
    for role, path in (("validation", validation), ("test", request.test)):
        source = sources.get(role, path)
        if source is None:
            frames[role] = None
            continue
        frame = source if isinstance(source, pd.DataFrame) else _load_part_rows(
            first.part, source, role, first.score_range, notes, note=False)
        frames[role] = frame
        names[role] = _name(source if not isinstance(source, pd.DataFrame) else path, role)
        hashes[role] = _hash(source, frame, role)
    result = TrainingData(first.frame, frames["validation"], frames["test"], names=names, hashes=hashes,
                          notes=notes, parts=loaded_parts)
    rehearsal = next((p for p in loaded_parts if p.part.role == "rehearsal"), None)
    if rehearsal is not None:
        result.rehearsal, result.rehearsal_range = rehearsal.frame, rehearsal.score_range
        result.names["rehearsal"], result.hashes["rehearsal"] = rehearsal.name, rehearsal.sha256
    return check_pair_data(request, result)


def check_pair_data(request: PairTrainingRequest, loaded: TrainingData) -> TrainingData:
    """Hold out validation if none was given, sample it, and refuse data that cannot train."""
    first = loaded.parts[0] if loaded.parts else None
    unscored = first.part.unscored if first else request.unscored
    objective = first.part.objective if first else request.objective
    train, validation = loaded.train, loaded.validation
    if not unscored and "score" not in train.columns:
        raise TrainingError(f"the {objective} objective needs a score column; use mnrl for unscored pairs")
    if validation is None and train is not None and len(train) >= 4:
        train, validation = split_validation(train, request.validation_fraction, request.seed)
        loaded.validation_split_off = True
    check_rows(train, "training", request.batch_size)
    check_rows(validation, "validation", 2)
    if not unscored and train["score"].nunique() < 2:
        raise TrainingError("every training pair has the same score: there is nothing to learn from; use pairs "
                            "with different scores, or the mnrl objective for unscored pairs")
    for other in loaded.parts[1:]:
        what = "rehearsal" if other.part.role == "rehearsal" else f"{other.name} part"
        check_rows(other.frame, what, 2)
        if not other.part.unscored and "score" not in other.frame.columns:
            raise TrainingError(f"the {what} needs a score column for {other.part.objective}; use mnrl for "
                                f"unscored pairs")
    if first is not None:
        loaded.parts[0] = dataclasses.replace(first, frame=train)
    loaded.train, loaded.validation = train, data.sample_rows(validation, request.validation_rows, request.seed)
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


def split_labelled(loaded: Any, request: Any, what: str) -> tuple[list[str], pd.DataFrame, pd.DataFrame]:
    """The training labels, and (train, validation) with validation split off, stratified, when none was
    given (then `loaded.validation_split_off`); refuses one class, and validation or test labels the
    training data never has. `what` names the model in the message ("a classifier")."""
    train, validation = loaded.train, loaded.validation
    labels = class_labels(train)
    if len(labels) < 2:
        raise TrainingError(f"the training data has only one class ({labels[0] if labels else 'none'}); "
                            f"{what} needs at least two")
    if validation is None:
        train, validation = split_validation(train, request.validation_fraction, request.seed, stratify="label")
        loaded.validation_split_off = True
    for role, frame in (("validation", validation), ("test", loaded.test)):
        unknown = sorted(set(frame["label"].astype(str)) - set(labels)) if frame is not None else []
        if unknown:
            raise TrainingError(f"{role} labels {unknown} never occur in the training data ({', '.join(labels)})")
    return labels, train, validation


def check_labelled_data(request: ClassifierTrainingRequest, loaded: TrainingData) -> TrainingData:
    _, train, validation = split_labelled(loaded, request, "a classifier")
    check_rows(train, "training", request.batch_size)
    check_rows(validation, "validation", 2)
    loaded.train, loaded.validation = train, data.sample_rows(validation, request.validation_rows, request.seed)
    return loaded
