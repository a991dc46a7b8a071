"""Scale benchmark: Ray vs local embedding, index kinds at 1M vectors, Matryoshka quality against dimension.

Three parts, each a subcommand that appends JSON lines to bench/results/ and prints a table:

    python bench/scale.py index --dim 384 --kinds flat,ivf,ivf-sq8,ivf-pq      # 1M synthetic vectors
    python bench/scale.py embed --texts 50000                                  # local engine vs Ray
    python bench/scale.py matryoshka --model workspace/models/minilm-matryoshka
    python bench/scale.py report                                               # tables from the JSON lines

Run them in the background on a shared machine (nohup, logs under /tmp); `uptime` is recorded with
every row because the 2 cores here are shared and build times move with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CACHE = Path(os.environ.get("SEMSIM_BENCH_CACHE", tempfile.gettempdir())) / "semsim-scale"
TARGET_RECALL, TARGET_SPEEDUP = 0.95, 30.0
TARGET_PQ_BYTES, TARGET_PQ_RECALL = 64, 0.90


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}


def append(name: str, row: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / name, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def anon_mb() -> float:
    """This process's anonymous memory (heap; not the page cache of mapped files), in MB."""
    with open("/proc/self/smaps_rollup") as handle:
        for line in handle:
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) / 1e3
    return float("nan")


# -- index kinds at 1M ------------------------------------------------------------------------
def dataset(n: int, dim: int, queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors, queries, exact top-10 positions), cached as .npy files and memory-mapped, so several
    benchmark processes share one copy in the page cache."""
    import fcntl

    from index.datasets import ClusteredEmbeddings, exact_neighbors

    CACHE.mkdir(parents=True, exist_ok=True)
    stem = CACHE / f"clustered-{n}-{dim}"
    files = [Path(f"{stem}-{part}.npy") for part in ("vectors", "queries", "truth")]
    lock = open(f"{stem}.lock", "w")  # two benchmark processes generate one copy
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not all(f.is_file() for f in files):
        generator = ClusteredEmbeddings(dim, n_clusters=max(20, n // 200), seed=0)
        out = np.lib.format.open_memmap(f"{files[0]}.tmp.npy", mode="w+", dtype=np.float32, shape=(n, dim))
        start = 0
        for chunk in generator.chunks(n, seed=1):
            out[start:start + len(chunk)] = chunk
            start += len(chunk)
        out.flush()
        query_vectors = generator.sample(queries, seed=2)
        _, truth = exact_neighbors(out, query_vectors, 10)
        del out
        os.replace(f"{files[0]}.tmp.npy", files[0])
        np.save(files[1], query_vectors)
        np.save(files[2], truth)
    lock.close()
    return np.load(files[0], mmap_mode="r"), np.load(files[1]), np.load(files[2])


def time_single(index, queries: np.ndarray) -> float:
    """Queries per CPU-second, one query at a time on one faiss thread (as a server answers one request;
    CPU time so that other processes on the shared machine do not distort the ratio to exact search)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        started = time.thread_time()
        for query in queries:
            index.search(query, 10)
        return len(queries) / max(time.thread_time() - started, 1e-9)
    finally:
        faiss.omp_set_num_threads(threads)


SETTINGS = {  # kind -> (build params, search settings to measure after building)
    "flat": ({}, [{}]),
    "hnsw": ({}, [{}, {"ef_search": 64}, {"ef_search": 256}, {"ef_search": 512}, {"ef_search": 1024}]),
    "ivf": ({}, [{}, {"nprobe": 40}, {"nprobe": 80}]),
    "ivf-sq8": ({}, [{}, {"nprobe": 40}, {"nprobe": 80}]),
    "ivf-pq": ({}, [{}, {"nprobe": 40}, {"nprobe": 40, "refine_factor": 10}, {"nprobe": 80}]),
    "ivf-pq:m32": ({"m": 32}, [{}, {"nprobe": 40}, {"nprobe": 80, "refine_factor": 40}]),
    "ivf-pq:norefine": ({"refine": False}, [{}]),
    "hnsw:m16": ({"M": 16, "ef_construction": 40}, [{}, {"ef_search": 64}, {"ef_search": 256}]),
}


def bench_index_kind(label: str, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, single: int,
                     shard_rows: int = 50_000, nlist: int | None = None) -> None:
    """Build one kind shard by shard (as `index build --engine ray` does), save it, open it as a search
    would (ivf-pq's refine vectors memory-mapped), and measure it."""
    from index import create_index, load_vector_index, save_vector_index
    from index.datasets import recall_at_k

    kind, _, variant = label.partition(":")
    params, searches = SETTINGS.get(label, ({}, [{}]))
    if nlist and kind.startswith("ivf"):
        params = {**params, "nlist": nlist}
    n, dim = vectors.shape
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        anon_before = anon_mb()
        started = time.perf_counter()
        index = create_index(kind, dim, **params)
        index.expect(n)
        if hasattr(index, "train"):  # a sample drawn across the corpus, as the shard build draws it
            rows = np.sort(np.random.default_rng(0).choice(n, min(n, index._train_points(n)), replace=False))
            index.train(np.asarray(vectors[rows]))
        if hasattr(index, "spill_refine_to"):
            index.spill_refine_to(tmp)
        for start in range(0, n, shard_rows):
            index.add(np.asarray(vectors[start:start + shard_rows]), np.arange(start, min(n, start + shard_rows)))
        index.flush()
        build_peak_anon = anon_mb() - anon_before
        folder = Path(tmp) / "index"
        save_vector_index(index, folder)
        build_s = time.perf_counter() - started
        estimate = index.memory_bytes()
        del index
        files = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
        before = anon_mb()
        index = load_vector_index(folder)
        loaded_anon = anon_mb() - before
        for setting in searches:
            if setting:
                index.set_search_params(**setting)
            _, found = index.search(queries, 10)
            recall = recall_at_k(found, truth, 10)
            qps = time_single(index, queries[:single])
            described = index.describe()
            shown = {k: v for k, v in described["params"].items() if v is not None and k != "sq8"}
            if "effective_nprobe" in described:
                shown["nprobe"] = described["effective_nprobe"]
            append("scale_index.jsonl", {
                "kind": kind, "variant": variant, "n": n, "dim": dim, "params": shown, "default": not setting,
                "build_s": round(build_s, 1), "disk_bytes_per_vector": round(sum(files.values()) / n, 1),
                "index_faiss_bytes_per_vector": round(files.get("index.faiss", 0) / n, 1),
                "ram_bytes_per_vector_estimate": round(estimate["resident"] / n, 1),
                "mapped_bytes_per_vector": round(estimate["mapped"] / n, 1),
                "loaded_anon_mb": round(loaded_anon, 1), "build_anon_growth_mb": round(build_peak_anon, 1),
                "recall@10": round(recall, 4), "single_qps": round(qps, 1), "queries": len(queries),
                "single_queries": single, "machine": machine()})
        del index


def cmd_index(args: argparse.Namespace) -> int:
    vectors, queries, truth = dataset(args.n, args.dim, args.queries)
    for label in [k.strip() for k in args.kinds.split(",") if k.strip()]:
        print(f"== {label} at {args.n:,} x {args.dim} ({machine()['uptime']})", file=sys.stderr, flush=True)
        bench_index_kind(label, vectors, queries, truth, args.single, nlist=args.nlist)
    return 0


# -- embedding: local engine vs Ray -----------------------------------------------------------
def job_titles_corpus(n: int, seed: int = 0) -> list[str]:
    """`n` job-title-like texts: the bundled ONS titles' words recombined with a seed.

    Each text takes a real title and swaps one to three of its words for words seen at the same
    position in other titles, so lengths and vocabulary follow real titles and repeats are rare."""
    import pandas as pd

    titles = pd.read_csv(ROOT / "data" / "job_titles.csv", usecols=["title"], dtype=str,
                         keep_default_na=False)["title"].str.strip()
    titles = [t.split() for t in titles if t]
    by_position: dict[int, list[str]] = {}
    for words in titles:
        for i, word in enumerate(words):
            by_position.setdefault(min(i, 4), []).append(word)
    pools = {i: np.array(words) for i, words in by_position.items()}
    rng = np.random.default_rng(seed)
    out = []
    for pick in rng.integers(0, len(titles), n):
        words = list(titles[pick])
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(words)))
            pool = pools[min(i, 4)]
            words[i] = str(pool[rng.integers(0, len(pool))])
        out.append(" ".join(words))
    return out


class PeakRSS:
    """The driver's peak resident memory over a block, sampled every 50 ms (ru_maxrss is per process
    lifetime, so it cannot isolate one phase of a run)."""

    def __enter__(self) -> PeakRSS:
        self.start = self._rss()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _rss() -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def cmd_embed(args: argparse.Namespace) -> int:
    import pandas as pd

    from semsim.encoders.serving import load_for_inference

    CACHE.mkdir(parents=True, exist_ok=True)
    texts = job_titles_corpus(args.texts, seed=args.seed)
    corpus = CACHE / f"titles-{args.texts}.parquet"
    pd.DataFrame({"title": texts}).to_parquet(corpus, index=False)
    results = {}
    for engine in args.engines.split(","):
        out = CACHE / f"embed-{engine}"
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        with PeakRSS() as rss:
            started = time.perf_counter()
            if engine == "local":
                encoder = load_for_inference(args.model)  # as `index build` loads it (ONNX Runtime where covered)
                loaded = time.perf_counter()
                vectors = encoder.encode(texts, batch_size=args.batch_size)
                rows = len(vectors)
                del vectors
            else:
                from semsim.ray_engine import RayOptions, embed_corpus_on_ray

                options = RayOptions(address=args.ray_address, actors=args.actors, batch_size=args.batch_size,
                                     num_cpus=args.num_cpus)
                summary = embed_corpus_on_ray(args.model, [corpus], "title", out, options)
                loaded = started + summary["seconds_to_first_shard"] if summary.get("seconds_to_first_shard") else started
                rows = summary["rows"]
            seconds = time.perf_counter() - started
        results[engine] = {"engine": engine, "texts": rows, "seconds": round(seconds, 1),
                           "texts_per_s": round(rows / seconds, 1),
                           "texts_per_s_after_load": round(rows / max(time.perf_counter() - loaded, 1e-9), 1)
                           if engine == "local" else None,
                           "driver_peak_rss_mb": round(rss.peak, 1), "driver_rss_growth_mb": round(rss.peak - rss.start, 1),
                           "vectors_mb": round(rows * 384 * 4 / 1e6, 1), "batch_size": args.batch_size,
                           "actors": args.actors if engine == "ray" else None, "model": args.model,
                           "machine": machine()}
        append("scale_embed.jsonl", results[engine])
    return 0


# -- Matryoshka: quality against dimension ------------------------------------------------------
def cmd_matryoshka(args: argparse.Namespace) -> int:
    from semsim.encoders import load_encoder
    from semsim.matryoshka import quality_by_dimension

    dims = [int(d) for d in args.dims.split(",")]
    for spec in args.models:
        encoder = load_encoder(spec)
        started = time.perf_counter()
        rows = quality_by_dimension(encoder, dims, sts_rows=args.rows)
        for row in rows:
            append("scale_matryoshka.jsonl", {**row, "model": spec, "seconds": round(time.perf_counter() - started, 1),
                                              "rows": args.rows, "machine": machine()})
    return 0


# -- the tables -----------------------------------------------------------------------------------
def _read(name: str) -> list[dict]:
    path = RESULTS / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def cmd_report(args: argparse.Namespace) -> int:
    rows = _read("scale_index.jsonl")
    for dim in sorted({r["dim"] for r in rows}, reverse=True):
        at = [r for r in rows if r["dim"] == dim]
        # Rows are in run order and every run starts with flat when it measures it: each row's rate is
        # compared with the exact search of its own run (same load), not of an earlier one.
        flat = next((r for r in at if r["kind"] == "flat"), None)
        print(f"\n**{at[0]['n']:,} vectors x {dim}-d**\n")
        print("| kind | params | build | bytes/vector in RAM (index.faiss) | disk bytes/vector | recall@10 | "
              "single-query rate (x exact) | load |")
        print("|---|---|---|---|---|---|---|---|")
        for r in at:
            if r["kind"] == "flat":
                flat = r
            params = ", ".join(f"{k} {v}" for k, v in r["params"].items() if k not in ("threshold",))
            ratio = f" ({r['single_qps'] / flat['single_qps']:.0f}x)" if flat else ""
            print(f"| {r['kind']}{(' ' + r['variant']) if r['variant'] else ''} | {params or '-'} | "
                  f"{r['build_s']:.0f} s | {r['ram_bytes_per_vector_estimate']:.0f} ({r['index_faiss_bytes_per_vector']:.0f}) | "
                  f"{r['disk_bytes_per_vector']:.0f} | {r['recall@10']:.3f} | {r['single_qps']:,.0f}/s{ratio} | "
                  f"{r['machine']['load_average'][0]} |")
    embed = _read("scale_embed.jsonl")
    if embed:
        print("\n| engine | texts | seconds | texts/s | driver peak RSS | driver RSS growth | load |")
        print("|---|---|---|---|---|---|---|")
        for r in embed:
            print(f"| {r['engine']} | {r['texts']:,} | {r['seconds']} | {r['texts_per_s']} | {r['driver_peak_rss_mb']:.0f} MB | "
                  f"{r['driver_rss_growth_mb']:.0f} MB | {r['machine']['load_average'][0]} |")
    quality = _read("scale_matryoshka.jsonl")
    if quality:
        print("\n| model | dim | STS-B Spearman x100 | ESCO nDCG@10 |")
        print("|---|---|---|---|")
        for r in quality:
            print(f"| {r['model']} | {r['dim']} | {r['sts_spearman']:.2f} | {r['esco_ndcg@10']:.3f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("index", help="index kinds on synthetic clustered vectors")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--kinds", default="flat,ivf,ivf-sq8,ivf-pq,ivf-pq:m32")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--single", type=int, default=200)
    p.add_argument("--nlist", type=int, help="inverted lists of every ivf kind (default: the kind's own choice, "
                   "4,000 at 1M; fewer lists train and fill faster on a loaded machine)")
    p.set_defaults(func=cmd_index)
    p = commands.add_parser("embed", help="the same synthetic job titles embedded locally and on Ray")
    p.add_argument("--texts", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="minilm")
    p.add_argument("--engines", default="local,ray")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--actors", type=int, default=2)
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--ray-address", default=None)
    p.set_defaults(func=cmd_embed)
    p = commands.add_parser("matryoshka", help="STS-B and ESCO nDCG@10 against dimension")
    p.add_argument("--models", nargs="+", default=["minilm"])
    p.add_argument("--dims", default="384,256,128,64")
    p.add_argument("--rows", type=int, help="a seeded sample of this many STS-B test pairs and ESCO queries "
                   "(default: all; the whole ESCO corpus is always searched)")
    p.set_defaults(func=cmd_matryoshka)
    p = commands.add_parser("report", help="print the README tables from bench/results/scale_*.jsonl")
    p.set_defaults(func=cmd_report)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
