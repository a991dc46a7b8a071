"""A training request from the Train page: its data loaded and checked, and the CLI arguments that run it.

Nothing here starts a process: semsim_app.run_store writes the files and starts `python -m semsim train`.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from semsim_app import settings
from semsim_app.sampling import sample_rows

# Bundled data per task, and the pair datasets' score ranges.
PAIR_DATASETS = {"job-title-pairs": "ONS job-title pairs", "sts-b": "STS Benchmark"}
LABELLED_DATASETS = {"rotten-tomatoes": "Rotten Tomatoes reviews"}
OBJECTIVES = ("cosent", "angular-mse", "mnrl")
# mnrl learns from positive pairs only: a graded pair counts as positive at or above this share of its range.
POSITIVE_THRESHOLD = 0.75


class RunError(ValueError):
    """A training request that cannot start, with a message saying what to change."""


# -- the request --------------------------------------------------------------------------------
@dataclass
class TrainRequest:
    task: str  # "pairs" or "sentiment"
    base: str
    name: str
    dataset: str  # a key of PAIR_DATASETS / LABELLED_DATASETS, or "upload"
    objective: str = "cosent"
    mode: str = "full"
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    patience: int = 2
    max_steps_per_epoch: int | None = None
    validation_rows: int | None = 500  # sample of the bundled validation split (None: all of it)
    full_evaluation: bool = False  # test split (and STS-B for pairs) in the model card: slower
    overwrite: bool = False
    upload_name: str | None = None
    upload_bytes: bytes | None = None
    score_range: tuple[float, float] = (0.0, 1.0)  # of an uploaded pairs file
    rehearsal: bool = False  # pairs: STS-B train in batches of its own, against forgetting
    merge_alpha: float = 1.0  # pairs: WiSE-FT, keep base + alpha * (tuned - base)
    head_warmup_epochs: int = 0  # sentiment, full mode: LP-FT, fit the new head alone first

    @property
    def out(self) -> Path:
        return settings.models_dir() / settings.check_name(self.name, "model name")


@dataclass
class PreparedData:
    """Validated training data: frames to preview, files to write, and the CLI arguments that read them."""

    train: pd.DataFrame
    validation: pd.DataFrame | None
    test: pd.DataFrame | None
    args: list[str]
    files: dict[str, pd.DataFrame | bytes]  # file name in the run folder -> content
    description: str
    notes: list[str] = dataclasses.field(default_factory=list)


def _bundled_splits(name: str, request: TrainRequest) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """A bundled dataset's train split, a sample of its validation split, and its test split if asked for."""
    from semsim import data

    validation = sample_rows(data.load_bundled(name, "validation"), request.validation_rows)
    test = data.load_bundled(name, "test") if request.full_evaluation else None
    return data.load_bundled(name, "train"), validation, test


def _positives(frame: pd.DataFrame, low: float, high: float) -> pd.DataFrame:
    cut = low + POSITIVE_THRESHOLD * (high - low)
    return frame[frame["score"] >= cut][["text_a", "text_b"]].reset_index(drop=True)


def _upload_frame(request: TrainRequest) -> Any:
    if request.upload_bytes is None:
        raise RunError("choose a CSV file to upload first")
    if len(request.upload_bytes) > settings.max_upload_bytes():
        raise RunError(f"{request.upload_name} is {len(request.upload_bytes) / 1e6:.1f} MB; the limit is "
                       f"{settings.max_upload_bytes() / 1e6:.0f} MB. Upload a smaller sample.")
    buffer = io.BytesIO(request.upload_bytes)
    buffer.name = request.upload_name or "upload.csv"
    return buffer


def prepare_data(request: TrainRequest) -> PreparedData:
    """Load and check the data for a request (raises semsim.data.DatasetError or RunError)."""
    from semsim import data

    if request.task == "pairs":
        if request.objective not in OBJECTIVES:
            raise RunError(f"unknown objective {request.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        unscored = request.objective == "mnrl"
        files: dict[str, pd.DataFrame | bytes] = {}
        notes: list[str] = []
        test = None
        if request.dataset == "job-title-pairs":
            low, high = data.BUNDLED_DATASETS["job-title-pairs"].score_range
            train, validation, test = _bundled_splits("job-title-pairs", request)
            description = "job-title-pairs (bundled)"
        elif request.dataset == "sts-b":
            low, high = data.BUNDLED_DATASETS["sts-b"].score_range
            train = data.load_sts("train")
            validation = sample_rows(data.load_sts("dev"), request.validation_rows)
            if request.full_evaluation:
                test = data.load_sts("test")
            description = "sts-b (bundled)"
        elif request.dataset == "upload":
            low, high = request.score_range
            source = _upload_frame(request)
            train = (data.load_positive_pairs(source) if unscored
                     else data.load_pairs(source, score_range=(low, high)))
            validation = None
            description = f"uploaded file {Path(request.upload_name or 'upload.csv').name}"
        else:
            raise RunError(f"unknown pairs dataset {request.dataset!r}")
        if unscored and "score" in train.columns:
            train = _positives(train, low, high)
            notes.append(f"mnrl trains on positive pairs only: {len(train):,} pairs scoring at least "
                         f"{low + POSITIVE_THRESHOLD * (high - low):g}.")
        if unscored and validation is not None and "score" in validation.columns:
            validation = _positives(validation, low, high)
        if unscored and test is not None and "score" in test.columns:
            test = _positives(test, low, high)
        columns = ["text_a", "text_b"] if unscored else ["text_a", "text_b", "score"]
        args = ["--objective", request.objective]
        args += _files(files, _stem(request), {"train": train, "validation": validation, "test": test}, columns)
        if not unscored:
            args += ["--score-range", f"{low:g},{high:g}"]
        if not request.full_evaluation:
            args.append("--no-sts")
        _check_sizes(request, train, validation)
        if not unscored and train["score"].nunique() < 2:
            raise RunError("every training pair has the same score: there is nothing to learn from; "
                           "use pairs with different scores, or the mnrl objective for unscored pairs")
        return PreparedData(train, validation, test, args, files, description, notes)

    if request.task == "sentiment":
        if request.mode not in ("full", "frozen"):
            raise RunError(f"mode must be full or frozen, not {request.mode!r}")
        test = None
        if request.dataset == "rotten-tomatoes":
            train, validation, test = _bundled_splits("rotten-tomatoes", request)
            description = "rotten-tomatoes (bundled)"
        elif request.dataset == "upload":
            train = data.load_labelled(_upload_frame(request))
            validation = None
            description = f"uploaded file {Path(request.upload_name or 'upload.csv').name}"
        else:
            raise RunError(f"unknown labelled dataset {request.dataset!r}")
        files = {}
        args = ["--mode", request.mode]
        args += _files(files, _stem(request), {"train": train, "validation": validation, "test": test},
                       ["text", "label"])
        _check_sizes(request, train, validation)
        return PreparedData(train, validation, test, args, files, description)
    raise RunError(f"unknown task {request.task!r}")


def _stem(request: TrainRequest) -> str:
    """Files are named after the dataset: the model card records the training file's name."""
    if request.dataset == "upload":
        return settings.slug(Path(request.upload_name or "upload.csv").stem)
    return request.dataset


def _files(files: dict[str, pd.DataFrame | bytes], stem: str, frames: dict[str, pd.DataFrame | None],
           columns: list[str]) -> list[str]:
    """Add each split to `files` as <stem>-<split>.csv; return the CLI flags that read them."""
    flags = {"train": "--data", "validation": "--validation", "test": "--test"}
    args: list[str] = []
    for split, frame in frames.items():
        if frame is not None:
            name = f"{stem}-{split}.csv"
            files[name] = frame[columns]
            args += [flags[split], name]
    return args


def _check_sizes(request: TrainRequest, train: pd.DataFrame, validation: pd.DataFrame | None) -> None:
    """The checks the trainer would make, made now so the user sees them before a process starts."""
    from semsim.training.trainer import TrainConfig, TrainingError

    config = TrainConfig(epochs=request.epochs, batch_size=request.batch_size,
                         learning_rate=request.learning_rate, warmup_ratio=request.warmup_ratio,
                         patience=request.patience, max_steps_per_epoch=request.max_steps_per_epoch,
                         merge_alpha=request.merge_alpha if request.task == "pairs" else 1.0,
                         head_warmup_epochs=request.head_warmup_epochs if _lp_ft(request) else 0)
    try:
        config.check()
    except TrainingError as exc:
        raise RunError(str(exc)) from None
    usable = len(train) if validation is not None else int(len(train) * (1 - config.validation_fraction))
    if usable < request.batch_size:
        raise RunError(f"the training data has {usable:,} usable rows, fewer than one batch of "
                       f"{request.batch_size}; lower the batch size or add rows")
    if validation is not None and len(validation) < 2:
        raise RunError("the validation data has fewer than 2 rows")


def _lp_ft(request: TrainRequest) -> bool:
    """Head warm-up applies to full fine-tuning of a classifier only (a frozen run trains just the head)."""
    return request.task == "sentiment" and request.mode == "full" and request.head_warmup_epochs > 0


def cli_arguments(request: TrainRequest) -> list[str]:
    args = ["--base", request.base, "--epochs", str(request.epochs), "--batch-size", str(request.batch_size),
            "--learning-rate", repr(float(request.learning_rate)), "--warmup-ratio",
            repr(float(request.warmup_ratio)), "--patience", str(request.patience)]
    if request.max_steps_per_epoch:
        args += ["--max-steps-per-epoch", str(request.max_steps_per_epoch)]
    if request.task == "pairs":
        if request.rehearsal and request.objective != "mnrl":
            args += ["--rehearsal-data", "sts-b"]
        if request.merge_alpha != 1.0:
            args += ["--merge-alpha", repr(float(request.merge_alpha))]
    if _lp_ft(request):
        args += ["--head-warmup-epochs", str(request.head_warmup_epochs)]
    if request.overwrite:
        args.append("--overwrite")
    return args
