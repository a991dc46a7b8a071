"""`semsim mine-negatives`: hard negatives for positive pairs, written as an mnrl training file."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from semsim.cli.arguments import CliError, add_model_argument, load_model, positive_int
from semsim.cli.output import add_json_flag, emit, progress_bar


def _number(kind: type, low: float, high: float | None = None) -> Any:
    def parse(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
        if number < low or (high is not None and number >= high):
            raise argparse.ArgumentTypeError(f"must be in [{low:g}, {'inf' if high is None else f'{high:g})'}"
                                             f"{']' if high is None else ''}, got {value}")
        return number
    return parse


def _corpus(source: str, column: str | None) -> list[str]:
    from semsim import data

    bundled = data.BUNDLED_DATASETS.get(source)
    if bundled is not None:
        if bundled.kind != "texts":
            raise CliError(f"{source} is not a bundled text corpus; choose one of "
                           f"{', '.join(n for n, d in data.BUNDLED_DATASETS.items() if d.kind == 'texts')}")
        return data.load_texts(data.bundled_path(source), column or bundled.text_column or "text")["text"].tolist()
    frame = data.read_csv(source)
    chosen = column or next((c for c in ("text", "title", "sentence") if c in frame.columns), None)
    if chosen is None or chosen not in frame.columns:
        raise CliError(f"{source}: no column {column or 'text'}; it has {', '.join(frame.columns)} "
                       f"(pick one with --corpus-column)")
    return data.load_texts(source, chosen)["text"].tolist()


def _pairs(source: str) -> Any:
    from semsim import data
    from semsim.training.inputs import resolve

    bundled = data.BUNDLED_DATASETS.get(source)
    if bundled is not None and bundled.kind != "positives":
        raise CliError(f"{source} is not a bundled set of positive pairs; give a CSV with text_a, text_b or "
                       f"one of {', '.join(n for n, d in data.BUNDLED_DATASETS.items() if d.kind == 'positives')}")
    return data.load_positive_pairs(resolve(source, "train") if bundled else source)


def write_csv_atomically(frame: Any, out: Path) -> None:
    """Write next to `out` and rename: a reader never sees half a file, a failed write leaves none."""
    if out.is_dir():
        raise CliError(f"{out} is a folder; give a file name for --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(handle)
    try:
        frame.to_csv(temporary, index=False, lineterminator="\n")
        os.replace(temporary, out)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _render(result: dict[str, Any]) -> str:
    return (f"wrote {result['out']}: {result['rows']:,} rows for {result['pairs']:,} pairs "
            f"({result['pairs_without_negative']:,} without a negative, dropped) from {result['corpus']:,} texts\n"
            f"  mean cosine: positive {result['mean_positive_score'] or float('nan'):.3f}, "
            f"negative {result['mean_negative_score'] or float('nan'):.3f}; {result['seconds']:.1f}s")


def cmd_mine_negatives(args: argparse.Namespace) -> int:
    from semsim.training.negatives import mine_hard_negatives

    pairs = _pairs(args.data)
    corpus = _corpus(args.corpus, args.corpus_column) if args.corpus else None
    if args.range_min >= args.range_max:
        raise CliError(f"--range-min {args.range_min} must be below --range-max {args.range_max}")
    encoder = load_model(args.model)
    mined, stats = mine_hard_negatives(
        encoder, pairs, corpus, range_min=args.range_min, range_max=args.range_max, margin=args.margin,
        relative_margin=args.relative_margin, num_negatives=args.num_negatives, sampling=args.sampling,
        seed=args.seed, progress=progress_bar(f"embedding with {encoder.name}", not args.json))
    if mined.empty:
        raise CliError("no pair kept a negative: widen --range-max, or lower --margin / --relative-margin")
    write_csv_atomically(mined, Path(args.out))
    emit({"out": args.out, "model": encoder.spec, "data": args.data, **stats}, args.json, _render)
    return 0


def register(commands: Any, evaluate: Any) -> None:
    p = commands.add_parser("mine-negatives", help="hard negatives for positive pairs (an mnrl training file)",
                            description=__doc__)
    add_model_argument(p)
    p.add_argument("--data", required=True, help="positive pairs: a CSV with text_a, text_b[, group_id] or a "
                                                 "bundled name such as job-title-groups (its train split)")
    p.add_argument("--out", required=True, help="the CSV to write: text_a, text_b, negative (+ other columns)")
    p.add_argument("--corpus", help="where negatives come from: a CSV (column text, title or --corpus-column) "
                                    "or a bundled corpus such as job-titles (default: every text_b of --data)")
    p.add_argument("--corpus-column", help="the corpus CSV's text column")
    p.add_argument("--range-min", type=_number(int, 0), default=0,
                   help="skip this many nearest non-positive candidates (default: 0)")
    p.add_argument("--range-max", type=positive_int, default=50,
                   help="consider the nearest this many non-positive candidates (default: 50)")
    margins = p.add_mutually_exclusive_group()
    margins.add_argument("--margin", type=float, default=None,
                         help="a negative scores at most positive - MARGIN against the anchor (e.g. 0.1)")
    margins.add_argument("--relative-margin", type=_number(float, 0, 1), default=None,
                         help="a negative scores at most positive x (1 - R) against the anchor (e.g. 0.05)")
    p.add_argument("--num-negatives", type=positive_int, default=1, help="negatives per pair, one row each "
                                                                        "(default: 1)")
    p.add_argument("--sampling", choices=["top", "random"], default="top",
                   help="take the nearest candidates, or draw among them with --seed (default: top)")
    p.add_argument("--seed", type=_number(int, 0), default=42, help="seed of --sampling random (default: 42)")
    add_json_flag(p)
    p.set_defaults(func=cmd_mine_negatives)
