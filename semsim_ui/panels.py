"""Live panels: background index builds, training runs and the Home page's first-launch demo, re-read every
few seconds by st.fragment."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from semsim_app import catalog, demo, index_builds, run_progress, run_store, settings
from semsim_ui import render, resources, widgets
from semsim_ui.text import md_escape


def _job_line(job: index_builds.BuildJob) -> str:
    name = md_escape(Path(job.out_dir).name)
    if job.phase in ("waiting", "loading model"):
        return f"{name}: loading {md_escape(job.spec)} …"
    if not job.total:
        return f"{name}: reading the corpus …"
    eta = job.eta_seconds()
    return (f"{name}: embedded {job.done:,} of {job.total:,} texts"
            + (f" · about {render.seconds(eta)} left" if eta is not None else ""))


@st.fragment(run_every=settings.POLL_SECONDS)
def _builds_fragment(out_dirs: tuple[str, ...]) -> None:
    found = [job for job in (index_builds.get(d) for d in out_dirs) if job is not None]
    running = [job for job in found if job.running]
    for job in running:
        st.progress(job.fraction, text=_job_line(job))
    if not running:
        st.rerun()  # every build finished: redraw the whole page with the new indexes


def build_progress(out_dirs: Sequence[str | Path]) -> bool:
    """Progress bars for the builds of these index folders; errors of finished ones.

    Returns True while any of them is still running (the caller then waits to show results).
    """
    running, keys = False, []
    for out_dir in out_dirs:
        job = index_builds.get(out_dir)
        if job is None:
            continue
        if job.running:
            running = True
            keys.append(job.out_dir)
        elif job.error:
            widgets.show_error(f"Building the index {Path(job.out_dir).name} failed: {job.error}",
                               "check the model and the corpus column, then build it again.")
    if running:
        _builds_fragment(tuple(keys))
    return running


# -- training -----------------------------------------------------------------------------------
STATUS_TEXT = {
    "starting": ":material/hourglass_top: starting: loading the model and evaluating it before training",
    "running": ":material/directions_run: training",
    "cancelling": ":material/stop_circle: cancelling: stops after the current batch, then evaluates and saves",
    "finished": ":material/check_circle: finished",
    "cancelled": ":material/stop_circle: cancelled (what was learnt so far is saved)",
    "failed": ":material/error: failed",
}


def training_progress(run: run_store.Run, status: str) -> None:
    """Progress bar with ETA, loss and validation curves of one run."""
    progress = run_progress.summary(run_store.log_events(run))
    total = progress["total_steps"]
    if status in ("starting", "running", "cancelling"):
        if total:
            text = (f"step {progress['step']:,} of {total:,} · epoch {progress['epoch'] or 1}"
                    f" · ETA {render.seconds(progress['eta_s'])}")
            if progress.get("examples_per_s"):
                text += f" · {progress['examples_per_s']:.0f} examples/s"
            st.progress(progress["fraction"], text=text)
        else:
            st.progress(0.0, text="waiting for the first training step …")
    render.training_charts(progress, key=f"run.{run.id}")


@st.fragment(run_every=settings.POLL_SECONDS)
def _live_run(run_id: str) -> None:
    run = run_store.load_run(settings.runs_dir() / run_id)
    if run is None:
        return
    status = run_store.status(run)
    if status not in ("starting", "running", "cancelling"):
        st.rerun()  # the run ended: redraw the page with its model card
    st.markdown(f"**{STATUS_TEXT[status]}**")
    training_progress(run, status)


def live_run(run: run_store.Run) -> None:
    _live_run(run.id)


# -- the Home page's first-launch demo -------------------------------------------------------------
@st.fragment(run_every=settings.POLL_SECONDS)
def _demo_training(run_id: str) -> None:
    run = run_store.load_run(settings.runs_dir() / run_id)
    if run is None:
        return
    status = run_store.status(run)
    if status not in demo.ACTIVE:
        st.rerun()  # trained (or failed): redraw Home, which starts the indexes or shows the error
    progress = run_progress.summary(run_store.log_events(run))
    total = progress["total_steps"]
    if status == "starting" or not total:
        st.progress(0.0, text="Step 1 of 2 · fine-tuning: loading the model and measuring it before training …")
    else:
        eta = progress["eta_s"]
        st.progress(progress["fraction"], text=f"Step 1 of 2 · fine-tuning: step {progress['step']:,} of {total:,}"
                                               + (f" · about {render.seconds(eta)} left in training" if eta else ""))


def demo_panel(found: demo.DemoState, on_gpu: bool, cpu_count: int | None, prominent: bool) -> None:
    """Offer the demo with its time estimate, follow it (training, then indexing), or say why it failed."""
    if found.phase == "training" and found.run is not None:
        st.info(f"Fine-tuning {md_escape(demo.model_name())} in the background: this page, a refresh and the other "
                f"pages stay usable. Base and tuned results appear here when it is done.",
                icon=":material/model_training:")
        _demo_training(found.run.id)
        return
    if found.phase == "indexing":
        st.info("Step 2 of 2 · indexing the job titles with the base and the tuned model …",
                icon=":material/database:")
        build_progress([p for p in (found.base_index, found.tuned_index) if p is not None])
        return
    if found.phase == "failed":
        widgets.show_error(f"The demo stopped: {found.error}",
                           "try again; the Train page's run list has the full log.")
        if st.button("Try again", key="home.demo.retry"):
            demo.retry()
            if found.tuned_spec is None:
                _start_demo(on_gpu)
            st.rerun()
        return
    try:
        summary = resources.demo_plan(on_gpu)
    except ValueError as exc:  # RunError, TrainingError, DatasetError: the bundled data or model is missing
        widgets.show_error(f"The demo cannot be planned: {exc}", "check the install (`make install`).")
        return
    guess = demo.estimate(summary, on_gpu, cpu_count)
    where = "a GPU: the full recipe" if on_gpu else f"{cpu_count or '?'} CPU cores: a CPU-sized part of the recipe"
    with st.container(border=prominent):
        if prominent:
            st.markdown("**No tuned model yet.** Fine-tune one now to compare it with the base model on every page.")
        st.caption(f"Fine-tunes {md_escape(catalog.describe_spec(summary.base))} on the bundled job-title pairs with the default "
                   f"recipe ({guess.steps:,} training steps on {where}), then indexes the job titles with both "
                   f"models. **About {render.seconds(guess.total)} on this machine**: training "
                   f"{render.seconds(guess.training + guess.fixed)}, evaluation {render.seconds(guess.evaluation)}, "
                   f"indexing {render.seconds(guess.indexing)}. It runs in the background.")
        busy = demo.busy_factor(cpu_count)
        if busy and not on_gpu:
            st.caption(f"This machine is busy right now (load average {busy:.0f}× its {cpu_count} cores): "
                       f"the estimate assumes it to itself, so expect longer.")
        if st.button(f"Fine-tune the demo model (about {render.seconds(guess.total)})", key="home.demo.start",
                     type="primary" if prominent else "secondary", icon=":material/model_training:"):
            if _start_demo(on_gpu):
                st.rerun()


def _start_demo(on_gpu: bool) -> bool:
    try:
        demo.start(on_gpu)
    except (ValueError, OSError) as exc:  # another run is training; the folder cannot be written
        widgets.show_error(exc)
        return False
    return True
