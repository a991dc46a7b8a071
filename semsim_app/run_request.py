"""A training run planned from the Train page: the request (semsim.training.spec) the form filled in,
its data loaded and checked by the same code the run itself uses, and the upload it will train on.

Nothing here starts a process: semsim_app.run_store writes the request as JSON and starts
`python -m semsim train TASK --request request.json`, which checks and runs that same request."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

from semsim.training.spec import REQUESTS, TrainingArguments
from semsim_app import settings

# The bundled datasets the page offers per task, with the names people see.
PAIR_DATASETS = {"job-title-pairs": "ONS job-title pairs", "sts-b": "STS Benchmark"}
LABELLED_DATASETS = {"rotten-tomatoes": "Rotten Tomatoes reviews"}
BUNDLED_CHOICES = {"pairs": PAIR_DATASETS, "sentiment": LABELLED_DATASETS}
UPLOAD = "upload"


class RunError(ValueError):
    """A training request that cannot start, with a message saying what to change."""


@dataclasses.dataclass
class RunPlan:
    """A checked request, ready to start: what it trains on, a preview of that data, and the upload."""

    request: TrainingArguments
    data: Any  # semsim.training.inputs.TrainingData: the frames the run will train and evaluate on
    description: str
    upload: tuple[str, bytes] | None = None  # (file name in the run folder, bytes as uploaded)

    @property
    def task(self) -> str:
        return self.request.TASK

    @property
    def out(self) -> Path:
        return Path(self.request.out)

    @property
    def notes(self) -> list[str]:
        return self.data.notes


def upload_file_name(upload_name: str | None) -> str:
    """The name an upload is saved under in the run folder (the model card records it)."""
    return "upload-" + settings.slug(Path(upload_name or "data.csv").name)


def plan_run(task: str, name: str, dataset: str, values: dict[str, Any], *, test_split: bool = False,
             upload: tuple[str, bytes] | None = None) -> RunPlan:
    """Make the request for `task` from the form's `values`, load and check its data; raises RunError,
    TrainingError or DatasetError (all ValueError) with a message for the page."""
    from semsim.training.inputs import load_labelled_data, load_pair_data

    if task not in REQUESTS:
        raise RunError(f"unknown task {task!r}")
    out = settings.models_dir() / settings.check_name(name, "model name")
    bundled = dataset in BUNDLED_CHOICES[task]
    if not bundled and dataset != UPLOAD:
        raise RunError(f"unknown dataset {dataset!r} for {task}")
    sources: dict[str, Any] = {}
    if bundled:
        files = {"data": dataset, "validation": dataset, "test": dataset if test_split else None}
        description = f"{dataset} (bundled)"
    else:
        if upload is None:
            raise RunError("choose a CSV file to upload first")
        upload_name, content = upload
        if len(content) > settings.max_upload_bytes():
            raise RunError(f"{upload_name} is {len(content) / 1e6:.1f} MB; the limit is "
                           f"{settings.max_upload_bytes() / 1e6:.0f} MB. Upload a smaller sample.")
        saved = upload_file_name(upload_name)
        buffer = io.BytesIO(content)
        buffer.name = Path(upload_name).name  # messages name the file the user chose
        sources["train"] = buffer
        # validation_rows samples a bundled validation split; an upload holds out validation_fraction
        files = {"data": saved, "validation": None, "test": None, "validation_rows": None}
        description = f"uploaded file {Path(upload_name).name}"
        upload = (saved, content)
    request = REQUESTS[task](**{**values, **files, "out": str(out)})
    load = load_pair_data if task == "pairs" else load_labelled_data
    return RunPlan(request, load(request, sources), description, upload)
