"""Index builds in background threads, shared by every session of this server process.

A build keeps going when the user clicks elsewhere or refreshes the page (a build inside the script run
would be cut short by the next rerun), and every page shows the same progress. The index folder is
written atomically by semsim.corpus_index.build_index, so an interrupted build leaves nothing half-written.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semsim_app import catalog


@dataclass
class BuildJob:
    out_dir: str
    spec: str
    source: str
    column: str
    done: int = 0
    total: int = 0
    phase: str = "waiting"  # waiting -> loading model -> embedding -> saved | failed
    error: str | None = None
    result: dict[str, Any] | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    embedding_started: float | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.finished is None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    def eta_seconds(self) -> float | None:
        elapsed = time.time() - (self.embedding_started or self.started)
        if not self.total or not self.done or self.done >= self.total:
            return None
        return elapsed / self.done * (self.total - self.done)


_jobs: dict[str, BuildJob] = {}
_lock = threading.Lock()


def _key(out_dir: str | Path) -> str:
    return str(Path(out_dir).resolve())


def get(out_dir: str | Path) -> BuildJob | None:
    with _lock:
        return _jobs.get(_key(out_dir))


def active() -> list[BuildJob]:
    with _lock:
        return [job for job in _jobs.values() if job.running]


def start_build(out_dir: str | Path, spec: str, source: str | Path, column: str,
                extra_columns: Sequence[str] = (), overwrite: bool = False,
                encoder: Any = None, dim: int | None = None) -> BuildJob:
    """Start building an index (or return the build already running for that folder).

    `encoder` is the loaded model for `spec`; without it the thread loads it (bundled specs through the
    library's shared cache, folders afresh). `dim`: keep each vector's first `dim` dimensions
    (Matryoshka); the index records it and the Search page cuts queries to match.
    """
    key = _key(out_dir)
    with _lock:
        job = _jobs.get(key)
        if job is not None and job.running:
            return job
        job = BuildJob(key, spec, str(source), column)
        _jobs[key] = job

    def run() -> None:
        try:
            from semsim.corpus_index import build_index

            model = encoder
            if model is None:
                from semsim.encoders.serving import load_for_inference

                job.phase = "loading model"
                model = load_for_inference(spec, cache=catalog.model_stamp(spec) is None)
            if dim:
                from semsim.matryoshka import with_dim

                model = with_dim(model, dim)
            job.phase = "embedding"
            job.embedding_started = time.time()

            def progress(done: int, total: int) -> None:
                job.done, job.total = done, total

            job.result = build_index(model, str(source), column=column, out_dir=key,
                                     extra_columns=list(extra_columns), progress=progress, overwrite=overwrite)
            job.phase = "saved"
        except Exception as exc:  # shown to the user on the page that follows the build
            job.error = str(exc) or type(exc).__name__
            job.phase = "failed"
            job.result = {"traceback": traceback.format_exc()}
        finally:
            job.finished = time.time()

    job.thread = threading.Thread(target=run, name=f"index-build:{Path(key).name}", daemon=True)
    job.thread.start()
    return job


def forget(out_dir: str | Path) -> None:
    """Drop a finished job's record (its error or result)."""
    with _lock:
        job = _jobs.get(_key(out_dir))
        if job is not None and not job.running:
            del _jobs[_key(out_dir)]


def wait(out_dir: str | Path, timeout: float = 600.0) -> BuildJob | None:
    """Block until the build for `out_dir` finishes (for tests and scripts)."""
    job = get(out_dir)
    if job is not None and job.thread is not None:
        job.thread.join(timeout)
    return job
