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
from semsim.training import TrainConfig, train_classifier, train_pairs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "bench" / "runs"
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"


def metric(card: dict, dataset: str, name: str, which: str) -> float:
    return float(card["metrics"][which][dataset][name])


def choose_merge_alpha(model: str, tuned_folder: Path, alphas: list[float], max_dev_drop: float) -> dict:
    """WiSE-FT on held-out data only: the alpha with the best job-title validation Spearman whose STS-B
    *dev* Spearman (x100) is at most `max_dev_drop` below the base model's. Test sets are not looked at."""
    from semsim.encoders import load_encoder
    from semsim.evaluation import PairSimilarityEvaluator
    from semsim.training.trainer import interpolate_weights

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
    """Domain tuning on graded ONS job-title pairs; does general similarity (STS-B) survive?"""
    config = TrainConfig(epochs=1, batch_size=32, learning_rate=args.lr or 2e-5, warmup_ratio=0.1,
                         max_steps_per_epoch=args.max_steps, seed=42)
    train = data.load_bundled("job-title-pairs", "train")
    name = "job_title_pairs_train.csv"
    label = "job titles"
    # Rehearsal against forgetting: general-domain pairs (STS-B train, 0..5) in batches of their own.
    rehearsal = data.load_sts("train") if args.rehearsal else None
    if args.rehearsal:
        label += " + rehearsal"
    started = time.time()
    folder = RUNS / f"jobs-{model}"
    card = train_pairs(model, train, folder, objective="cosent",
                       validation=data.load_bundled("job-title-pairs", "validation"),
                       test=data.load_bundled("job-title-pairs", "test"), config=config,
                       dataset_name=name, overwrite=True, rehearsal=rehearsal, rehearsal_range=(0.0, 5.0),
                       rehearsal_name="stsb_train.csv")
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


def jobs_row(kind: str, task: str, model: str, base: float, tuned: float, minutes: float, **extra) -> dict:
    """One README row: the in-domain gain ("test") or the STS-B guard ("sts", x100)."""
    if kind == "sts":
        return {"task": task, "model": model, "metric": "STS-B test Spearman x100", "base": base, "tuned": tuned,
                "target": "drop <= 1.0", "met": base - tuned <= 1.0, "minutes": minutes, **extra}
    return {"task": task, "model": model, "metric": "test pairs Spearman", "base": base, "tuned": tuned,
            "target": "tuned - base >= 0.10", "met": tuned - base >= 0.10, "minutes": minutes, **extra}


def task_sts(model: str, args: argparse.Namespace) -> list[dict]:
    """Train on STS-B train (scores 0-5), select on dev, report STS-B test."""
    config = TrainConfig(epochs=args.epochs or 4, batch_size=16, learning_rate=args.lr or 2e-5,
                         warmup_ratio=0.1, max_steps_per_epoch=args.max_steps, seed=42)
    started = time.time()
    card = train_pairs(model, data.load_sts("train"), RUNS / f"sts-{model}", objective="cosent",
                       validation=data.load_sts("dev"), score_range=(0.0, 5.0), config=config,
                       dataset_name="stsb_train.csv", overwrite=True)
    tuned = 100 * metric(card, "sts-b test", "spearman", "tuned")
    return [{"task": "STS-B", "model": model, "metric": "STS-B test Spearman x100",
             "base": 100 * metric(card, "sts-b test", "spearman", "base"), "tuned": tuned,
             "target": ">= 85.0" if model == "minilm" else "-", "met": tuned >= 85.0 if model == "minilm" else None,
             "minutes": (time.time() - started) / 60}]


def task_sentiment(model: str, args: argparse.Namespace) -> list[dict]:
    """Rotten Tomatoes: frozen encoder (head only) vs full fine-tuning, same data and split."""
    rows = []
    train = data.load_bundled("rotten-tomatoes", "train")
    validation = data.load_bundled("rotten-tomatoes", "validation")
    test = data.load_bundled("rotten-tomatoes", "test")
    for mode, epochs, lr in [("frozen", 20, 1e-3), ("full", args.epochs or 1, args.lr or 3e-5)]:
        if mode not in args.modes.split(","):
            continue
        config = TrainConfig(epochs=epochs, batch_size=32, learning_rate=lr, warmup_ratio=0.1,
                             patience=3, max_steps_per_epoch=args.max_steps if mode == "full" else None, seed=42,
                             head_warmup_epochs=args.head_warmup if mode == "full" else 0)
        started = time.time()
        card = train_classifier(model, train, RUNS / f"sentiment-{mode}-{model}", mode=mode, validation=validation,
                                test=test, config=config, dataset_name="rotten_tomatoes_train.csv", overwrite=True)
        accuracy = metric(card, "test", "accuracy", "tuned")
        label = f"{mode}, head warm-up {args.head_warmup} epochs" if mode == "full" and args.head_warmup else mode
        rows.append({"task": f"sentiment ({label})", "model": model, "metric": "RT test accuracy",
                     "base": metric(card, "test", "accuracy", "base"), "tuned": accuracy,
                     "target": ">= 0.80" if (mode, model) == ("full", "minilm") else "reported",
                     "met": accuracy >= 0.80 if (mode, model) == ("full", "minilm") else None,
                     "minutes": (time.time() - started) / 60, "f1_macro": metric(card, "test", "f1_macro", "tuned")})
    return rows


def our_pair_throughput(model: str, steps: int, batch_size: int) -> dict:
    """Steady wall-clock pairs/s of our CoSENT training (fit on the job-title pairs), warm-up steps excluded."""
    import keras

    from semsim.encoders import load_encoder
    from semsim.training.callbacks import EpochSeededBatches
    from semsim.training.objectives import CoSENTObjective
    from semsim.training.trainer import make_optimizer

    keras.utils.set_random_seed(0)
    encoder = load_encoder(model, cache=False)
    frame = data.load_bundled("job-title-pairs", "train")
    texts_a, texts_b = frame["text_a"].tolist(), frame["text_b"].tolist()
    scores = frame["score"].to_numpy("float32")
    objective = CoSENTObjective()
    training_model = objective.build_model(encoder.model)

    def make_batch(rows):
        return ({"a": encoder.preprocess([texts_a[i] for i in rows]),
                 "b": encoder.preprocess([texts_b[i] for i in rows])}, scores[rows])

    batches = EpochSeededBatches(len(frame), batch_size, make_batch, seed=0, max_batches=steps)
    training_model.compile(optimizer=make_optimizer(TrainConfig(batch_size=batch_size), steps), loss=objective.loss)
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        # Wall-clock at each step's end, as the ST worker does: batch preparation is inside the interval.
        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter())

    training_model.fit(batches.as_fit_input(), epochs=1, callbacks=[Timer()], verbose=0)
    first = min(10, len(times) // 3)  # the first steps trace and compile
    steps = len(times) - 1 - first
    return {"pairs_per_s": batch_size * steps / (times[-1] - times[first]), "steps_timed": steps}


def ours_in_subprocess(model: str, steps: int, batch_size: int, backend: str) -> dict:
    """Our throughput in a fresh process: the Keras backend is fixed at import, and no threads of an
    earlier run linger to compete with the one being timed."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run([sys.executable, __file__, "--ours-throughput", model, "--throughput-steps", str(steps),
                             "--batch-size", str(batch_size)], capture_output=True, text=True, timeout=3600, env=env)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def st_throughput_in_subprocess(pairs: Path, steps: int, batch_size: int) -> dict:
    """sentence-transformers' fit on minilm in .venv-bench, in a fresh process: {"pairs_per_s": ...}."""
    from semsim.encoders.bert import minilm_folder

    result = subprocess.run([str(BENCH_PYTHON), str(ROOT / "bench" / "_st_fit_worker.py"), "--model",
                             str(minilm_folder()), "--pairs", str(pairs), "--steps", str(steps),
                             "--batch-size", str(batch_size), "--json"],
                            capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        return {"error": f"ST worker failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def task_throughput(model: str, args: argparse.Namespace) -> list[dict]:
    """Pairs/s of our pair training (TensorFlow and JAX backends) against sentence-transformers' fit:
    same model, CoSENT, batch size and job-title pairs, each in a fresh process on the same machine.

    The trainers run in turn (ST, ours on TF, ours on JAX), for `--throughput-rounds` rounds; each row
    reports medians and the ratio of medians. A shared machine's speed drifts by tens of percent within
    minutes, so one run of each, minutes apart, can favour either side."""
    import statistics

    steps, batch_size = args.throughput_steps, args.batch_size
    errors: dict[str, str] = {}
    if not (BENCH_PYTHON.exists() and (ROOT / "bench" / "_st_fit_worker.py").exists()):
        errors["st"] = "no .venv-bench / ST worker: run `make bench-env`"
    elif model != "minilm":
        errors["st"] = "the sentence-transformers reference exists for minilm only"
    samples: dict[str, list[float]] = {name: [] for name in ("st", "tensorflow", "jax") if name not in errors}
    pairs = RUNS / "throughput_pairs.csv"
    data.load_bundled("job-title-pairs", "train").to_csv(pairs, index=False)
    for round_number in range(args.throughput_rounds):
        for name in samples:
            result = (st_throughput_in_subprocess(pairs, steps, batch_size) if name == "st"
                      else ours_in_subprocess(model, steps, batch_size, name))
            if "error" in result:
                errors[name] = result["error"]
            else:
                samples[name].append(result["pairs_per_s"])
            print(f"  round {round_number + 1} {name}: {result}", file=sys.stderr, flush=True)
    st = statistics.median(samples["st"]) if samples.get("st") else None
    rows = []
    for backend in ("tensorflow", "jax"):
        ours = statistics.median(samples[backend]) if samples[backend] else None
        row = {"task": f"pair training throughput ({backend})", "model": model, "metric": "pairs/s (ST fit vs ours)",
               "base": st, "tuned": ours, "target": "ratio >= 1.0", "met": None, "minutes": None, "steps": steps,
               "batch_size": batch_size, "rounds": args.throughput_rounds, "st_samples": samples.get("st", []),
               "ours_samples": samples[backend]}
        if st and ours:
            row.update({"ratio": ours / st, "met": ours >= st})
        if st and ours and len(samples[backend]) == len(samples["st"]):
            # Each round runs ST and ours a minute apart; their ratio cancels slower drift.
            paired = [o / s for o, s in zip(samples[backend], samples["st"], strict=True)]
            row.update({"round_ratios": paired, "median_round_ratio": statistics.median(paired),
                        "rounds_won": sum(r > 1 for r in paired)})
        notes = [errors[k] for k in ("st", backend) if k in errors]
        if notes:
            row["note"] = "; ".join(notes)
        rows.append(row)
    return rows


TASKS = {"jobs": task_jobs, "sts": task_sts, "sentiment": task_sentiment, "throughput": task_throughput}


def render(rows: list[dict]) -> str:
    def fmt(value):
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "NO"
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    columns = ["task", "model", "metric", "base", "tuned", "target", "met", "minutes"]
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
    parser.add_argument("--batch-size", type=int, default=32, help="throughput: pairs per step")
    parser.add_argument("--ours-throughput", metavar="MODEL", help=argparse.SUPPRESS)
    parser.add_argument("--rehearsal", action="store_true",
                        help="jobs: add STS-B train pairs (in batches of their own) to the job-title data")
    parser.add_argument("--merge", action="store_true",
                        help="jobs: also report a WiSE-FT merge with the base, alpha chosen on dev data")
    parser.add_argument("--modes", default="frozen,full", help="sentiment: which modes to run")
    parser.add_argument("--head-warmup", type=int, default=0, help="sentiment full: LP-FT head-only epochs first")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_quality.json"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.ours_throughput:  # the child process of task_throughput
        print(json.dumps(our_pair_throughput(args.ours_throughput, args.throughput_steps, args.batch_size)))
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
