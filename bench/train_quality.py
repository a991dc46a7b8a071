"""Training-quality benchmark: base vs tuned on the bundled data, plus pair-training throughput vs ST.

Run: .venv/bin/python bench/train_quality.py [--tasks jobs,sts,sentiment,throughput] [--json]
Each task trains on CPU with a fixed recipe, writes its model under bench/runs/, and reports the
numbers the issue targets. Nothing here is asserted: it prints a table (and JSON) for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from semsim import data  # noqa: E402
from semsim.training import (  # noqa: E402
    ClassifierTrainingRequest,
    PairTrainingRequest,
    train_classifier,
    train_pairs,
)

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "bench" / "runs"
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"


def run_name(model: str) -> str:
    """A run folder's name part for an encoder spec: a folder path gives its last part."""
    return Path(model).name if os.sep in model else model


def metric(card: dict, dataset: str, name: str, which: str) -> float:
    return float(card["metrics"][which][dataset][name])


def choose_merge_alpha(model: str, tuned_folder: Path, alphas: list[float], max_dev_drop: float) -> dict:
    """WiSE-FT on held-out data only: the alpha with the best job-title validation Spearman whose STS-B
    *dev* Spearman (x100) is at most `max_dev_drop` below the base model's. Test sets are not looked at."""
    from semsim.encoders import load_encoder
    from semsim.evaluation import PairSimilarityEvaluator
    from semsim.training.loop import interpolate_weights

    base_weights = load_encoder(model, cache=False).model.get_weights()
    tuned = load_encoder(str(tuned_folder), cache=False)
    tuned_weights = tuned.model.get_weights()
    validation = PairSimilarityEvaluator.from_frame(data.load_bundled("job-title-pairs", "validation"))
    sts_dev = PairSimilarityEvaluator.from_frame(data.load_sts("dev"))
    grid = []
    for alpha in sorted({0.0, *alphas}):
        tuned.model.set_weights(interpolate_weights(base_weights, tuned_weights, alpha))
        grid.append({"alpha": alpha, "validation": validation(tuned)["spearman"],
                     "sts_dev_x100": 100 * sts_dev(tuned)["spearman"]})
        print(f"  merge alpha {alpha:.2f}: validation {grid[-1]['validation']:.4f}, "
              f"STS-B dev {grid[-1]['sts_dev_x100']:.2f}", file=sys.stderr, flush=True)
    base_dev = grid[0]["sts_dev_x100"]
    allowed = [g for g in grid[1:] if base_dev - g["sts_dev_x100"] <= max_dev_drop]
    best = (max(allowed, key=lambda g: g["validation"]) if allowed
            else max(grid[1:], key=lambda g: g["sts_dev_x100"]))
    tuned.model.set_weights(interpolate_weights(base_weights, tuned_weights, best["alpha"]))
    test = PairSimilarityEvaluator.from_frame(data.load_bundled("job-title-pairs", "test"))(tuned)
    sts_test = PairSimilarityEvaluator.from_frame(data.load_sts("test"))(tuned)
    return {"alpha": best["alpha"], "grid": grid, "test": test["spearman"], "sts_test_x100": 100 * sts_test["spearman"]}


def task_jobs(model: str, args: argparse.Namespace) -> list[dict]:
    """The default job-title recipe (`train pairs --data job-title-pairs`: its recipe's parts and STS-B
    rehearsal) against the base, on data never trained on: job-title test pairs, STS-B test, ESCO retrieval.

    `--legacy` runs the recipe before this one instead (CoSENT on the graded pairs alone, rehearsal as
    --rehearsal says), for the README's history rows."""
    if args.legacy:
        return task_jobs_legacy(model, args)
    label = "job titles, default recipe"
    started = time.time()
    folder = RUNS / f"jobs-default-{run_name(model)}"
    request = PairTrainingRequest(base=model, data="job-title-pairs", test="job-title-pairs", out=str(folder),
                                  max_steps_per_epoch=args.max_steps, mixed_precision=args.mixed_precision,
                                  overwrite=True, **({"learning_rate": args.lr} if args.lr else {}),
                                  **({"epochs": args.epochs} if args.epochs else {}))
    card = train_pairs(request)
    minutes = (time.time() - started) / 60
    training_minutes = card["training"]["seconds"] / 60
    extra = {"training_minutes": training_minutes, "parts": card["parts"], "load_average": os.getloadavg(),
             "steps": card["training"]["steps"]}
    test_base, test_tuned = metric(card, "test", "spearman", "base"), metric(card, "test", "spearman", "tuned")
    sts_base = 100 * metric(card, "sts-b test", "spearman", "base")
    sts_tuned = 100 * metric(card, "sts-b test", "spearman", "tuned")
    rows = [{"task": label, "model": model, "metric": "test pairs Spearman", "base": test_base,
             "tuned": test_tuned, "target": "tuned - base >= 0.10", "met": test_tuned - test_base >= 0.10,
             "minutes": minutes, **extra},
            {"task": label, "model": model, "metric": "STS-B test Spearman x100", "base": sts_base,
             "tuned": sts_tuned, "target": "drop <= 0.5", "met": sts_base - sts_tuned <= 0.5, "minutes": minutes},
            {"task": label, "model": model, "metric": "ESCO nDCG@10",
             "base": metric(card, "esco retrieval", "ndcg@10", "base"),
             "tuned": metric(card, "esco retrieval", "ndcg@10", "tuned"), "target": ">= 0.75",
             "met": metric(card, "esco retrieval", "ndcg@10", "tuned") >= 0.75, "minutes": minutes},
            {"task": label, "model": model, "metric": "ESCO recall@1",
             "base": metric(card, "esco retrieval", "recall@1", "base"),
             "tuned": metric(card, "esco retrieval", "recall@1", "tuned"), "target": "reported", "met": None,
             "minutes": minutes},
            {"task": label, "model": model, "metric": "training minutes (CPU)", "base": None,
             "tuned": training_minutes, "target": "< 10", "met": training_minutes < 10, "minutes": minutes}]
    return rows


def task_jobs_legacy(model: str, args: argparse.Namespace) -> list[dict]:
    """The recipe before the default one: CoSENT on the graded pairs, STS-B rehearsal with --rehearsal."""
    label = "job titles" if args.mixed_precision == "auto" else f"job titles (mixed precision {args.mixed_precision})"
    # Rehearsal against forgetting: general-domain pairs (STS-B train, 0..5) in batches of their own.
    if args.rehearsal:
        label += " + rehearsal"
    started = time.time()
    precision = "" if args.mixed_precision == "auto" else f"-mixed-{args.mixed_precision}"
    folder = RUNS / f"jobs-{run_name(model)}{precision}"
    card = train_pairs(PairTrainingRequest(
        base=model, data="job-title-pairs", validation="job-title-pairs", test="job-title-pairs", out=str(folder),
        objective="cosent", epochs=1, batch_size=32, learning_rate=args.lr or 2e-5, warmup_ratio=0.1,
        max_steps_per_epoch=args.max_steps, seed=42, mixed_precision=args.mixed_precision, overwrite=True,
        recipe=False, rehearsal=args.rehearsal))
    minutes = (time.time() - started) / 60
    test_base, sts_base = metric(card, "test", "spearman", "base"), 100 * metric(card, "sts-b test", "spearman", "base")
    out = [jobs_row("test", label, model, test_base, metric(card, "test", "spearman", "tuned"), minutes),
           jobs_row("sts", label, model, sts_base, 100 * metric(card, "sts-b test", "spearman", "tuned"), minutes)]
    if args.merge:
        started = time.time()
        merged = choose_merge_alpha(model, folder, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], max_dev_drop=1.0)
        minutes += (time.time() - started) / 60
        label += f" + WiSE-FT merge (alpha {merged['alpha']:.1f}, chosen on dev)"
        out += [jobs_row("test", label, model, test_base, merged["test"], minutes, grid=merged["grid"]),
                jobs_row("sts", label, model, sts_base, merged["sts_test_x100"], minutes)]
    return out


def ons_validation_retrieval() -> dict:
    """Retrieval evaluators built from the ONS *validation* unit groups only (never test, never ESCO):
    "titles -> groups": each validation title against the names of all 369 unit groups;
    "titles -> titles": half of each validation unit group's titles (seeded) as queries against the other
    half, the nearest thing in the ONS data to ESCO's alternative label -> occupation title."""
    import numpy as np
    import pandas as pd

    from semsim.evaluation import RetrievalEvaluator

    titles = data.load_texts(data.bundled_path("job-titles"), "title")
    units = set(data.load_bundled("job-title-groups", "validation")["group_id"].astype(str))
    names = titles.drop_duplicates("unit_group")[["unit_group", "unit_group_name"]]
    own = titles[titles["unit_group"].astype(str).isin(units)].reset_index(drop=True)
    to_groups = RetrievalEvaluator(
        pd.DataFrame({"query_id": [f"t{i}" for i in range(len(own))], "query": own["text"],
                      "relevant_ids": own["unit_group"].astype(str)}),
        pd.DataFrame({"id": names["unit_group"].astype(str), "text": names["unit_group_name"]}),
        name="ons validation: titles -> unit groups")
    rng = np.random.default_rng(0)
    queries, corpus = [], []
    for unit, group in own.groupby("unit_group", sort=True):
        shuffled = group["text"].to_numpy()[rng.permutation(len(group))]
        if len(shuffled) < 2:
            continue
        half = len(shuffled) // 2
        queries += [(text, str(unit)) for text in shuffled[:half]]
        corpus += [(text, str(unit)) for text in shuffled[half:]]
    corpus_frame = pd.DataFrame({"id": [f"c{i}" for i in range(len(corpus))], "text": [t for t, _ in corpus]})
    by_unit: dict = {}
    for cid, (_, unit) in zip(corpus_frame["id"], corpus, strict=True):
        by_unit.setdefault(unit, []).append(cid)
    to_titles = RetrievalEvaluator(
        pd.DataFrame({"query_id": [f"q{i}" for i in range(len(queries))], "query": [t for t, _ in queries],
                      "relevant_ids": ["|".join(by_unit[unit]) for _, unit in queries]}),
        corpus_frame, name="ons validation: titles -> titles")
    return {"titles -> groups": to_groups, "titles -> titles": to_titles}


def validation_scores(encoder) -> dict:
    """The numbers a recipe is chosen on: job-title validation pairs, STS-B dev, ONS validation retrieval."""
    from semsim.evaluation import PairSimilarityEvaluator

    scores = {"validation pairs spearman": PairSimilarityEvaluator.from_frame(
        data.load_bundled("job-title-pairs", "validation"))(encoder)["spearman"],
              "sts-b dev x100": 100 * PairSimilarityEvaluator.from_frame(data.load_sts("dev"))(encoder)["spearman"]}
    for name, evaluator in ons_validation_retrieval().items():
        result = evaluator(encoder)
        scores[f"{name} ndcg@10"], scores[f"{name} recall@1"] = result["ndcg@10"], result["recall@1"]
    return scores


def task_recipes(model: str, args: argparse.Namespace) -> list[dict]:
    """Candidate job-title recipes scored on validation data only (the default is chosen from these).

    Each `--recipes` entry is NAME=PART,PART,...[;lr=...] with parts as for --part; STS-B rehearsal is
    added as the request says (its weight via --rehearsal-weight). The base model's scores come first."""
    from semsim.encoders import load_encoder

    rows = [{"task": "recipes", "recipe": "base", "model": model, **validation_scores(load_encoder(model))}]
    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for entry in args.recipes.split(";;"):
        name, _, body = entry.partition("=")
        settings = dict(item.split("=", 1) for item in body.split(";")[1:] if "=" in item)
        parts = tuple(p for p in body.split(";")[0].split(",") if p)
        started = time.time()
        request = PairTrainingRequest(
            base=model, parts=parts, out=str(RUNS / f"recipe-{name}"), overwrite=True, evaluate_sts=False,
            validation="job-title-pairs", max_steps_per_epoch=args.max_steps,
            learning_rate=float(settings.get("lr", args.lr or 2e-5)), epochs=int(settings.get("epochs", 1)),
            rehearsal_weight=float(settings.get("rehearsal", args.rehearsal_weight)) or 1.0,
            rehearsal=float(settings.get("rehearsal", 1)) > 0)
        card = train_pairs(request)
        tuned = load_encoder(str(RUNS / f"recipe-{name}"), cache=False)
        rows.append({"task": "recipes", "recipe": name, "parts": card["parts"], "model": model,
                     "learning_rate": request.learning_rate, "steps": card["training"]["steps"],
                     "training_minutes": card["training"]["seconds"] / 60,
                     "minutes": (time.time() - started) / 60, "load_average": os.getloadavg(),
                     **validation_scores(tuned)})
        print(json.dumps(rows[-1], default=str), file=sys.stderr, flush=True)
    return rows


def jobs_row(kind: str, task: str, model: str, base: float, tuned: float, minutes: float, **extra) -> dict:
    """One README row: the in-domain gain ("test") or the STS-B guard ("sts", x100)."""
    if kind == "sts":
        return {"task": task, "model": model, "metric": "STS-B test Spearman x100", "base": base, "tuned": tuned,
                "target": "drop <= 1.0", "met": base - tuned <= 1.0, "minutes": minutes, **extra}
    return {"task": task, "model": model, "metric": "test pairs Spearman", "base": base, "tuned": tuned,
            "target": "tuned - base >= 0.10", "met": tuned - base >= 0.10, "minutes": minutes, **extra}


def task_sts(model: str, args: argparse.Namespace) -> list[dict]:
    """Train on STS-B train (scores 0-5), select on dev, report STS-B test."""
    started = time.time()
    card = train_pairs(PairTrainingRequest(
        base=model, data="sts-b", validation="sts-b", out=str(RUNS / f"sts-{run_name(model)}"), objective="cosent",
        score_range=(0.0, 5.0), epochs=args.epochs or 4, batch_size=16, learning_rate=args.lr or 2e-5,
        warmup_ratio=0.1, max_steps_per_epoch=args.max_steps, seed=42, overwrite=True))
    tuned = 100 * metric(card, "sts-b test", "spearman", "tuned")
    return [{"task": "STS-B", "model": model, "metric": "STS-B test Spearman x100",
             "base": 100 * metric(card, "sts-b test", "spearman", "base"), "tuned": tuned,
             "target": ">= 85.0" if model == "minilm" else "-", "met": tuned >= 85.0 if model == "minilm" else None,
             "minutes": (time.time() - started) / 60}]


def task_sentiment(model: str, args: argparse.Namespace) -> list[dict]:
    """Rotten Tomatoes: frozen encoder (head only) vs full fine-tuning, same data and split.

    Frozen runs with the Train page's defaults (its 500-row validation sample included): the head is fitted
    on cached vectors to convergence whatever the epochs say. Full takes --epochs, --lr and --head-warmup,
    its best epoch chosen on the validation split (early stopping restores it)."""
    rows = []
    for mode in ("frozen", "full"):
        if mode not in args.modes.split(","):
            continue
        started = time.time()
        settings = ({"validation_rows": 500} if mode == "frozen" else
                    {"epochs": args.epochs or 1, "learning_rate": args.lr or 3e-5, "patience": 3,
                     "max_steps_per_epoch": args.max_steps, "head_warmup_epochs": args.head_warmup})
        card = train_classifier(ClassifierTrainingRequest(
            base=model, data="rotten-tomatoes", validation="rotten-tomatoes", test="rotten-tomatoes",
            out=str(RUNS / f"sentiment-{mode}-{run_name(model)}"), mode=mode, overwrite=True, **settings))
        accuracy = metric(card, "test", "accuracy", "tuned")
        label = f"{mode}, head warm-up {args.head_warmup} epochs" if mode == "full" and args.head_warmup else mode
        target = 0.77 if mode == "frozen" else 0.85
        rows.append({"task": f"sentiment ({label})", "model": model, "metric": "RT test accuracy",
                     "base": metric(card, "test", "accuracy", "base"), "tuned": accuracy,
                     "target": f">= {target}" if model == "minilm" else "reported",
                     "met": accuracy >= target if model == "minilm" else None,
                     "minutes": (time.time() - started) / 60, "f1_macro": metric(card, "test", "f1_macro", "tuned"),
                     "validation_accuracy": metric(card, "validation", "accuracy", "tuned"),
                     "epochs_run": card["training"]["epochs_run"], "best_epoch": card["training"]["best_epoch"],
                     "training_seconds": card["training"]["seconds"], "settings": settings,
                     "load_average": os.getloadavg()})
    return rows


def steady_pairs_per_s(started: float, times: list[float], steps: int, epochs: int, batch_size: int) -> dict:
    """Pairs/s from the wall-clock at each step's end. One epoch: the first steps (tracing, compiling,
    warm-up) are left out. Several epochs over the same batches: only the last epoch counts, so every
    input shape has been compiled before timing starts (JAX compiles one program per shape).
    `first_epoch_s` (several epochs): the first epoch's wall-clock from fit's start, compiling included."""
    if epochs > 1:
        timed = times[-steps:]
    else:
        timed = times[min(10, len(times) // 3):]
    return {"pairs_per_s": batch_size * (len(timed) - 1) / (timed[-1] - timed[0]), "steps_timed": len(timed) - 1,
            "first_epoch_s": times[steps - 1] - started if epochs > 1 else None}


def our_pair_throughput(model: str, steps: int, batch_size: int, epochs: int = 1,
                        precision: str = "float32") -> dict:
    """Steady wall-clock pairs/s of our CoSENT training (fit on the job-title pairs); see steady_pairs_per_s."""
    import keras

    from semsim.encoders import load_encoder
    from semsim.training.batches import EpochSeededBatches, joint_pair_batches, pair_batch_inputs
    from semsim.training.objectives import CoSENTObjective
    from semsim.training.optimizers import make_optimizer
    from semsim.training.spec import TrainingArguments

    keras.utils.set_random_seed(0)
    # As the trainer does (configure_runtime): bfloat16 compute, float32 weights and optimizer state.
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    encoder = load_encoder(model, cache=False)
    frame = data.load_bundled("job-title-pairs", "train")
    texts_a, texts_b = frame["text_a"].tolist(), frame["text_b"].tolist()
    scores = frame["score"].to_numpy("float32")
    objective = CoSENTObjective()
    joint = joint_pair_batches()
    training_model = objective.build_model(encoder.model, joint=joint)

    def make_batch(rows):
        return pair_batch_inputs(encoder, [texts_a[i] for i in rows], [texts_b[i] for i in rows], joint), scores[rows]

    batches = EpochSeededBatches(len(frame), batch_size, make_batch, seed=0, max_batches=steps)
    training_model.compile(optimizer=make_optimizer(TrainingArguments(batch_size=batch_size), steps * epochs),
                           loss=objective.loss, jit_compile=keras.backend.backend() == "jax")
    times: list[float] = []
    started = [0.0]

    class Timer(keras.callbacks.Callback):
        # Wall-clock at each step's end, as the ST worker does: batch preparation is inside the interval.
        def on_train_begin(self, logs=None):
            started[0] = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter())

    # The same batches every epoch (no SetEpoch callback here), so later epochs meet no new shape.
    training_model.fit(batches.as_fit_input(), epochs=epochs, callbacks=[Timer()], verbose=0)
    return {**steady_pairs_per_s(started[0], times, len(batches), epochs, batch_size), "precision": precision,
            "policy": keras.mixed_precision.global_policy().name}


def ours_in_subprocess(model: str, args: argparse.Namespace, backend: str, precision: str) -> dict:
    """Our throughput in a fresh process: the Keras backend is fixed at import, and no threads of an
    earlier run linger to compete with the one being timed."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run([sys.executable, __file__, "--ours-throughput", model, "--throughput-steps",
                             str(args.throughput_steps), "--throughput-epochs", str(args.throughput_epochs),
                             "--precisions", precision, "--batch-size", str(args.batch_size)],
                            capture_output=True, text=True, timeout=3600, env=env)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def st_model_folder(model: str) -> Path | None:
    """The sentence-transformers folder of an encoder spec: the bundled minilm's, or a folder that is one."""
    if model == "minilm":
        from semsim.encoders.bert import minilm_folder

        return minilm_folder()
    folder = Path(model)
    return folder if (folder / "modules.json").is_file() else None


def st_throughput_in_subprocess(model: str, pairs: Path, args: argparse.Namespace, precision: str) -> dict:
    """sentence-transformers' fit in a fresh process (.venv-bench's Python unless --st-python): {"pairs_per_s": ...}."""
    command = [args.st_python or str(BENCH_PYTHON), str(ROOT / "bench" / "_st_fit_worker.py"),
               "--model", str(st_model_folder(model)), "--pairs", str(pairs), "--steps", str(args.throughput_steps),
               "--epochs", str(args.throughput_epochs), "--batch-size", str(args.batch_size),
               "--device", args.st_device, "--json"] + (["--bf16"] if precision == "bfloat16" else [])
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        return {"error": f"ST worker failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def task_throughput(model: str, args: argparse.Namespace) -> list[dict]:
    """Pairs/s of our pair training (each backend of --backends, each of --precisions) against
    sentence-transformers' fit: same model, CoSENT, batch size and job-title pairs, same precision, each
    in a fresh process on the same machine (--st-device cuda puts ST on the GPU).

    The trainers run in turn (ST, then ours on each backend), for `--throughput-rounds` rounds; each row
    reports medians and the ratio of medians. A shared machine's speed drifts by tens of percent within
    minutes, so one run of each, minutes apart, can favour either side."""
    import statistics

    backends, precisions = args.backends.split(","), args.precisions.split(",")
    errors: dict[tuple[str, str], str] = {}
    st_python = Path(args.st_python) if args.st_python else BENCH_PYTHON
    for precision in precisions:
        if not (st_python.exists() and (ROOT / "bench" / "_st_fit_worker.py").exists()):
            errors["st", precision] = "no .venv-bench / ST worker: run `make bench-env`"
        elif st_model_folder(model) is None:
            errors["st", precision] = "the sentence-transformers reference needs minilm or a sentence-transformers folder"
    trainers = [(name, precision) for precision in precisions for name in ("st", *backends)
                if (name, precision) not in errors]
    samples: dict[tuple[str, str], list[float]] = {trainer: [] for trainer in trainers}
    details: dict[tuple[str, str], list[dict]] = {trainer: [] for trainer in trainers}
    pairs = RUNS / "throughput_pairs.csv"
    data.load_bundled("job-title-pairs", "train").to_csv(pairs, index=False)
    for round_number in range(args.throughput_rounds):
        for name, precision in trainers:
            result = (st_throughput_in_subprocess(model, pairs, args, precision) if name == "st"
                      else ours_in_subprocess(model, args, name, precision))
            if "error" in result:
                errors[name, precision] = result["error"]
            else:
                samples[name, precision].append(result["pairs_per_s"])
                details[name, precision].append(result)
            print(f"  round {round_number + 1} {name} {precision}: {result}", file=sys.stderr, flush=True)
    rows = []
    for precision in precisions:
        st_samples = samples.get(("st", precision), [])
        st = statistics.median(st_samples) if st_samples else None
        for backend in backends:
            ours_samples = samples.get((backend, precision), [])
            ours = statistics.median(ours_samples) if ours_samples else None
            label = backend if precision == "float32" else f"{backend}, {precision}"
            row = {"task": f"pair training throughput ({label})", "model": model, "metric": "pairs/s (ST fit vs ours)",
                   "base": st, "tuned": ours, "target": "ratio >= 1.0", "met": None, "minutes": None,
                   "steps": args.throughput_steps, "epochs": args.throughput_epochs, "batch_size": args.batch_size,
                   "precision": precision, "st_device": args.st_device, "rounds": args.throughput_rounds,
                   "st_samples": st_samples, "ours_samples": ours_samples,
                   "st_runs": details.get(("st", precision), []), "ours_runs": details.get((backend, precision), [])}
            if st and ours:
                row.update({"ratio": ours / st, "met": ours >= st})
            if st and ours and len(ours_samples) == len(st_samples):
                # Each round runs ST and ours a minute apart; their ratio cancels slower drift.
                paired = [o / s for o, s in zip(ours_samples, st_samples, strict=True)]
                row.update({"round_ratios": paired, "median_round_ratio": statistics.median(paired),
                            "rounds_won": sum(r > 1 for r in paired)})
            notes = [errors[k] for k in (("st", precision), (backend, precision)) if k in errors]
            if notes:
                row["note"] = "; ".join(notes)
            rows.append(row)
    return rows


TASKS = {"jobs": task_jobs, "recipes": task_recipes, "sts": task_sts, "sentiment": task_sentiment, "throughput": task_throughput}


def render(rows: list[dict]) -> str:
    def fmt(value):
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "NO"
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    columns = ["task", "model", "metric", "base", "tuned", "target", "met", "minutes"]
    if rows and all(r.get("task") == "recipes" for r in rows):
        columns = ["recipe", "steps", "training_minutes", *[k for k in rows[0] if k not in ("task", "recipe", "model")]]
    table = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)) for t in table]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", default="jobs,sts,sentiment,throughput")
    parser.add_argument("--models", default="minilm", help="comma-separated encoder specs")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch (quick runs)")
    parser.add_argument("--throughput-steps", type=int, default=100)
    parser.add_argument("--throughput-rounds", type=int, default=3, help="throughput: ST/TF/JAX runs in turn")
    parser.add_argument("--throughput-epochs", type=int, default=1,
                        help="throughput: epochs over the same batches; above 1, only the last is timed")
    parser.add_argument("--backends", default="tensorflow,jax", help="throughput: our Keras backends")
    parser.add_argument("--precisions", default="float32",
                        help="throughput: float32 and/or bfloat16 (mixed precision, on both sides)")
    parser.add_argument("--st-device", default="cpu", help="throughput: cpu or cuda for sentence-transformers")
    parser.add_argument("--st-python", default=None, help="throughput: the Python that has sentence-transformers")
    parser.add_argument("--batch-size", type=int, default=32, help="throughput: pairs per step")
    parser.add_argument("--ours-throughput", metavar="MODEL", help=argparse.SUPPRESS)
    parser.add_argument("--rehearsal", action="store_true",
                        help="jobs --legacy: add STS-B train pairs (in batches of their own) to the job-title data")
    parser.add_argument("--merge", action="store_true",
                        help="jobs --legacy: also report a WiSE-FT merge with the base, alpha chosen on dev data")
    parser.add_argument("--legacy", action="store_true",
                        help="jobs: the recipe before the default one (CoSENT on the graded pairs alone)")
    parser.add_argument("--recipes", default="", help="recipes: NAME=PART,PART[;lr=X][;rehearsal=W] entries "
                        "separated by ;;")
    parser.add_argument("--rehearsal-weight", type=float, default=1.0, help="recipes: STS-B rehearsal weight")
    parser.add_argument("--modes", default="frozen,full", help="sentiment: which modes to run")
    parser.add_argument("--mixed-precision", default="auto", choices=["auto", "on", "off"],
                        help="jobs: bfloat16 mixed precision (auto: on a GPU)")
    parser.add_argument("--head-warmup", type=int, default=0, help="sentiment full: LP-FT head-only epochs first")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_quality.json"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.ours_throughput:  # the child process of task_throughput
        print(json.dumps(our_pair_throughput(args.ours_throughput, args.throughput_steps, args.batch_size,
                                             args.throughput_epochs, args.precisions)))
        return 0
    RUNS.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for task in args.tasks.split(","):
        for model in args.models.split(","):
            rows.extend(TASKS[task](model, args))
            print(render(rows[-1:]), file=sys.stderr, flush=True)
    from semsim.device import describe_device

    report = {"device": describe_device(), "rows": rows, "cpu_count": os.cpu_count()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str) if args.json else render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
