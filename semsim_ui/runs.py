"""Training runs as background processes, described on disk so a page refresh finds them again.

A run is a folder `<workspace>/runs/<id>/` holding run.json (what was started: pid, command, output
folder, start time), stdout.log / stderr.log of the process, and the training CSVs the run reads (an
uploaded file is validated with semsim's loaders, then saved here before anything starts). While it
trains, the CLI appends progress to `<out>.partial/train_log.jsonl`; when it finishes, the folder is
renamed to `<out>` with model_card.json inside. Cancelling = creating `<out>.partial/CANCEL`.

Nothing here imports Streamlit: the Train page renders what these functions return.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from semsim_ui import settings

RUN_FILE = "run.json"
LOG_FILE = "train_log.jsonl"  # = semsim.training.trainer.LOG_FILE (imported lazily there: it loads Keras)
CANCEL_FILE = "CANCEL"
# Bundled data per task, and the pair datasets' score ranges.
PAIR_DATASETS = {"job-title-pairs": "ONS job-title pairs", "sts-b": "STS Benchmark"}
LABELLED_DATASETS = {"rotten-tomatoes": "Rotten Tomatoes reviews"}
OBJECTIVES = ("cosent", "angular-mse", "mnrl")
# mnrl learns from positive pairs only: a graded pair counts as positive at or above this share of its range.
POSITIVE_THRESHOLD = 0.75

_processes: dict[str, subprocess.Popen] = {}


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


def _sample(frame: pd.DataFrame, rows: int | None, seed: int = 0) -> pd.DataFrame:
    if rows is None or len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=seed).reset_index(drop=True)


def _bundled_splits(name: str, request: TrainRequest) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """A bundled dataset's train split, a sample of its validation split, and its test split if asked for."""
    from semsim import data

    validation = _sample(data.load_bundled(name, "validation"), request.validation_rows)
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
            low, high = data.BUNDLED["job-title-pairs"].score_range
            train, validation, test = _bundled_splits("job-title-pairs", request)
            description = "job-title-pairs (bundled)"
        elif request.dataset == "sts-b":
            low, high = data.BUNDLED["sts-b"].score_range
            train = data.load_sts("train")
            validation = _sample(data.load_sts("dev"), request.validation_rows)
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


# -- runs on disk -------------------------------------------------------------------------------
@dataclass
class Run:
    id: str
    dir: Path
    info: dict[str, Any]

    @property
    def out(self) -> Path:
        return Path(self.info["out"])

    @property
    def partial(self) -> Path:
        return self.out.with_name(self.out.name + ".partial")

    @property
    def pid(self) -> int:
        return int(self.info.get("pid") or 0)

    @property
    def started(self) -> float:
        return float(self.info.get("started") or 0)


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def active_run_for(out: Path) -> Run | None:
    for run in list_runs():
        if run.out == out and status(run) in ("starting", "running", "cancelling"):
            return run
    return None


def check_output(request: TrainRequest) -> Path:
    """The output folder, refused when it would clobber a model or another run's work."""
    out = request.out
    if active_run_for(out) is not None:
        raise RunError(f"a run is already training {out.name}; wait for it or cancel it")
    if out.exists() and not request.overwrite:
        raise RunError(f"a model called {out.name} already exists; choose another name or tick "
                       f"'replace an existing model'")
    partial = out.with_name(out.name + ".partial")
    if partial.exists() and not request.overwrite:
        raise RunError(f"an interrupted run left {partial.name}; tick 'replace an existing model' to start "
                       f"{out.name} again")
    return out


def start(request: TrainRequest, prepared: PreparedData | None = None) -> Run:
    """Validate, write the run folder, and start `python -m semsim train ...` in the background."""
    prepared = prepared or prepare_data(request)
    out = check_output(request)
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + settings.slug(request.name)
    run_dir = settings.runs_dir() / run_id
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = settings.runs_dir() / f"{run_id}-{suffix}"
    run_dir.mkdir(parents=True)
    try:
        for name, content in prepared.files.items():
            if isinstance(content, bytes):
                (run_dir / name).write_bytes(content)
            else:
                content.to_csv(run_dir / name, index=False)
        if request.upload_bytes is not None:  # the user's own file, kept as it was uploaded
            (run_dir / ("upload-" + settings.slug(Path(request.upload_name or "data.csv").name))).write_bytes(
                request.upload_bytes)
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "semsim", "train", request.task, *cli_arguments(request),
                   *prepared.args, "--out", str(out), "--json"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "SEMSIM_MODELS_DIR": str(settings.models_dir()),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(settings.REPO_ROOT),
                                                           os.environ.get("PYTHONPATH")]))}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with open(run_dir / "stdout.log", "wb") as stdout, open(run_dir / "stderr.log", "wb") as stderr:
            process = subprocess.Popen(command, cwd=run_dir, stdin=subprocess.DEVNULL, stdout=stdout,
                                       stderr=stderr, env=env, start_new_session=True)
    except BaseException:
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    _processes[run_dir.name] = process
    info = {"id": run_dir.name, "pid": process.pid, "command": command, "cwd": str(run_dir), "out": str(out),
            "task": request.task, "base": request.base, "name": out.name, "dataset": prepared.description,
            "objective": request.objective if request.task == "pairs" else None,
            "mode": request.mode if request.task == "sentiment" else None,
            "hyperparameters": {k: getattr(request, k) for k in ("epochs", "batch_size", "learning_rate",
                                                                  "warmup_ratio", "patience",
                                                                  "max_steps_per_epoch")},
            "started": time.time(), "notes": prepared.notes}
    _write_json(run_dir / RUN_FILE, info)
    return Run(run_dir.name, run_dir, info)


def load_run(run_dir: Path) -> Run | None:
    try:
        info = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(info, dict) or "out" not in info:
        return None
    return Run(run_dir.name, run_dir, info)


def list_runs() -> list[Run]:
    """Runs on disk, newest first."""
    root = settings.runs_dir()
    if not root.is_dir():
        return []
    runs = [run for run in (load_run(p) for p in root.iterdir() if p.is_dir()) if run is not None]
    return sorted(runs, key=lambda r: -r.started)


def current_run() -> Run | None:
    """The run a page should show: an active one if any, else the latest."""
    runs = list_runs()
    for run in runs:
        if status(run) in ("starting", "running", "cancelling"):
            return run
    return runs[0] if runs else None


# -- process state ------------------------------------------------------------------------------
def _alive(run: Run) -> bool:
    process = _processes.get(run.id)
    if process is not None:  # started by this server: poll() also reaps the finished child
        code = process.poll()
        if code is None:
            return True
        if run.info.get("returncode") is None:
            run.info["returncode"] = code
            run.info["ended"] = time.time()
            with contextlib.suppress(OSError):
                _write_json(run.dir / RUN_FILE, run.info)
        return False
    if run.info.get("returncode") is not None or not run.pid:
        return False
    proc = Path(f"/proc/{run.pid}")
    if proc.parent.is_dir() and Path("/proc/self").exists():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes().decode("utf-8", "replace")
        except (OSError, IndexError):
            return False
        # The pid must still be our training process (pids are reused) and not a zombie.
        return state != "Z" and str(run.out) in cmdline
    try:
        os.kill(run.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def card(run: Run) -> dict[str, Any] | None:
    """The model card this run wrote (None while running, or if the run failed)."""
    path = run.out / "model_card.json"
    try:
        if path.stat().st_mtime < run.started - 1:
            return None  # an older model with the same name
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def status(run: Run) -> str:
    """starting | running | cancelling | finished | cancelled | failed."""
    if _alive(run):
        if run.info.get("cancel_requested") or (run.partial / CANCEL_FILE).exists():
            return "cancelling"
        events = log_events(run)
        return "running" if any(e.get("event") == "start" for e in events) else "starting"
    found = card(run)
    if found is not None:
        return "cancelled" if (found.get("training") or {}).get("cancelled") else "finished"
    if run.info.get("killed"):
        return "cancelled"
    return "failed"


def log_path(run: Run) -> Path | None:
    for folder in (run.partial, run.out):
        path = folder / LOG_FILE
        if path.is_file() and path.stat().st_mtime >= run.started - 1:
            return path
    return None


def log_events(run: Run) -> list[dict[str, Any]]:
    """Progress events so far (a half-written last line is skipped until it is complete)."""
    path = log_path(run)
    if path is None:
        return []
    events = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def cancel(run: Run) -> str:
    """Ask a run to stop: it finishes the current batch, then evaluates and saves what it has."""
    if not _alive(run):
        return "the run is not running"
    run.info["cancel_requested"] = time.time()
    _write_json(run.dir / RUN_FILE, run.info)
    if run.partial.is_dir():
        (run.partial / CANCEL_FILE).touch()
        return "cancelling: training stops after the current batch, then the model is evaluated and saved"
    # Still starting up (nothing written yet): stop the process itself.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(run.pid, signal.SIGTERM)
    run.info["killed"] = True
    _write_json(run.dir / RUN_FILE, run.info)
    return "stopped before training began"


def stderr_tail(run: Run, lines: int = 25) -> str:
    try:
        text = (run.dir / "stderr.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def error_message(run: Run) -> str:
    """The CLI's one-line error (`semsim: error: ...`) if there is one, else the end of stderr."""
    tail = stderr_tail(run, 200)
    for line in reversed(tail.splitlines()):
        if line.startswith("semsim: error:"):
            return line[len("semsim: error:"):].strip()
    return tail.splitlines()[-1] if tail else "the training process ended without saving a model"


# -- progress summary -----------------------------------------------------------------------------
def progress(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers and series for the live panel."""
    start = next((e for e in reversed(events) if e.get("event") == "start"), {})
    steps = [e for e in events if e.get("event") == "step"]
    epochs = [e for e in events if e.get("event") == "epoch"]
    baseline = next((e for e in events if e.get("event") == "baseline"), None)
    end = next((e for e in events if e.get("event") == "end"), None)
    last = steps[-1] if steps else {}
    total = int(start.get("total_steps") or 0)
    step = int((epochs[-1]["step"] if epochs and epochs[-1].get("step", 0) > last.get("step", 0)
                else last.get("step", 0)) or 0)
    metric = baseline.get("metric") if baseline else None
    loss = pd.DataFrame([{"step": e["step"], "loss": e["loss"]} for e in steps
                         if isinstance(e.get("loss"), int | float)])
    val_rows = []
    if baseline and metric:
        val_rows.append({"epoch": 0, "value": baseline.get("value")})
    for e in epochs:
        if metric and isinstance(e.get(metric), int | float):
            val_rows.append({"epoch": e["epoch"], "value": e[metric]})
    return {"total_steps": total, "step": step, "fraction": min(1.0, step / total) if total else 0.0,
            "eta_s": last.get("eta_s"), "examples_per_s": last.get("examples_per_s"),
            "epoch": last.get("epoch") or (epochs[-1]["epoch"] if epochs else None),
            "loss": last.get("loss"), "metric": metric, "loss_series": loss,
            "validation_series": pd.DataFrame(val_rows), "ended": end}
