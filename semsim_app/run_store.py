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
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semsim.names import CANCEL_FILE, LOG_FILE, MODEL_CARD_JSON, PARTIAL_SUFFIX
from semsim_app import run_progress, settings
from semsim_app.run_request import RunError, RunPlan

RUN_FILE = "run.json"

_processes: dict[str, subprocess.Popen] = {}


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
        return self.out.with_name(self.out.name + PARTIAL_SUFFIX)

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


REQUEST_FILE = "request.json"


def check_output(out: Path, overwrite: bool) -> Path:
    """The output folder, refused when it would clobber a model or another run's work."""
    if active_run_for(out) is not None:
        raise RunError(f"a run is already training {out.name}; wait for it or cancel it")
    if out.exists() and not overwrite:
        raise RunError(f"a model called {out.name} already exists; choose another name or tick "
                       f"'replace an existing model'")
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    if partial.exists() and not overwrite:
        raise RunError(f"an interrupted run left {partial.name}; tick 'replace an existing model' to start "
                       f"{out.name} again")
    return out


def start(plan: RunPlan) -> Run:
    """Write the run folder (the request as JSON, the upload) and start `python -m semsim train TASK
    --request request.json` in the background: the run checks and trains that very request."""
    request = plan.request
    out = check_output(plan.out, request.overwrite)
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + settings.slug(out.name)
    run_dir = settings.runs_dir() / run_id
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = settings.runs_dir() / f"{run_id}-{suffix}"
    run_dir.mkdir(parents=True)
    try:
        if plan.upload is not None:  # the user's own file, kept as it was uploaded
            name, content = plan.upload
            (run_dir / name).write_bytes(content)
        request.write_json(run_dir / REQUEST_FILE)
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "semsim", "train", plan.task, "--request", REQUEST_FILE, "--json"]
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
    values = request.to_dict()
    info = {"id": run_dir.name, "pid": process.pid, "command": command, "cwd": str(run_dir), "out": str(out),
            "task": plan.task, "base": request.base, "name": out.name, "dataset": plan.description,
            "objective": values.get("objective"), "mode": values.get("mode"), "hyperparameters": values,
            "started": time.time(), "notes": plan.notes}
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
    path = run.out / MODEL_CARD_JSON
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
    """This run's progress events so far (see semsim_app.run_progress)."""
    return run_progress.read_events(log_path(run))


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
