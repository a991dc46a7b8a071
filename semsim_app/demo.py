"""The Home page's first-launch demo: fine-tune the default job-title recipe (PairTrainingRequest's own
defaults, capped to a step budget this machine runs in a few minutes; the full recipe on a GPU), index the
default corpus with the base and the tuned model, and say beforehand how long that will take.

The training is an ordinary background run (run_request.plan_run + run_store.start), so it survives a page
refresh and shows on the Train page too; the indexes are ordinary background builds (index_builds).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.names import META_FILE
from semsim.names import CONFIG_FILE
from semsim_app import catalog, corpora, index_builds, run_request, run_store, settings

DATASET = "job-title-pairs"
# The CPU budget: steps of the recipe (all its parts together) and validation pairs. 120 steps of batch
# 32 is about a fifth of the recipe's 551-step epoch: enough to move the model, and the whole first launch
# (page load to base and tuned results) fits the 5-minute aim on 2 cores (README, "First launch").
CPU_STEPS = 120
CPU_VALIDATION_ROWS = 300
STEPS_ENV = "SEMSIM_DEMO_STEPS"  # overrides CPU_STEPS (tests use a handful)

# What the estimate is made of, measured with minilm and the default recipe on the project's 2-core CPU
# machines (bench/first_launch.py); other core counts scale the CPU parts. The two kinds of CPU differ by
# about 3x per step, so the estimate follows the kind it runs on. A GPU run is dominated by XLA compiles.
CPU_CORES_MEASURED = 2


@dataclass(frozen=True)
class CpuCosts:
    """Seconds per training step (one batch of 32, the recipe's parts averaged; mnrl rows carry 3 texts),
    texts embedded per second (validation pairs, index texts), process start, model save."""

    seconds_per_step: float
    texts_per_second: float
    startup_seconds: float
    save_seconds: float = 5


# An AVX-512 EPYC (VNNI, BF16): 120 steps in 57 s, 7,276 titles indexed in about 6 s (first launch 95 s, load
# about 2.5, README "First launch"). An AVX2-only EPYC: 150 steps in 217 s, titles in 28 s and 23 s.
CPU_COSTS = {"avx512": CpuCosts(0.47, 1200, 12), "avx2": CpuCosts(1.45, 260, 15)}


def cpu_costs(flags: frozenset[str] | None = None) -> CpuCosts:
    """The measured costs of the kind of CPU this is (`flags`: /proc/cpuinfo's, or simulated)."""
    from semsim.encoders.precision import cpu_flags

    flags = cpu_flags() if flags is None else flags
    return CPU_COSTS["avx512" if "avx512f" in flags else "avx2"]


GPU_SECONDS_PER_STEP = 0.01
GPU_FIXED_SECONDS = 120  # startup and one compile per padded length
GPU_TEXTS_PER_SECOND = 2000

ACTIVE = ("starting", "running", "cancelling")


def model_name(base: str | None = None) -> str:
    """The demo model's folder name, from the base it tunes (e.g. minilm-job-titles-demo)."""
    base = base or settings.default_model()
    return settings.slug(f"{catalog.describe_spec(base).split(':')[-1][:40]}-job-titles-demo")


def model_dir() -> Path:
    return settings.models_dir() / model_name()


def step_budget(on_gpu: bool) -> int | None:
    """Steps per epoch of the demo run: None (the whole recipe) on a GPU, else the CPU budget."""
    override = os.environ.get(STEPS_ENV, "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    return None if on_gpu else CPU_STEPS


def request_values(on_gpu: bool) -> dict[str, Any]:
    """What the demo sets on top of PairTrainingRequest's defaults (the recipe itself stays the default):
    the base, the step cap and, on a CPU, a validation sample and no extra forgetting guard in the card."""
    from semsim.training.spec import PairTrainingRequest, fields

    known = {spec.name for spec in fields(PairTrainingRequest)}
    values: dict[str, Any] = {"base": settings.default_model(), "max_steps_per_epoch": step_budget(on_gpu),
                              "overwrite": True}
    if not on_gpu:
        values.update(validation_rows=CPU_VALIDATION_ROWS, evaluate_sts=False)
    return {name: value for name, value in values.items() if name in known}


def plan(on_gpu: bool) -> run_request.RunPlan:
    """The demo's training run, checked (its data loaded) but not started."""
    return run_request.plan_run("pairs", model_name(), DATASET, request_values(on_gpu))


@dataclass(frozen=True)
class PlanSummary:
    """What the estimate needs from a plan (cheap to keep: planning loads the training data)."""

    base: str
    steps: int  # all epochs, after the step cap
    validation: int  # validation pairs
    epochs: int


def summarize(planned: run_request.RunPlan) -> PlanSummary:
    request = planned.request
    steps = _epoch_steps(planned)
    if request.max_steps_per_epoch:
        steps = min(steps, request.max_steps_per_epoch)
    validation = 0 if planned.data.validation is None else len(planned.data.validation)
    return PlanSummary(request.base, steps * request.epochs, validation, request.epochs)


@dataclass
class Estimate:
    """How long the demo takes, in seconds, before it starts."""

    steps: int
    training: float
    evaluation: float
    indexing: float
    fixed: float

    @property
    def total(self) -> float:
        return self.fixed + self.training + self.evaluation + self.indexing


def busy_factor(cpu_count: int | None) -> float | None:
    """How many times over the CPUs are asked for right now (1-minute load average / cores), when that is
    well above 1: the estimate assumes the machine to itself, and says so rather than guess the share."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return None
    factor = load / max(1, cpu_count or 1)
    return factor if factor > 1.5 else None


def _epoch_steps(planned: run_request.RunPlan) -> int:
    """Steps of one epoch over every part of the recipe (each part in batches of its own)."""
    batch = planned.request.batch_size
    loaded = planned.data
    # Each part draws weight x its rows an epoch (the recipe's weights; 1 where a part has none).
    sized = [(p.frame, float(getattr(p.part, "weight", 1.0))) for p in getattr(loaded, "parts", None) or []]
    if not sized:
        sized = [(f, 1.0) for f in (loaded.train, getattr(loaded, "rehearsal", None)) if f is not None]
    return sum(math.ceil(len(frame) * weight / batch) for frame, weight in sized)


def _corpus_rows(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return max(0, sum(1 for _ in handle) - 1)
    except OSError:
        return 0


def estimate(summary: PlanSummary, on_gpu: bool, cpu_count: int | None, costs: CpuCosts | None = None) -> Estimate:
    """Seconds for the demo: training steps, the validation before and after, saving, and indexing the
    default corpus with the tuned model (and with the base one, when its index does not exist yet)."""
    corpus, _ = settings.default_corpus()
    to_index = _corpus_rows(corpus) * (1 if (corpora.default_index_dir() / META_FILE).is_file() else 2)
    # Validation runs before training and after each epoch, both texts of each pair.
    validation_texts = 2 * summary.validation * (summary.epochs + 1)
    if on_gpu:
        return Estimate(summary.steps, summary.steps * GPU_SECONDS_PER_STEP, validation_texts / GPU_TEXTS_PER_SECOND,
                        to_index / GPU_TEXTS_PER_SECOND, GPU_FIXED_SECONDS)
    costs = costs or cpu_costs()
    slower = CPU_CORES_MEASURED / max(1, min(cpu_count or CPU_CORES_MEASURED, 16))
    return Estimate(summary.steps, summary.steps * costs.seconds_per_step * slower,
                    validation_texts / costs.texts_per_second * slower, to_index / costs.texts_per_second * slower,
                    costs.startup_seconds + costs.save_seconds)


# -- where the demo stands ------------------------------------------------------------------------
@dataclass
class DemoState:
    """offer (nothing yet) -> training -> indexing -> ready; failed at any step, with the reason."""

    phase: str
    run: run_store.Run | None = None
    status: str | None = None  # the run's status
    tuned_spec: str | None = None
    base_index: Path | None = None
    tuned_index: Path | None = None
    error: str | None = None
    jobs: tuple[index_builds.BuildJob, ...] = ()


def demo_run() -> run_store.Run | None:
    """The newest run that trains the demo model."""
    folder = model_dir()
    return next((run for run in run_store.list_runs() if run.out == folder), None)


def tuned_index_dir() -> Path:
    corpus, _ = settings.default_corpus()
    return settings.indexes_dir() / catalog.index_name(str(model_dir()), corpus.name)


def state() -> DemoState:
    """Where the demo stands, read from disk (the run folder, the model, the index folders) and from the
    background builds of this server process."""
    run = demo_run()
    status = run_store.status(run) if run is not None else None
    folder = model_dir()
    if status in ACTIVE:
        return DemoState("training", run, status)
    if not (folder / CONFIG_FILE).is_file():
        if status in ("failed", "cancelled"):
            reason = run_store.error_message(run) if status == "failed" else "the run was cancelled"
            return DemoState("failed", run, status, error=reason)
        return DemoState("offer", run, status)
    base_index, tuned_index = corpora.default_index_dir(), tuned_index_dir()
    jobs = tuple(job for job in (index_builds.get(base_index), index_builds.get(tuned_index)) if job is not None)
    found = DemoState("indexing", run, status, str(folder), base_index, tuned_index, jobs=jobs)
    if all((path / META_FILE).is_file() for path in (base_index, tuned_index)):
        found.phase = "ready"
        return found
    failed = [job for job in jobs if not job.running and job.error]
    if failed:
        found.phase, found.error = "failed", f"building the index {Path(failed[0].out_dir).name} failed: {failed[0].error}"
    return found


def start(on_gpu: bool) -> run_store.Run:
    """Start the demo's training run (refused while another run trains: one at a time on a machine)."""
    busy = run_store.current_run()
    if busy is not None and run_store.status(busy) in ACTIVE and busy.out != model_dir():
        raise run_request.RunError(f"another run ({busy.out.name}) is training; wait for it or cancel it on the "
                                   f"Train page")
    return run_store.start(plan(on_gpu))


def build_indexes() -> list[index_builds.BuildJob]:
    """Start the missing indexes of the default corpus (base and tuned), once per server process: a failed
    build is reported, not retried, until retry() forgets it."""
    corpus, column = settings.default_corpus()
    extras = tuple(c for c in ("unit_group_name", "major_group_name") if corpus.is_file() and c in corpora.header(corpus))
    started = []
    for folder, spec in ((corpora.default_index_dir(), settings.default_model()), (tuned_index_dir(), str(model_dir()))):
        if (folder / META_FILE).is_file():
            continue
        job = index_builds.get(folder)
        if job is not None and (job.running or job.error):
            continue
        started.append(index_builds.start_build(folder, spec, corpus, column, extras, overwrite=True))
    return started


def retry() -> None:
    """Forget the demo's failed index builds, so that build_indexes starts them again."""
    for folder in (corpora.default_index_dir(), tuned_index_dir()):
        index_builds.forget(folder)
