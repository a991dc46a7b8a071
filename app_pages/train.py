"""Train / load: fine-tune a base encoder in a background process, follow it live, or load a model folder."""

import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from semsim.names import MODEL_CARD_MD
from semsim.training.parts import RECIPES
from semsim.training.spec import REQUESTS, field_spec
from semsim_app import catalog, downloads, run_request, run_store, settings
from semsim_ui import panels, render, request_form, resources, state, widgets
from semsim_ui.guard import forgetting_warning
from semsim_ui.text import md_escape as e

# The forgetting guard's sample on a CPU: STS-B test pairs and ESCO queries, base and tuned (a GPU runs all).
GUARD_ROWS_ON_CPU = 300

widgets.page_setup("train", "Fine-tuning runs in a background process: refresh the page or come back later, "
                            "the run keeps going and shows up here.", device=True)

# -- the run this page follows ------------------------------------------------------------------
watched = state.get(state.WATCHED_RUN)
run = run_store.load_run(settings.runs_dir() / watched) if watched else None
run = run or run_store.current_run()
if run is not None:
    status = run_store.status(run)
    info = run.info
    started = datetime.fromtimestamp(run.started).strftime("%Y-%m-%d %H:%M")
    with st.container(border=True):
        st.subheader(f"Run: {e(info.get('name'))}")
        st.caption(f"{e(info.get('task'))} · base {e(catalog.describe_spec(str(info.get('base'))))} · "
                   f"{info.get('dataset')} · started {started}")
        for note in info.get("notes") or []:
            st.text(note)
        if status in ("starting", "running", "cancelling"):
            panels.live_run(run)
            if status != "cancelling" and st.button("Cancel training", key="train.cancel", icon=":material/stop_circle:"):
                st.toast(run_store.cancel(run))
                time.sleep(0.3)
                st.rerun()
        else:
            st.markdown(f"**{panels.STATUS_TEXT[status]}**")
            card = run_store.card(run)
            if card is not None:
                panels.training_progress(run, status)
                render.model_card(card, key=f"card.{run.id}")
                forgetting_warning(str(run.out))
                left, right = st.columns(2)
                is_classifier = card.get("task") == "classification"
                if left.button("Use this model on the other pages", key="train.use", type="primary"):
                    if is_classifier:
                        key = state.FROZEN_CLASSIFIER if card.get("mode") == "frozen" else state.TUNED_CLASSIFIER
                        state.put(key, str(run.out))
                    else:
                        state.put(state.TUNED_MODEL, str(run.out))
                        state.put(state.BASE_MODEL, str(info.get("base")))
                    st.toast(f"{e(run.out.name)} is now the {'classifier' if is_classifier else 'tuned model'} "
                             f"on every page.")
                right.download_button(f"Download {e(run.out.name)}.zip", downloads.lazy_zip(run.out),
                                      file_name=f"{run.out.name}.zip", mime="application/zip",
                                      on_click="ignore", key="train.zip")
                md = run.out / MODEL_CARD_MD
                if md.is_file():
                    with st.expander(f"{MODEL_CARD_MD} (as written)"):
                        st.code(md.read_text(encoding="utf-8", errors="replace"), language="markdown")
            elif status == "failed":
                widgets.show_error(f"Training stopped with an error: {run_store.error_message(run)}",
                                   "fix the data or settings named above and start again.")
                with st.expander("Last lines of the training log"):
                    st.code(run_store.stderr_tail(run) or "(empty)", language="text")

tab_start, tab_load, tab_runs = st.tabs(["Start a run", "Load an existing model", "All runs"])

# -- start a run --------------------------------------------------------------------------------
with tab_start:
    on_gpu = bool(resources.device().get("gpu"))
    left, right = st.columns(2)
    with left:
        base = widgets.encoder_picker("Base encoder", state.BASE_MODEL, allow_custom=True, key_suffix=".train")
        task_label = st.radio("Task", ["Pairs: make similar texts close", "Sentiment: classify texts"],
                              key="train.task", horizontal=True)
        task = "pairs" if task_label.startswith("Pairs") else "sentiment"
        request_class = REQUESTS[task]
        prefix = f"train.{task}"
        choices = run_request.BUNDLED_CHOICES[task]
        dataset = st.radio("Data", [*choices, run_request.UPLOAD], horizontal=True, key=f"{prefix}.dataset",
                           format_func={**choices, run_request.UPLOAD: "Upload a CSV"}.get)
        uploaded = dataset == run_request.UPLOAD
        page_values: dict = {}
        upload = None
        if uploaded:
            upload = widgets.uploaded_csv("Pairs CSV: columns text_a, text_b and (except for mnrl) score"
                                          if task == "pairs" else "Labelled CSV: columns text and label",
                                          key=f"{prefix}.upload")
            if task == "pairs":
                low_high = st.selectbox("Score range of the file", ["0..1", "0..5", "1..5", "0..100"],
                                        key=f"{prefix}.score_range")
                page_values["score_range"] = tuple(float(x) for x in low_high.split(".."))
        data_values = request_form.request_fields(request_class, prefix, "data", skip={"validation_rows"},
                                                  disabled=set() if dataset in RECIPES else {"recipe"})
        if task == "pairs":
            # Every pair card reports the forgetting guard; on a CPU, on a quick sample (said so in the card).
            page_values.update(evaluate_sts=True, guard_rows=None if on_gpu else GUARD_ROWS_ON_CPU)
        disabled = set()
        frozen = data_values.get("mode") == "frozen"
        if frozen:
            # A frozen run fits just the head, on cached vectors, to convergence: no warm-up, epochs or cap.
            disabled |= {"head_warmup_epochs", "epochs", "max_steps_per_epoch", "patience"}
    with right:
        st.markdown("**Hyperparameters**")
        hyper_values = request_form.request_fields(
            request_class, prefix, "hyperparameters", columns=3, disabled=disabled,
            # On a CPU a whole epoch of training the encoder takes many minutes: cap the steps unless the
            # user clears it. A frozen head trains in seconds: never capped.
            defaults={"max_steps_per_epoch": None if on_gpu or frozen else 100})
        if frozen:
            hyper_values["max_steps_per_epoch"] = None
            st.caption("Frozen encoder: the head is fitted on cached vectors until validation accuracy stops "
                       "improving (seconds), so epochs, patience and the step cap do not apply.")
        validation_rows = None
        if not uploaded:
            validation_rows = request_form.field_widget(field_spec(request_class, "validation_rows"),
                                                        f"{prefix}.validation_rows", default=500)
        test_split = st.checkbox("Evaluate on the test split for the model card (slower)", value=on_gpu,
                                 key=f"{prefix}.test_split", disabled=uploaded)
        suggested = settings.slug(f"{catalog.describe_spec(base or 'model')}-{dataset}-"
                                  f"{data_values.get('objective') or data_values.get('mode')}")
        name = st.text_input("Name of the tuned model", value=suggested, key=f"train.name.{suggested}")
        run_values = request_form.request_fields(request_class, prefix, "run")

    plan = None
    if base and (not uploaded or upload is not None):
        from semsim.data import DatasetError

        values = {**data_values, **hyper_values, **run_values, **page_values, "base": base,
                  "validation_rows": validation_rows}
        try:
            plan = run_request.plan_run(task, name, dataset, values, test_split=test_split and not uploaded,
                                        upload=upload)
        except DatasetError as exc:
            widgets.show_error(f"This file cannot be used for training: {exc}", widgets.dataset_todo(exc))
        except ValueError as exc:  # RunError, TrainingError: a setting or the data's size, named
            widgets.show_error(exc)
    elif uploaded:
        st.caption("Upload a CSV to see a preview; nothing starts before the file has been checked.")
    if plan is not None:
        loaded = plan.data
        st.markdown(f"**Data: {e(plan.description)}** · {len(loaded.train):,} training rows"
                    + (f" · {len(loaded.validation):,} validation rows"
                       + (" (split off the training data)" if loaded.validation_split_off else ""))
                    + (f" · {len(loaded.test):,} test rows" if loaded.test is not None else ""))
        for note in plan.notes:
            st.text(note)
        if task == "pairs" and len(loaded.parts) > 1:
            st.dataframe(pd.DataFrame([{"part": p.part.role, "dataset": p.name, "objective": p.part.objective,
                                        "weight": p.part.weight, "rows": len(p.frame)} for p in loaded.parts]),
                         hide_index=True, width="stretch", key="train.parts")
        st.dataframe(loaded.train.head(20), hide_index=True, width="stretch", key="train.preview")
        active = run is not None and run_store.status(run) in ("starting", "running", "cancelling")
        if active:
            st.caption("One run at a time on this machine: cancel the current run to start another.")
        if st.button("Start training", type="primary", key="train.start", disabled=active):
            try:
                started_run = run_store.start(plan)
            except (ValueError, OSError) as exc:
                widgets.show_error(exc)
            else:
                state.put(state.WATCHED_RUN, started_run.id)
                st.rerun()

# -- load an existing model ---------------------------------------------------------------------
with tab_load:
    st.markdown("Use a model folder trained elsewhere (a semsim model or classifier, a Hugging Face folder or a "
                "TF SavedModel), or one from this machine's models folder.")
    folder = st.text_input("Model folder", key="train.load_path", placeholder=str(settings.models_dir() / "my-model"))
    if st.button("Load", key="train.load") and folder.strip():
        path = Path(folder.strip()).expanduser().resolve()
        try:
            if not path.is_dir():
                raise ValueError(f"{path} is not a folder; give the folder that holds the model's files")
            entry = catalog.model_entry(path)
            if entry is not None and entry.kind == "classifier":
                resources.classifier(str(path))
                key = state.FROZEN_CLASSIFIER if entry.mode == "frozen" else state.TUNED_CLASSIFIER
                state.put(key, str(path))
                kind = f"classifier ({entry.mode})"
            else:
                encoder = resources.encoder(str(path))
                state.remember_spec(str(path))
                if encoder.base_spec:
                    state.put(state.TUNED_MODEL, str(path))
                    kind = f"tuned model (from {encoder.base_spec})"
                else:
                    state.put(state.BASE_MODEL, str(path))
                    kind = f"base model ({encoder.dim}-d)"
        except ValueError as exc:  # EncoderError and bad paths
            widgets.show_error(f"Cannot load this folder: {exc}",
                               "give a folder written by semsim (with semsim.json), a Hugging Face model folder "
                               "(config.json) or a TF SavedModel (saved_model.pb).")
        else:
            st.success(f"Loaded {e(path.name)} as the {e(kind)}; the other pages now use it.")
    entries = [e for e in (catalog.model_entry(p) for p in catalog.model_folders()) if e is not None]
    if entries:
        st.markdown(f"**Models in {e(settings.models_dir())}**")
        table = pd.DataFrame([{"model": Path(e.spec).name, "kind": e.kind if e.kind == "tuned" else f"classifier ({e.mode})",
                               "base": e.base or "?",
                               "saved": datetime.fromtimestamp(e.created or 0).strftime("%Y-%m-%d %H:%M")}
                              for e in entries])
        st.dataframe(table, hide_index=True, width="stretch", key="train.models")
        chosen = st.selectbox("Download a model folder", [e.spec for e in entries], format_func=lambda s: Path(s).name,
                              key="train.zip_choice")
        st.download_button(f"Download {e(Path(chosen).name)}.zip", downloads.lazy_zip(chosen),
                           file_name=f"{Path(chosen).name}.zip", mime="application/zip", on_click="ignore",
                           key="train.zip_any")
    else:
        st.caption(f"No models in {e(settings.models_dir())} yet.")

# -- all runs -----------------------------------------------------------------------------------
with tab_runs:
    all_runs = run_store.list_runs()
    if not all_runs:
        st.caption("No training runs yet.")
    else:
        table = pd.DataFrame([{"run": r.id, "model": r.info.get("name"), "task": r.info.get("task"),
                               "status": run_store.status(r), "data": r.info.get("dataset"),
                               "started": datetime.fromtimestamp(r.started).strftime("%Y-%m-%d %H:%M")}
                              for r in all_runs])
        st.dataframe(table, hide_index=True, width="stretch", key="train.runs")
        pick = st.selectbox("Show run", [r.id for r in all_runs], key="train.pick_run")
        if st.button("Show", key="train.show_run"):
            state.put(state.WATCHED_RUN, pick)
            st.rerun()
