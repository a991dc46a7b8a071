"""The index commands: build, add, remove and info of index folders over text corpora."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from index.names import KIND_NAMES
from semsim.cli.arguments import (
    CliError,
    add_model_argument,
    add_precision_argument,
    load_model,
    positive_int,
)
from semsim.cli.output import add_json_flag, emit, progress_bar

# -- argument types -----------------------------------------------------------------------------


def _id_list(value: str) -> list[int]:
    try:
        ids = [int(part) for part in value.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {value!r}") from None
    if not ids:
        raise argparse.ArgumentTypeError("no ids given")
    return ids


def _param(value: str) -> tuple[str, Any]:
    key, sep, raw = value.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. ef_search=256), got {value!r}")
    try:
        parsed = json.loads(raw)  # numbers, true/false, null
    except json.JSONDecodeError:
        parsed = raw
    return key.strip(), parsed


def column_list(value: str) -> list[str]:
    """argparse type: comma-separated column names."""
    return [part.strip() for part in value.split(",") if part.strip()]


# -- corpus resolution --------------------------------------------------------------------------
def resolve_corpus(corpus: str, column: str | None) -> tuple[Path, str, list[str] | None]:
    """(CSV path, text column, default extra columns) for a file or a bundled corpus name.

    `job-titles` (data/job_titles.csv, column `title`) and the other bundled text datasets index
    with one command; their other columns come along as extra columns unless told otherwise.
    """
    path = Path(corpus)
    if path.is_file():
        return path, column or "text", None
    from semsim import data

    dataset = data.BUNDLED_DATASETS.get(corpus)
    if dataset is not None and dataset.kind == "texts":
        bundled = data.bundled_path(corpus)
        if not bundled.is_file():
            raise CliError(f"the bundled corpus {corpus} is missing ({bundled}); run `make data`")
        text_column = column or dataset.text_column or "text"
        import pandas as pd

        header = pd.read_csv(bundled, nrows=0).columns.tolist()
        return bundled, text_column, [c for c in header if c != text_column]
    bundled_names = [name for name, d in data.BUNDLED_DATASETS.items() if d.kind == "texts"]
    raise CliError(f"corpus {corpus} is neither a CSV file nor a bundled corpus ({', '.join(bundled_names)})")


def _index_params(pairs: list[tuple[str, Any]] | None) -> dict[str, Any]:
    return dict(pairs or [])


# -- engines: local (this process) or Ray -------------------------------------------------------
def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """--engine, the Ray options and --dim, shared by `embed` and `index build`."""
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: embed in this process (default); ray: read the corpus as a Ray dataset "
                             "(CSV or Parquet, a file or a folder) and embed it on a Ray actor pool "
                             "(needs `pip install '.[ray]'`)")
    parser.add_argument("--ray-address", metavar="ADDRESS",
                        help="with --engine ray: the cluster to join (auto: the one this machine belongs to); "
                             "default: start a local Ray bound to 127.0.0.1")
    parser.add_argument("--actors", type=positive_int,
                        help="with --engine ray: encoder actors (default: one per GPU, else one per CPU)")
    parser.add_argument("--dim", type=positive_int,
                        help="keep the first DIM dimensions of each vector, re-normalised (Matryoshka); "
                             "default: the model's own")


def say_progress(args: argparse.Namespace) -> Any:
    """Ray runs report their steps on stderr (stdout stays the result, --json or not)."""
    return lambda message: print(message, file=sys.stderr, flush=True)


def ray_options(args: argparse.Namespace) -> Any:
    from semsim.ray_engine import RayOptions

    return RayOptions(address=args.ray_address, actors=args.actors, batch_size=args.batch_size)


def check_local_engine(args: argparse.Namespace) -> None:
    if args.engine == "local" and (args.ray_address or args.actors):
        raise CliError("--ray-address and --actors need --engine ray")


def model_with_dim(spec: str, dim: int | None, precision: str = "float32") -> Any:
    from semsim.matryoshka import DimensionError, with_dim

    encoder = load_model(spec, precision)
    try:
        return with_dim(encoder, dim)
    except DimensionError as exc:
        raise CliError(str(exc)) from None


def model_that_built(index_dir: str) -> str:
    """The encoder spec an index folder records, for commands whose --model defaults to it.

    Only a bundled, registered (SEMSIM_MODELS) or models-directory model is taken from the index: a
    shared index must not decide which code and weights this process loads.
    """
    from semsim.corpus_index import index_info
    from semsim.encoders import is_known_model, models_dir

    spec = (index_info(index_dir).get("encoder") or {}).get("spec")
    if not spec or not isinstance(spec, str):
        raise CliError(f"{index_dir} does not record the model that built it; pass --model")
    if not is_known_model(spec):
        raise CliError(f"{index_dir} was built with {spec!r}, which is not a bundled model, a folder in "
                       f"{models_dir()} or a model listed in SEMSIM_MODELS, so it is not loaded just because "
                       f"the index names it; pass --model {spec} if you trust it")
    return spec


# -- index build / add / remove / info ---------------------------------------------------------
def _render_build(result: dict[str, Any]) -> str:
    lines = [f"indexed {result['count']:,} texts into {result.get('out_dir') or result.get('index')} "
             f"in {result['seconds']:.1f} s ({result['kind']})",
             f"  {result['chosen_reason']}",
             f"  dropped {result['duplicates_dropped']:,} duplicate and {result['empty_dropped']:,} empty texts"]
    if "added" in result and "out_dir" not in result:
        lines[0] = (f"added {result['added']:,} texts to {result['index']} ({result['count']:,} in all) "
                    f"in {result['seconds']:.1f} s")
    return "\n".join(lines)


def _build_on_ray(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from semsim.ray_engine import EngineError, build_index_on_ray

    corpus = Path(args.corpus)
    if corpus.is_dir() or corpus.suffix.lower() == ".parquet":  # Ray reads folders and Parquet too
        path, column, default_extras = corpus, args.column or "text", None
    else:
        path, column, default_extras = resolve_corpus(args.corpus, args.column)
    extras = args.extra_columns if args.extra_columns is not None else (default_extras or [])
    try:
        return build_index_on_ray(args.model, path, column, out, kind=args.kind, options=ray_options(args),
                                  extra_columns=extras, index_params=_index_params(args.param),
                                  overwrite=args.overwrite, dim=args.dim, shard_dir=args.shards,
                                  progress=say_progress(args))
    except EngineError as exc:
        raise CliError(str(exc)) from None


def cmd_index_build(args: argparse.Namespace) -> int:
    from index.storage import is_replaceable
    from semsim.corpus_index import RESERVED_EXTRA_COLUMNS, build_index, check_corpus_csv
    from semsim.paths import check_destination

    # The output and the whole corpus are checked before the model loads and anything is encoded.
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise CliError(f"{out} exists; pass --overwrite to replace it")
    if not is_replaceable(out):
        raise CliError(f"{out} exists and is not an index folder; refusing to replace it")
    check_destination(out, "the index")
    check_local_engine(args)
    if args.engine == "ray":
        emit(_build_on_ray(args, out), args.json, _render_build)
        return 0
    if args.shards:
        raise CliError("--shards needs --engine ray")
    path, column, default_extras = resolve_corpus(args.corpus, args.column)
    extras = args.extra_columns if args.extra_columns is not None else (default_extras or [])
    reserved = sorted(set(RESERVED_EXTRA_COLUMNS) & set(extras))
    if reserved:
        raise CliError(f"extra columns cannot be named {reserved}: the index uses those names")
    corpus = check_corpus_csv(path, [column, *extras])
    encoder = model_with_dim(args.model, args.dim, args.precision)
    result = build_index(encoder, corpus, column=column, out_dir=out, kind=args.kind, batch_size=args.batch_size,
                         progress=progress_bar(f"indexing with {encoder.name}"), extra_columns=extras,
                         index_params=_index_params(args.param), overwrite=args.overwrite)
    emit(result, args.json, _render_build)
    return 0


def cmd_index_add(args: argparse.Namespace) -> int:
    from semsim.corpus_index import add_to_index, check_corpus_csv, index_info

    path, column, _ = resolve_corpus(args.corpus, args.column)
    index_info(args.index)  # the index and the corpus are checked before the model loads
    corpus = check_corpus_csv(path, [column, *(args.extra_columns or [])])
    encoder = load_model(args.model or model_that_built(args.index))
    result = add_to_index(encoder, args.index, corpus, column=column, extra_columns=args.extra_columns or [],
                          batch_size=args.batch_size, progress=progress_bar(f"embedding with {encoder.name}"))
    emit(result, args.json, _render_build)
    return 0


def _render_remove(result: dict[str, Any]) -> str:
    lines = [f"removed {result['removed']:,} rows from {result['index']} ({result['count']:,} left)"]
    if result["message"]:
        lines.append(f"  note: {result['message']}")
    if result["missing_ids"]:
        lines.append(f"  ids not in the index: {', '.join(map(str, result['missing_ids'][:20]))}")
    if result["missing_texts"]:
        lines.append(f"  texts not in the index: {'; '.join(result['missing_texts'][:20])}")
    return "\n".join(lines)


def cmd_index_remove(args: argparse.Namespace) -> int:
    from semsim.corpus_index import remove_from_index

    result = remove_from_index(args.index, ids=args.ids, texts=args.texts)
    emit(result, args.json, _render_remove)
    return 0


def _render_info(info: dict[str, Any]) -> str:
    encoder = info.get("encoder") or {}
    files = info.get("files") or {}
    size = sum(f.get("bytes", 0) for f in files.values())
    params = ", ".join(f"{k}={v}" for k, v in (info.get("params") or {}).items()) or "none"
    return "\n".join([
        f"index    {info['index']}",
        f"vectors  {info['count']:,} x {info['dim']}",
        f"kind     {info['kind']}" + (f" (using {info['chosen']})" if info.get("chosen") != info["kind"] else ""),
        f"why      {info.get('chosen_reason')}",
        f"params   {params}",
        f"model    {encoder.get('spec')} (fingerprint {encoder.get('fingerprint')})",
        f"columns  {', '.join(info.get('columns') or [])}",
        f"created  {info.get('created')}  updated {info.get('updated')}",
        f"size     {size / 1e6:.1f} MB on disk",
        *([f"memory   {per['memory']:,.0f} bytes/vector in RAM once loaded"
           + (f", {per['mapped']:,.0f} memory-mapped from disk (read as searched)" if per.get("mapped") else "")
           + f"; {per['disk']:,.0f} bytes/vector on disk"] if (per := info.get("bytes_per_vector")) else []),
        *([f"dim      {info['dim']} (the model's first {info['dim']} of {encoder['truncated_from']}, re-normalised)"]
          if encoder.get("truncated_from") else []),
        "versions " + ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items()),
    ] + (["removal  rebuilds the graph (HNSW cannot delete in place)"] if info.get("rebuild_on_remove") else []))


def cmd_index_info(args: argparse.Namespace) -> int:
    from semsim.corpus_index import index_info

    emit(index_info(args.index), args.json, _render_info)
    return 0


def register(commands: Any, evaluate: Any) -> None:
    index = commands.add_parser("index", help="build, update and inspect vector indexes")
    index_commands = index.add_subparsers(dest="index_command", required=True, parser_class=type(index))

    p = index_commands.add_parser("build", help="embed a corpus CSV into a new index folder")
    add_model_argument(p)
    p.add_argument("--corpus", required=True,
                   help="a CSV file, or a bundled corpus: job-titles (data/job_titles.csv, column title); "
                        "with --engine ray also a Parquet file or a folder of CSV or Parquet files")
    p.add_argument("--column", help="text column (default: text, or the bundled corpus's text column)")
    p.add_argument("--extra-columns", type=column_list,
                   help="comma-separated columns stored with each text (default: all, for a bundled corpus)")
    p.add_argument("--out", required=True, help="index folder to create")
    p.add_argument("--kind", choices=KIND_NAMES, default="auto",
                   help="auto: exact flat search up to 50,000 texts, HNSW above, ivf-pq (codes in RAM, exact "
                        "vectors memory-mapped for re-ranking) above 500,000 (default: %(default)s)")
    p.add_argument("--param", type=_param, action="append", metavar="KEY=VALUE",
                   help="index parameter, repeatable: M, ef_construction, ef_search (hnsw); nlist, nprobe "
                        "(ivf); m, nbits, refine, refine_factor (ivf-pq); threshold, approximate, "
                        "large_threshold (auto)")
    p.add_argument("--batch-size", type=positive_int, default=64,
                   help="texts per encoder call (with --engine ray: per actor batch and shard)")
    add_engine_arguments(p)
    p.add_argument("--shards", metavar="DIR",
                   help="with --engine ray: keep the vector shards in this empty folder (default: a hidden "
                        "folder beside --out, deleted after the build)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index folder")
    add_precision_argument(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_index_build)

    p = index_commands.add_parser("add", help="embed more texts into an existing index")
    p.add_argument("--index", required=True, help="index folder")
    p.add_argument("--corpus", required=True, help="CSV file (or a bundled corpus name)")
    p.add_argument("--column", help="text column (default: text)")
    p.add_argument("--extra-columns", type=column_list, help="comma-separated columns stored with each text")
    p.add_argument("--model", help="encoder spec (default: the one that built the index; others are refused)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    add_json_flag(p)
    p.set_defaults(func=cmd_index_add)

    p = index_commands.add_parser("remove", help="remove rows by id or by text")
    p.add_argument("--index", required=True, help="index folder")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", type=_id_list, help="comma-separated ids, e.g. 1,2,3")
    which.add_argument("--texts", nargs="+", help="exact texts to remove")
    add_json_flag(p)
    p.set_defaults(func=cmd_index_remove)

    p = index_commands.add_parser("info", help="what an index holds and how it was built")
    p.add_argument("--index", required=True, help="index folder")
    add_json_flag(p)
    p.set_defaults(func=cmd_index_info)
