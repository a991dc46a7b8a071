"""Train / load: fine-tune a base encoder in a background process, follow it live, or load a model folder."""

import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from semsim.names import MODEL_CARD_MD
from semsim_app import catalog, downloads, run_request, run_store, settings
from semsim_ui import panels, render, resources, state, widgets
from semsim_ui.text import md_escape as e

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
    left, right = st.columns(2)
    with left:
        base = widgets.encoder_picker("Base encoder", state.BASE_MODEL, allow_custom=True, key_suffix=".train")
        task_label = st.radio("Task", ["Pairs: make similar texts close", "Sentiment: classify texts"],
                              key="train.task", horizontal=True)
        task = "pairs" if task_label.startswith("Pairs") else "sentiment"
        upload = None
        score_range = (0.0, 1.0)
        rehearsal, merge_alpha, head_warmup = False, 1.0, 0
        if task == "pairs":
            dataset = st.radio("Data", ["job-title-pairs", "sts-b", "upload"], horizontal=True, key="train.pairs_data",
                               format_func={**run_request.PAIR_DATASETS, "upload": "Upload a CSV"}.get)
            objective = st.selectbox("Objective", run_request.OBJECTIVES, key="train.objective",
                                     help="cosent and angular-mse learn graded scores; mnrl learns from positive "
                                          "pairs with in-batch negatives (graded pairs: only high-scoring ones).")
            mode = "full"
            rehearsal = st.checkbox("Rehearse general similarity (STS-B train pairs, in batches of their own)",
                                    key="train.rehearsal", disabled=objective == "mnrl",
                                    help="Against forgetting: general-domain pairs are trained alongside yours.")
            merge_alpha = st.slider("Keep this share of the update (WiSE-FT merge with the base)", 0.1, 1.0, 1.0,
                                    step=0.05, key="train.merge_alpha",
                                    help="Below 1 the tuned weights are pulled back towards the base model: "
                                         "some in-domain gain traded for general similarity.")
            if dataset == "upload":
                upload = widgets.uploaded_csv("Pairs CSV: columns text_a, text_b and (except for mnrl) score",
                                              key="train.upload.pairs")
                low_high = st.selectbox("Score range of the file", ["0..1", "0..5", "1..5", "0..100"],
                                        key="train.score_range")
                score_range = tuple(float(x) for x in low_high.split(".."))
        else:
            dataset = st.radio("Data", ["rotten-tomatoes", "upload"], horizontal=True, key="train.labelled_data",
                               format_func={**run_request.LABELLED_DATASETS, "upload": "Upload a CSV"}.get)
            objective = "cosent"
            mode = st.radio("Mode", ["full", "frozen"], key="train.mode", horizontal=True,
                            format_func={"full": "fine-tune the encoder too", "frozen": "frozen encoder, train the head"}.get)
            head_warmup = st.number_input("Head warm-up epochs (LP-FT)", 0, 50, 0, key="train.head_warmup",
                                          disabled=mode != "full",
                                          help="Full mode: first fit the new head alone on frozen vectors, then "
                                               "fine-tune everything. Helps encoders whose head learns slowly at "
                                               "the encoder's small learning rate.")
            if dataset == "upload":
                upload = widgets.uploaded_csv("Labelled CSV: columns text and label", key="train.upload.labelled")
    with right:
        st.markdown("**Hyperparameters**")
        c1, c2, c3 = st.columns(3)
        epochs = c1.number_input("Epochs", 1, 100, 1, key="train.epochs")
        batch_size = c2.number_input("Batch size", 2, 1024, 32, key="train.batch_size")
        learning_rate = c3.number_input("Learning rate", 1e-7, 0.5, 2e-5 if task == "pairs" else 3e-5,
                                        format="%.1e", step=1e-5, key=f"train.lr.{task}")
        c4, c5, c6 = st.columns(3)
        warmup = c4.number_input("Warm-up ratio", 0.0, 0.9, 0.1, step=0.05, key="train.warmup")
        patience = c5.number_input("Patience (epochs)", 1, 100, 2, key="train.patience",
                                   help="Early stopping: epochs without a better validation score.")
        max_steps = c6.number_input("Max steps per epoch", 0, 1_000_000,
                                    0 if resources.device().get("gpu") else 100, key="train.max_steps",
                                    help="0 = the whole training set each epoch.")
        validation_rows = None
        if dataset != "upload":
            validation_rows = st.number_input("Validation rows (sample of the bundled split)", 10, 100_000, 500,
                                              key="train.validation_rows")
        full_eval = st.checkbox("Evaluate on the test split" + (" and STS-B" if task == "pairs" else "")
                                + " for the model card (slower)", value=bool(resources.device().get("gpu")),
                                key="train.full_eval", disabled=dataset == "upload")
        suggested = settings.slug(f"{catalog.describe_spec(base or 'model')}-{dataset}-"
                                  f"{objective if task == 'pairs' else mode}")
        name = st.text_input("Name of the tuned model", value=suggested, key=f"train.name.{suggested}")
        overwrite = st.checkbox("Replace an existing model with this name", key="train.overwrite")

    request = None
    if base:
        request = run_request.TrainRequest(
            task=task, base=base, name=name, dataset=dataset, objective=objective, mode=mode, epochs=int(epochs),
            batch_size=int(batch_size), learning_rate=float(learning_rate), warmup_ratio=float(warmup),
            patience=int(patience), max_steps_per_epoch=int(max_steps) or None,
            validation_rows=int(validation_rows) if validation_rows else None,
            full_evaluation=bool(full_eval) and dataset != "upload", overwrite=overwrite,
            upload_name=upload[0] if upload else None, upload_bytes=upload[1] if upload else None,
            score_range=score_range, rehearsal=bool(rehearsal), merge_alpha=float(merge_alpha),
            head_warmup_epochs=int(head_warmup))
    prepared = None
    if request is not None and (dataset != "upload" or upload is not None):
        from semsim.data import DatasetError

        try:
            settings.check_name(name, "model name")
            prepared = run_request.prepare_data(request)
        except DatasetError as exc:
            widgets.show_error(f"This file cannot be used for training: {exc}", widgets.dataset_todo(exc))
        except (run_request.RunError, ValueError) as exc:
            widgets.show_error(exc)
    elif dataset == "upload":
        st.caption("Upload a CSV to see a preview; nothing starts before the file has been checked.")
    if prepared is not None:
        st.markdown(f"**Data: {e(prepared.description)}** · {len(prepared.train):,} training rows"
                    + (f" · {len(prepared.validation):,} validation rows" if prepared.validation is not None
                       else " · 10% split off for validation")
                    + (f" · {len(prepared.test):,} test rows" if prepared.test is not None else ""))
        for note in prepared.notes:
            st.text(note)
        st.dataframe(prepared.train.head(20), hide_index=True, width="stretch", key="train.preview")
        active = run is not None and run_store.status(run) in ("starting", "running", "cancelling")
        if active:
            st.caption("One run at a time on this machine: cancel the current run to start another.")
        if st.button("Start training", type="primary", key="train.start", disabled=active):
            try:
                started_run = run_store.start(request, prepared)
            except (run_request.RunError, ValueError, OSError) as exc:
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
