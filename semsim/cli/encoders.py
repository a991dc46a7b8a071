"""Commands that use an encoder directly: models (list them), embed (a CSV column), similarity (texts)."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from semsim.cli.arguments import (
    CliError,
    add_model_argument,
    add_precision_argument,
    load_model,
    positive_int,
)
from semsim.cli.output import add_json_flag, emit, format_table, progress_bar


# -- models -------------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from semsim.encoders import available_models

    rows = [{"spec": m.spec, "kind": m.kind, "description": m.description} for m in available_models()]
    emit(rows, args.json, lambda r: format_table(r, ["spec", "kind", "description"]))
    return 0


# -- embed --------------------------------------------------------------------------------------
def save_npy_atomically(path: Path, array: np.ndarray) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _embed_on_ray(args: argparse.Namespace, out: Path) -> int:
    """--engine ray: a .npy file in row order, or (any other --out) a folder of vector shards with their ids."""
    from semsim.cli.index import ray_options, say_progress
    from semsim.ray_engine import EngineError, embed_corpus_on_ray, embed_to_npy_on_ray

    try:
        if out.suffix == ".npy":
            result = embed_to_npy_on_ray(args.model, args.input, args.column, out, ray_options(args), dim=args.dim,
                                         progress=say_progress(args))
        else:
            summary = embed_corpus_on_ray(args.model, args.input, args.column, out, ray_options(args), dim=args.dim,
                                          progress=say_progress(args))
            result = {"model": args.model, "rows": summary["rows"], "dim": summary["dim"], "out": str(out),
                      "shards": len(summary["shards"]), "engine": "ray", "actors": summary["actors"],
                      "seconds": summary["seconds"]}
    except EngineError as exc:
        raise CliError(str(exc)) from None
    emit(result, args.json, lambda r: f"wrote {r['rows']} x {r['dim']} vectors to {r['out']}"
         + (f" ({r['shards']} Parquet shards with ids; manifest.json)" if "shards" in r else "")
         + f" on {r['actors']} Ray actor(s) in {r['seconds']:.1f} s")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from semsim.cli.index import check_local_engine, model_with_dim
    from semsim.data import read_csv
    from semsim.paths import check_destination

    # Everything that can be refused is refused before the model loads and anything is embedded.
    out = Path(args.out)
    check_local_engine(args)
    if args.engine == "ray":
        if out.exists() and not args.overwrite:
            raise CliError(f"{out} exists; pass --overwrite to replace it")
        if out.suffix != ".npy" and out.exists():
            raise CliError(f"{out} exists; shards are written into a new folder")
        return _embed_on_ray(args, out)
    if out.suffix != ".npy":
        raise CliError(f"--out must end in .npy, got {out}")
    if out.is_dir():
        raise CliError(f"--out {out} is a folder; give the path of a .npy file")
    if out.exists() and not args.overwrite:
        raise CliError(f"{out} exists; pass --overwrite to replace it")
    check_destination(out, "the vectors to")
    frame = read_csv(args.input, [args.column])
    texts = frame[args.column].str.strip()
    empty = texts.eq("")
    if empty.any():
        # read_csv keeps each record's position in the index, so index + 2 is the spreadsheet row.
        rows = ", ".join(str(int(i) + 2) for i in frame.index[empty][:10])
        raise CliError(f"{args.input}: column {args.column!r} is empty in row(s) {rows} (header is row 1); "
                       f"fill or remove those rows so each vector matches a row")
    encoder = model_with_dim(args.model, args.dim, args.precision)
    vectors = encoder.encode(texts.tolist(), batch_size=args.batch_size,
                             progress=progress_bar(f"embedding with {encoder.name}"))
    save_npy_atomically(out, vectors)
    emit({"model": encoder.spec, "rows": int(vectors.shape[0]), "dim": int(vectors.shape[1]), "out": str(out)},
         args.json, lambda r: f"wrote {r['rows']} x {r['dim']} vectors to {r['out']}")
    return 0


# -- similarity ---------------------------------------------------------------------------------
def render_matrix(texts: list[str], matrix: np.ndarray) -> str:
    labels = [t if len(t) <= 28 else t[:25] + "..." for t in texts]
    width = max(len(label) for label in labels)
    header = " " * (width + 2) + "  ".join(f"{i + 1:>6}" for i in range(len(texts)))
    lines = [header]
    for i, label in enumerate(labels):
        lines.append(f"{i + 1:>2} {label.ljust(width)}" + "  ".join(f"{v:6.3f}" for v in matrix[i]))
    return "\n".join(lines)


def cmd_similarity(args: argparse.Namespace) -> int:
    texts = [t for t in args.texts]
    if len(texts) < 2:
        raise CliError("give at least two texts to compare")
    if any(not t.strip() for t in texts):
        raise CliError("texts must not be empty")
    encoder = load_model(args.model)
    matrix = encoder.similarity(texts)
    emit({"model": encoder.spec, "texts": texts, "matrix": matrix.round(6)}, args.json,
         lambda r: render_matrix(texts, matrix))
    return 0


# -- export-onnx -----------------------------------------------------------------------------------
def cmd_export_onnx(args: argparse.Namespace) -> int:
    from semsim.encoders import EncoderError
    from semsim.encoders.serving import export_serving

    try:
        meta = export_serving(args.model, args.precision, args.cache_dir)
    except EncoderError as exc:
        raise CliError(str(exc)) from None
    parity = meta.get("parity") or {}
    result = {"model": args.model, "precision": meta["precision"], "folder": meta["folder"], "dim": meta["dim"],
              "min_cosine": parity.get("min_cosine"), "parity_texts": parity.get("texts")}
    emit(result, args.json, lambda r: f"{r['model']} at {r['precision']} is served by ONNX Runtime from "
         f"{r['folder']} (minimum cosine to the Keras model over {r['parity_texts']} texts: {r['min_cosine']:.6f})")
    return 0


def register(commands: Any, evaluate: Any) -> None:
    p = commands.add_parser("models", help="list the encoders that can be loaded here")
    add_json_flag(p)
    p.set_defaults(func=cmd_models)

    p = commands.add_parser("embed", help="embed a CSV column into a .npy file (or, on Ray, a folder of shards)")
    add_model_argument(p)
    p.add_argument("--input", required=True,
                   help="CSV file (with --engine ray also a Parquet file or a folder of CSV or Parquet files)")
    p.add_argument("--column", default="text", help="text column (default: %(default)s)")
    p.add_argument("--out", required=True, help="output .npy file; with --engine ray, any other path is a new "
                                                "folder of Parquet shards (id, text, vector) and manifest.json")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--overwrite", action="store_true")
    add_precision_argument(p)
    from semsim.cli.index import add_engine_arguments

    add_engine_arguments(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_embed)

    p = commands.add_parser("similarity", help="pairwise cosine similarity of texts")
    add_model_argument(p)
    p.add_argument("texts", nargs="+", help="two or more texts")
    add_json_flag(p)
    p.set_defaults(func=cmd_similarity)

    p = commands.add_parser("export-onnx", help="make a model's ONNX Runtime serving graph (the app serves models "
                                                "with it, without TensorFlow); made once, checked against Keras")
    add_model_argument(p)
    p.add_argument("--precision", choices=("float32", "int8"), default="float32",
                   help="float32, or int8 (the calibrated int8 graph of --precision int8) (default: %(default)s)")
    p.add_argument("--cache-dir", default=None,
                   help="where graphs of bundled or read-only models go (default: SEMSIM_CACHE_DIR or "
                        "~/.cache/semsim; our own model folders keep theirs inside, in serving/)")
    add_json_flag(p)
    p.set_defaults(func=cmd_export_onnx)
