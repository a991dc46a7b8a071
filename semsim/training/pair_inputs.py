"""A pair-classifier request's data: labelled or scored pairs from CSV, SNLI/MultiNLI .jsonl or bundled sets, loaded, split and checked before training. No Keras here."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pandas as pd

from semsim import data
from semsim.training.inputs import (
    TrainingData,
    bundled_split,
    check_rows,
    resolve,
    split_labelled,
    split_validation,
)
from semsim.training.spec import PairClassifierTrainingRequest, TrainingError

CLASSIFICATION, REGRESSION = "classification", "regression"
ROLES = ("train", "validation", "test")


@dataclasses.dataclass
class PairClassData(TrainingData):
    """TrainingData plus what the head is: classification (label column) or regression (score column)."""

    head: str = CLASSIFICATION
    score_range: tuple[float, float] | None = None


def _source_head(source: Any) -> str | None:
    """What a source holds: labels (classification) or scores (regression); None when it cannot tell."""
    if isinstance(source, pd.DataFrame):
        return CLASSIFICATION if "label" in source.columns else REGRESSION if "score" in source.columns else None
    if isinstance(source, str) and source in data.BUNDLED_DATASETS:
        kind = data.BUNDLED_DATASETS[source].kind
        return CLASSIFICATION if kind == "labelled-pairs" else REGRESSION if kind in ("pairs", "sts") else None
    if data.is_jsonl(source):
        return CLASSIFICATION
    header = set(data.read_csv(source).columns)
    if header & {"label", "gold_label"}:
        return CLASSIFICATION
    if "score" in header:
        return REGRESSION
    name = Path(source).name if isinstance(source, str) else getattr(source, "name", "the data")
    raise data.DatasetError(str(name), f"needs a label column (classification: text_a, text_b, label) or a score "
                                       f"column (regression: text_a, text_b, score); the file has: "
                                       f"{', '.join(sorted(header))}")


def _bundled_range(source: Any) -> tuple[float, float] | None:
    bundled = data.BUNDLED_DATASETS.get(source) if isinstance(source, str) else None
    return tuple(bundled.score_range) if bundled is not None and bundled.score_range else None


def _load(source: Any, role: str, head: str, score_range: tuple[float, float]) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    bundled = data.BUNDLED_DATASETS.get(source) if isinstance(source, str) else None
    if bundled is not None:
        if head == REGRESSION and bundled.kind in ("pairs", "sts"):
            return data.load_pairs(resolve(source, role), bundled.score_range, bundled.columns)
        if head == CLASSIFICATION and bundled.kind == "labelled-pairs":
            return data.load_bundled(source, bundled_split(source, role))
        other = "sts-b-bands (STS-B in three classes)" if source == "sts-b" else "a dataset of the other kind"
        raise TrainingError(f"{source} holds {'scores' if bundled.kind != 'labelled-pairs' else 'labels'}, not "
                            f"what a {head} head needs; use {other}, or --head auto")
    if head == CLASSIFICATION:
        return data.load_labelled_pairs(source)
    return data.load_pairs(source, score_range=score_range)


def _name(source: Any, default: str) -> str:
    if isinstance(source, str):
        return source if source in data.BUNDLED_DATASETS else Path(source).name
    return getattr(source, "name", None) or default


def _columns(frame: pd.DataFrame, head: str, role: str) -> None:
    """Frames handed in directly (the page, tests) get the checks a file gets from its loader."""
    wanted = ["text_a", "text_b", "label" if head == CLASSIFICATION else "score"]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise TrainingError(f"the {role} data lacks column(s) {', '.join(missing)}; it has "
                            f"{', '.join(map(str, frame.columns))}")
    for column in ("text_a", "text_b"):
        empty = frame[column].astype(str).str.strip() == ""
        if empty.any():
            raise TrainingError(f"the {role} data has {int(empty.sum())} empty {column} text(s), the first in "
                                f"data row {int(empty.to_numpy().argmax()) + 1}")


def load_pair_class_data(request: PairClassifierTrainingRequest,
                         sources: dict[str, Any] | None = None) -> PairClassData:
    """Load, split and check the data of a pair-classifier request.

    `sources` maps a role (train, validation, test) to a file-like object or frame that replaces the
    request's path for it (the page checks an upload before it is saved; tests pass frames)."""
    sources = sources or {}
    train_source = sources.get("train", request.data)
    head = request.head if request.head != "auto" else _source_head(train_source)
    if head is None:
        raise TrainingError("the training data has neither a label nor a score column")
    score_range = tuple(request.score_range or _bundled_range(request.data) or (0.0, 1.0))
    paths = {"train": request.data, "validation": request.validation, "test": request.test}
    if paths["validation"] is None and isinstance(request.data, str) and request.data in data.BUNDLED_DATASETS:
        paths["validation"] = request.data  # a bundled set's own validation split: split by unit group, no leak
    frames: dict[str, pd.DataFrame | None] = {}
    names: dict[str, str] = {}
    hashes: dict[str, str] = {}
    notes: list[str] = []
    for role in ROLES:
        source = sources.get(role, paths[role])
        if source is None:
            frames[role] = None
            continue
        frame = _load(source, role, head, score_range)
        _columns(frame, head, role)
        dropped = int(frame.attrs.get("dropped_no_gold", 0))
        if dropped:
            notes.append(f"{role}: {dropped:,} pair(s) with gold_label '-' (no annotator majority) dropped, "
                         f"{len(frame):,} kept.")
        frames[role] = frame
        names[role] = _name(source if not isinstance(source, pd.DataFrame) else paths[role], role)
        if isinstance(source, str):
            hashes[role] = data.content_hash(resolve(source, role))
        elif isinstance(source, pd.DataFrame):
            hashes[role] = data.content_hash(frame)
        else:  # an upload: hash its bytes
            raw = source.getvalue() if hasattr(source, "getvalue") else None
            hashes[role] = data.content_hash(raw if isinstance(raw, bytes) else frame)
    loaded = PairClassData(frames["train"], frames["validation"], frames["test"], names=names, hashes=hashes,
                           notes=notes, head=head, score_range=score_range if head == REGRESSION else None)
    return check_pair_class_data(request, loaded)


def check_pair_class_data(request: PairClassifierTrainingRequest, loaded: PairClassData) -> PairClassData:
    """Hold out validation if none was given, sample it, and refuse data that cannot train."""
    train, validation = loaded.train, loaded.validation
    if loaded.head == CLASSIFICATION:
        labels, train, validation = split_labelled(loaded, request, "a pair classifier")
        order = request.labels_in_order()
        if order is not None and sorted(order) != labels:
            raise TrainingError(f"--label-order lists {', '.join(order)}; the labels are {', '.join(labels)}")
    else:
        if train["score"].nunique() < 2:
            raise TrainingError("every training pair has the same score: there is nothing to learn from")
        if validation is None:
            train, validation = split_validation(train, request.validation_fraction, request.seed)
            loaded.validation_split_off = True
    check_rows(train, "training", request.batch_size)
    check_rows(validation, "validation", 2)
    loaded.train, loaded.validation = train, data.sample_rows(validation, request.validation_rows, request.seed)
    return loaded


def upload_buffer(name: str, raw: bytes) -> io.BytesIO:
    """An uploaded file as the loaders read it (its name tells a .jsonl from a CSV)."""
    handle = io.BytesIO(raw)
    handle.name = name
    return handle
