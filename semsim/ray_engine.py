"""Embed a corpus on a Ray cluster with Ray Data: read it, number its rows, embed on an actor pool, write shards.

`--engine ray` of `semsim embed` and `semsim index build`. Ray is optional (`pip install '.[ray]'`) and
imported only here, only when this engine runs. How a run goes:

1. The corpus (CSV or Parquet, one file or a folder of them, in file-name order) is read as a Ray
   dataset with every CSV cell a string (a title "NA" stays a title, as with the local engine).
2. Its blocks are counted and hashed by Ray tasks; the driver gets, per row, 16 bytes of BLAKE2b
   hash of the stripped text, and numbers the rows it keeps exactly as the local engine does
   (`index build`: empty texts and repeats dropped, ids 0, 1, 2... in corpus order; `embed`: every
   row, id = its row number). No text and no vector reaches the driver.
3. `map_batches` runs an actor pool (one encoder loaded per actor, `num_gpus=1` per actor where the
   cluster has GPUs); each batch is embedded and written by its actor as one Parquet shard named by
   its first and last id. A worker that dies is restarted and its batch retried: the retry rewrites
   the same shard (atomically), so nothing is duplicated.
4. The shard set is checked by ids (every kept row exactly once) before anything is built from it.

The shard folder must be reachable from every node (a shared file system on a real cluster).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.shards import MANIFEST_FILE, ShardSet, write_manifest, write_shard

RAY_REQUIREMENT = "ray[data]==2.60.0"
CORPUS_SUFFIXES = (".csv", ".parquet")
DEFAULT_BATCH_SIZE = 256
# Ray restarts a dead actor and retries its batch this many times before the run fails (a batch that
# kills every worker it meets must not loop forever).
MAX_RETRIES = 3
ACTORS_START_S = 600  # how long the actor pool may take to start (each actor loads an encoder)
STARTUP_ATTEMPTS = 4


class EngineError(ValueError):
    """A Ray run that cannot start or did not finish cleanly; the message says what to do."""


@dataclass
class RayOptions:
    """How to run on Ray. address None starts a local cluster bound to 127.0.0.1 only; "auto" joins the
    cluster this machine belongs to (RAY_ADDRESS, or `ray start --head`)."""

    address: str | None = None
    actors: int | None = None  # default: one per GPU, else one per CPU the cluster has
    batch_size: int = DEFAULT_BATCH_SIZE
    num_cpus: int | None = None  # size of a local cluster (default: this machine's cores)
    cpus_per_actor: float = 1.0
    gpus_per_actor: float | None = None  # default: 1 where the cluster has GPUs, else 0
    keep_shards: bool = False
    # Test hook: {"marker": path, "id": n, "when": "after-write" | "before-write"} kills the actor (as a
    # lost node would) the first time a batch holds id n; the marker file makes it happen once.
    fault: dict[str, Any] | None = field(default=None, repr=False)


# -- Ray, loaded lazily ------------------------------------------------------------------------
def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise EngineError(f"--engine ray needs Ray, which is not installed: pip install '{RAY_REQUIREMENT}' "
                          f"(or `pip install '.[ray]'` from a semsim checkout); the default --engine local "
                          f"needs nothing more") from None
    settle_fsspec_http()
    return ray


HTTP_MODULE = "fsspec.implementations.http"


def settle_fsspec_http() -> None:
    """Make `import fsspec.implementations.http` fail at once, the same way in every thread, when aiohttp is absent.

    Ray Data lists a corpus's files on a pool of threads, and each asks whether the file system is
    fsspec's HTTP one by importing that module, taking ModuleNotFoundError as "no". Without aiohttp
    the import fails, and a failed import is not cached: threads racing on it can see the half-made
    module and get a plain ImportError ("cannot import name 'HTTPFileSystem'"), which Ray does not
    catch (CI failed once that way). Imported here once, in one thread: where that fails, a None in
    sys.modules makes every later import raise ModuleNotFoundError straight away.
    """
    import importlib
    import sys

    if HTTP_MODULE in sys.modules:
        return
    try:
        importlib.import_module(HTTP_MODULE)
    except ImportError:
        sys.modules[HTTP_MODULE] = None  # type: ignore[assignment]


def connect(options: RayOptions) -> Any:
    """Ray initialised: the running session, the cluster at `address`, or a new local one on 127.0.0.1."""
    if options.address is None and "ray" not in __import__("sys").modules:
        # Ray binds its servers to the node's address; off Windows and macOS that is the machine's
        # network address unless this is set before Ray is imported (then everything binds 127.0.0.1).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = import_ray()
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if options.address is not None:
        ray.init(address=options.address, log_to_driver=False, include_dashboard=False)
        return ray
    # The raylet gives its Python agents 10-20 s to come up before it aborts; a loaded machine needs longer.
    os.environ.setdefault("RAY_agent_register_timeout_ms", "120000")
    os.environ.setdefault("RAY_worker_register_timeout_seconds", "300")  # a worker's imports, likewise
    from ray._private import ray_constants  # Ray imported earlier without the variable above

    ray_constants.ENABLE_RAY_CLUSTER = False
    root = str(Path(__file__).resolve().parent.parent)  # workers import semsim and index from here
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    # Workers inherit the environment of the raylet this process starts; a runtime_env would do the same
    # through Ray's runtime-env agent, whose set-up times out on a loaded machine.
    os.environ["PYTHONPATH"] = path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    for attempt in range(STARTUP_ATTEMPTS):
        try:
            ray.init(num_cpus=options.num_cpus, include_dashboard=False, log_to_driver=False)
            return ray
        except Exception as exc:  # Ray gives its raylet 30 s to register, too little on a loaded machine
            ray.shutdown()
            _end_ray_children()  # a failed start leaves its gcs_server and raylet behind
            if "timed out during startup" not in str(exc) or attempt == STARTUP_ATTEMPTS - 1:
                raise EngineError(f"a local Ray cluster could not start: {exc}") from exc
    return ray


def _end_ray_children() -> None:
    """Stop the Ray processes this process started (by pid, children only), after a failed start."""
    import psutil  # a dependency of Ray

    for child in psutil.Process().children(recursive=True):
        try:
            if "ray" in " ".join(child.cmdline()[:2]):
                child.terminate()
        except psutil.Error:
            pass


def _quiet_ray_data(ray: Any) -> None:
    context = ray.data.DataContext.get_current()
    # Rows must come back in corpus order (ids follow it), and a CLI prints its own progress.
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # Every actor of the pool is up before the first batch is handed out: otherwise the first actor to
    # load its encoder takes the queue while the others still start, and a pool that cannot start (more
    # actors than the cluster has CPUs) waits for ever instead of failing with Ray's message.
    context.wait_for_min_actors_s = ACTORS_START_S


# -- the corpus --------------------------------------------------------------------------------
def corpus_files(corpus: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The files of a corpus: one CSV or Parquet file, a folder of them (name order), or a list."""
    if isinstance(corpus, str | os.PathLike):
        path = Path(corpus)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CORPUS_SUFFIXES)
            if not files:
                raise EngineError(f"{path} holds no .csv or .parquet files")
        elif path.is_file():
            files = [path]
        else:
            raise EngineError(f"corpus {path} does not exist")
    else:
        files = [Path(p) for p in corpus]
    kinds = {p.suffix.lower() for p in files}
    if len(kinds) != 1 or not kinds <= set(CORPUS_SUFFIXES):
        raise EngineError(f"a corpus is CSV files or Parquet files, not {', '.join(sorted(kinds))}")
    return files


def _delimiter(header: str) -> str:
    # The local reader's rule (semsim.data): a header with no comma but a tab or ";" uses that.
    if "," not in header:
        for sep in ("\t", ";"):
            if sep in header:
                return sep
    return ","


def _columns(files: list[Path]) -> tuple[list[str], str | None]:
    """(column names, CSV delimiter or None for Parquet), read from the first file's header only."""
    if files[0].suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(files[0]).names), None
    with open(files[0], encoding="utf-8-sig") as handle:
        header = handle.readline().rstrip("\r\n")
    sep = _delimiter(header)
    import csv

    return [c.strip() for c in next(csv.reader([header], delimiter=sep))], sep


def read_corpus(ray: Any, files: list[Path], wanted: list[str]) -> Any:
    """The corpus as a Ray dataset of `wanted` columns (CSV cells as strings, never null)."""
    available, sep = _columns(files)
    missing = [c for c in wanted if c not in available]
    if missing:
        raise EngineError(f"{files[0]} has no column {missing[0]!r}; its columns are: {', '.join(available)}")
    paths = [str(p) for p in files]
    if sep is None:
        return ray.data.read_parquet(paths, columns=wanted)
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return ray.data.read_csv(
        # One parsing thread per read task: Ray already reads files in parallel, and pyarrow's own pool
        # inside a worker competes with the encoder actors for the same cores.
        paths, read_options=pacsv.ReadOptions(use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in available},
                                             include_columns=wanted, strings_can_be_null=False,
                                             quoted_strings_can_be_null=False))


# -- remote steps (module-level so Ray can ship them) ------------------------------------------------
def _texts(table: Any, column: str) -> list[str]:
    return [t.strip() if isinstance(t, str) else ("" if t is None else str(t).strip())
            for t in table.column(column).to_pylist()]


def block_summary(table: Any, column: str, hashes: bool) -> dict[str, Any]:
    """Row count, positions of empty texts and (to drop repeats) a 16-byte hash per stripped text."""
    texts = _texts(table, column)
    empty = np.flatnonzero([not t for t in texts]).astype(np.int64)
    out: dict[str, Any] = {"rows": len(texts), "empty": empty}
    if hashes:
        digest = b"".join(hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts)
        out["hashes"] = np.frombuffer(digest, dtype="V16")
    return out


def select_rows(table: Any, keep: np.ndarray, first_id: int, column: str, extras: Sequence[str],
                pieces: int = 1) -> Any:
    """The kept rows of a block as (id, text, extras...), ids numbered from `first_id`; with pieces > 1,
    a tuple of that many consecutive slices of near-equal size (a Ray task with num_returns=pieces;
    none is empty while pieces <= the kept rows, which an actor could not write as a shard)."""
    import pyarrow as pa

    if pieces > 1:
        whole = select_rows(table, keep, first_id, column, extras)
        bounds = [i * whole.num_rows // pieces for i in range(pieces + 1)]  # sizes differ by one at most
        return tuple(whole.slice(a, b - a) for a, b in zip(bounds, bounds[1:], strict=False))

    kept = table.filter(pa.array(keep)) if not keep.all() else table
    columns = {"id": pa.array(np.arange(first_id, first_id + kept.num_rows, dtype=np.int64)),
               "text": pa.array(_texts(kept, column), pa.string())}
    for name in extras:
        if name != column:
            columns[name] = kept.column(name)
    return pa.table(columns)


class EmbedActor:
    """One encoder per actor; each call embeds a batch and writes it as one shard, returning a summary."""

    def __init__(self, spec: str, shard_dir: str, dim: int | None, batch_size: int,
                 fault: dict[str, Any] | None = None, threads: int | None = None):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if threads:
            os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))
            os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        from semsim.encoders.serving import load_for_inference

        # ONNX Runtime at the actor's own thread count where serving covers the model (no TensorFlow in the
        # actor: faster, and a few hundred MB less per actor), else Keras.
        self.encoder = load_for_inference(spec, threads=threads)
        self.shard_dir, self.dim, self.batch_size, self.fault = shard_dir, dim, batch_size, fault

    def _maybe_die(self, ids: np.ndarray, when: str) -> None:
        fault = self.fault
        if fault and fault.get("when", "after-write") == when and int(fault["id"]) in ids:
            marker = Path(fault["marker"])
            try:
                marker.touch(exist_ok=False)  # only the first worker to get here dies
            except FileExistsError:
                return
            os._exit(1)

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from semsim.matryoshka import truncate

        ids = batch.column("id").to_numpy().astype(np.int64)
        self._maybe_die(ids, "before-write")
        vectors = self.encoder.encode(batch.column("text").to_pylist(), batch_size=self.batch_size)
        if self.dim:
            vectors = truncate(vectors, self.dim)
        path = write_shard(self.shard_dir, ids, vectors, batch.drop_columns(["id"]))
        self._maybe_die(ids, "after-write")
        encoder = self.encoder
        return pa.table({"shard": [path.name], "rows": [len(ids)], "first_id": [int(ids.min())],
                         "last_id": [int(ids.max())], "pid": [os.getpid()], "spec": [encoder.spec],
                         "name": [encoder.name], "fingerprint": [encoder.fingerprint], "model_dim": [int(encoder.dim)]})


# -- the run -----------------------------------------------------------------------------------
def _plan_ids(summaries: list[dict[str, Any]], dedupe: bool) -> tuple[list[np.ndarray], list[int], dict[str, int]]:
    """Per block: which rows to keep and the first id given to them; and what was dropped."""
    keeps, firsts = [], []
    counts = {"rows_read": 0, "empty_dropped": 0, "duplicates_dropped": 0}
    if dedupe:
        everything = np.concatenate([s["hashes"] for s in summaries]) if summaries else np.empty(0, "V16")
        nonempty = np.ones(len(everything), dtype=bool)
        offset = 0
        for s in summaries:
            nonempty[offset + s["empty"]] = False
            offset += s["rows"]
        first = np.zeros(len(everything), dtype=bool)
        candidates = np.flatnonzero(nonempty)
        _, first_seen = np.unique(everything[candidates], return_index=True)  # first occurrence of each text
        first[candidates[first_seen]] = True
        del everything
    next_id, offset = 0, 0
    for s in summaries:
        rows = s["rows"]
        if dedupe:
            keep = first[offset:offset + rows]
            counts["empty_dropped"] += len(s["empty"])
            counts["duplicates_dropped"] += int(rows - len(s["empty"]) - keep.sum())
        else:
            keep = np.ones(rows, dtype=bool)
        keeps.append(np.ascontiguousarray(keep))
        firsts.append(next_id)
        next_id += int(keep.sum())
        offset += rows
        counts["rows_read"] += rows
    return keeps, firsts, counts


def _empty_rows_error(summaries: list[dict[str, Any]], column: str, files: list[Path]) -> None:
    offset, rows = 0, []
    for s in summaries:
        rows.extend((offset + s["empty"]).tolist())
        offset += s["rows"]
    if rows:
        where = files[0] if len(files) == 1 else f"the corpus ({len(files)} files, rows counted across them)"
        raise EngineError(f"{where}: column {column!r} is empty in data row(s) "
                          f"{', '.join(str(r + 1) for r in rows[:10])}; fill or remove those rows so each vector "
                          f"matches a row")


def input_blocks(rows: int, actors: int, batch_size: int) -> int:
    """How many blocks `rows` reach the actor pool in: at least 4 per actor, so that none idles while
    another finishes a long block, and about 16 batches a block past that; never more than one a batch."""
    batches = max(1, -(-rows // max(1, batch_size)))
    return min(batches, max(4 * max(1, actors), -(-batches // 16)))


def embed_corpus_on_ray(model: str, corpus: str | os.PathLike | Sequence[str | os.PathLike], column: str,
                        shard_dir: str | os.PathLike, options: RayOptions | None = None,
                        extra_columns: Sequence[str] = (), dedupe: bool = False, dim: int | None = None,
                        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Embed `column` of a corpus into a new folder of checked shards (+ manifest.json); the summary.

    dedupe=True numbers rows as `index build` does (empty texts and repeats dropped); False as `embed`
    does (every row; an empty text is an error). `dim` truncates each vector to its first `dim`
    dimensions and re-normalises (Matryoshka). A run that fails leaves no manifest.json, so a
    half-written shard folder is never taken for a finished one.
    """
    options = options or RayOptions()
    say = progress or (lambda message: None)
    started = time.perf_counter()
    files = corpus_files(corpus)
    shard_dir = Path(shard_dir)
    if shard_dir.exists() and any(shard_dir.iterdir()):
        raise EngineError(f"{shard_dir} is not empty; shards are written into an empty folder")
    shard_dir.mkdir(parents=True, exist_ok=True)
    ray = connect(options)
    _quiet_ray_data(ray)
    wanted = [column, *[c for c in extra_columns if c != column]]

    say(f"reading {len(files)} file(s) as a Ray dataset")
    refs = read_corpus(ray, files, wanted).to_arrow_refs()
    summarise = ray.remote(block_summary)
    summaries = ray.get([summarise.remote(ref, column, dedupe) for ref in refs])
    if not dedupe:
        _empty_rows_error(summaries, column, files)
    keeps, firsts, counts = _plan_ids(summaries, dedupe)
    kept = int(sum(int(k.sum()) for k in keeps))
    if not kept:
        raise EngineError(f"no texts to embed in column {column!r} ({counts['empty_dropped']} empty, "
                          f"{counts['duplicates_dropped']} duplicates)")
    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0))
    per_gpu = options.gpus_per_actor if options.gpus_per_actor is not None else (1.0 if gpus else 0.0)
    default_actors = int(gpus // per_gpu) if per_gpu else max(1, int(resources.get("CPU", 1) // options.cpus_per_actor))
    actors = max(1, options.actors or default_actors)

    # A CSV file is read as one block, and a block is one actor's task: unsplit, a single-file corpus ran
    # on one actor while the others idled (bench/scale.py embed, 50,000 titles, 2 actors). The blocks are
    # cut here, by the numbering tasks, because once the actors hold the CPUs no other task can run.
    per_piece = -(-kept // input_blocks(kept, actors, options.batch_size))
    select = ray.remote(select_rows)
    selected = []
    for ref, keep, first in zip(refs, keeps, firsts, strict=True):
        if keep.any():
            pieces = max(1, -(-int(keep.sum()) // per_piece))
            out = select.options(num_returns=pieces).remote(ref, keep, first, column, wanted[1:], pieces)
            selected.extend(out if pieces > 1 else [out])
    ray.wait(selected, num_returns=len(selected))  # numbered before the actors take the CPUs
    del refs

    say(f"embedding {kept:,} texts on {actors} actor(s){f' with {per_gpu:g} GPU each' if per_gpu else ''}")
    fault = dict(options.fault) if options.fault else None
    embedded = ray.data.from_arrow_refs(selected).map_batches(
        EmbedActor, batch_size=options.batch_size, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=actors),
        fn_constructor_kwargs={"spec": model, "shard_dir": str(shard_dir), "dim": dim,
                               "batch_size": min(options.batch_size, 256), "fault": fault,
                               "threads": max(1, int(options.cpus_per_actor))},
        num_cpus=options.cpus_per_actor, num_gpus=per_gpu or None,
        max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES)
    first_shard = None
    written = []
    for row in embedded.iter_rows():
        first_shard = first_shard or time.perf_counter() - started
        written.append(row)
    del selected

    say("checking the shards by id")
    shards = ShardSet(shard_dir).check(expected_ids=np.arange(kept, dtype=np.int64))
    for name in shards.dropped:  # second copies of retried batches: kept ids stay exactly once
        (shard_dir / name).unlink(missing_ok=True)
    if not written:
        raise EngineError("the Ray run returned no shards")
    info = written[0]
    encoder = {"spec": info["spec"], "name": info["name"], "fingerprint": info["fingerprint"], "dim": shards.dim,
               **({"truncated_from": int(info["model_dim"])} if dim else {})}
    manifest = {"format": "semsim-shards", "version": 1, "model": model, "encoder": encoder, "column": column,
                "extra_columns": list(wanted[1:]), "dim": shards.dim, "truncated_to": dim, "rows": kept,
                "ids": f"0..{kept - 1}", "numbering": "index build (empty and repeated texts dropped)" if dedupe
                else "embed (every row; id = row number)", **counts, "files": [str(p) for p in files],
                "shards": [{"name": s.path.name, "rows": s.rows, "first_id": s.first_id, "last_id": s.last_id}
                           for s in shards.shards], "retried_copies_dropped": shards.dropped, "actors": actors,
                "batch_size": options.batch_size, "gpus_per_actor": per_gpu,
                "workers": sorted({int(r["pid"]) for r in written}), "seconds": round(time.perf_counter() - started, 3)}
    write_manifest(shard_dir, manifest)
    return {**manifest, "shard_dir": str(shard_dir), "seconds_to_first_shard": first_shard}


# -- what the CLI runs ---------------------------------------------------------------------------------
def _scratch_beside(target: Path, what: str) -> Path:
    """A hidden folder next to `target` (same disk, so nothing large is copied across file systems)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.parent / f".{target.name}.{what}-{uuid.uuid4().hex[:8]}"


def build_index_on_ray(model: str, corpus: Any, column: str, out_dir: str | os.PathLike, kind: str = "auto",
                       options: RayOptions | None = None, extra_columns: Sequence[str] = (),
                       index_params: dict[str, Any] | None = None, overwrite: bool = False, dim: int | None = None,
                       shard_dir: str | os.PathLike | None = None,
                       progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """`index build --engine ray`: embed on Ray into shards, check them, then build the index from them
    one shard at a time in this process and publish it atomically (nothing at `out_dir` changes unless
    every step succeeded). Shards go to a hidden folder beside `out_dir` and are deleted afterwards,
    unless `shard_dir` names a folder to keep them in."""
    from index import IndexStore, VectorIndexError
    from index.shards import fill_from_shards
    from index.storage import is_replaceable
    from semsim.corpus_index import RESERVED_EXTRA_COLUMNS
    from semsim.search import forget_loaded_index

    started = time.perf_counter()
    options = options or RayOptions()
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise VectorIndexError(f"{out_dir} already exists; choose another folder or overwrite it")
    if not is_replaceable(out_dir):
        raise VectorIndexError(f"{out_dir} exists and is not an index folder; refusing to replace it")
    reserved = set(RESERVED_EXTRA_COLUMNS) & set(extra_columns)
    if reserved:
        raise VectorIndexError(f"extra columns cannot be named {sorted(reserved)}: the index uses those names")
    keep = shard_dir is not None
    shards_at = Path(shard_dir) if keep else _scratch_beside(out_dir, "shards")
    spill = _scratch_beside(out_dir, "refine")
    try:
        summary = embed_corpus_on_ray(model, corpus, column, shards_at, options, extra_columns, dedupe=True,
                                      dim=dim, progress=progress)
        shards = ShardSet(shards_at).check(expected_ids=np.arange(summary["rows"], dtype=np.int64))
        encoder = summary["encoder"]  # reported by the actors: the driver never loads the model
        if progress:
            progress(f"building the {kind} index from {len(shards.shards)} shards")
        store = IndexStore.create(int(shards.dim), kind, encoder=encoder, **(index_params or {}))
        spill.mkdir()
        fill_from_shards(store, shards, spill_dir=spill)
        store.save(out_dir, extra={"source": ", ".join(summary["files"]), "column": column,
                                   "extra_columns": list(extra_columns), "engine": "ray",
                                   "shards": len(shards.shards)})
    finally:
        shutil.rmtree(spill, ignore_errors=True)
        if not keep:
            shutil.rmtree(shards_at, ignore_errors=True)
    forget_loaded_index(out_dir)
    description = store.index.describe()
    return {"out_dir": str(out_dir), "count": len(store), "rows_read": summary["rows_read"], "added": len(store),
            "empty_dropped": summary["empty_dropped"], "duplicates_dropped": summary["duplicates_dropped"],
            "kind": store.kind, "chosen": description.get("chosen", store.kind),
            "chosen_reason": description["chosen_reason"], "params": description["params"], "model": model,
            "dim": store.dim, "engine": "ray", "actors": summary["actors"], "shards": len(shards.shards),
            "retried_copies_dropped": summary["retried_copies_dropped"],
            "embed_seconds": summary["seconds"], "seconds": round(time.perf_counter() - started, 3)}


def embed_to_npy_on_ray(model: str, corpus: Any, column: str, out: str | os.PathLike,
                        options: RayOptions | None = None, dim: int | None = None,
                        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """`embed --engine ray --out FILE.npy`: shards first, then one .npy in row order, written shard by
    shard through a memory map (the driver never holds every vector) and renamed into place."""
    out = Path(out)
    scratch = _scratch_beside(out, "shards")
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp.npy"
    try:
        summary = embed_corpus_on_ray(model, corpus, column, scratch, options, dim=dim, progress=progress)
        shards = ShardSet(scratch).check(expected_ids=np.arange(summary["rows"], dtype=np.int64))
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(summary["rows"], shards.dim))
        for ids, vectors, _ in shards:
            array[ids] = vectors
        array.flush()
        del array
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return {"model": model, "rows": summary["rows"], "dim": summary["dim"], "out": str(out), "engine": "ray",
            "actors": summary["actors"], "seconds": summary["seconds"]}


def is_shard_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / MANIFEST_FILE).is_file()
