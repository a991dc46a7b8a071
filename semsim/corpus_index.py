"""Build and update persistent vector indexes over text corpora with a semsim encoder (search: semsim.search)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from index import IndexStore, VectorIndexError, open_for_update, read_meta
from index.storage import RESERVED_COLUMNS, is_replaceable
from semsim.data import CsvLayout, DatasetError, iter_csv, scan_csv
from semsim.search import DEFAULT_BATCH_SIZE, forget_loaded_index

ProgressFn = Callable[[int, int], None]

# Rows read from a CSV per step: large enough for efficient encoder batches, small enough that a
# corpus of millions never sits in memory as a DataFrame (only its vectors and unique texts do).
READ_CHUNK_ROWS = 4096
# Extra columns may not take these names: the index refuses rank and score (they name search-result
# fields), and build_index writes id and text itself.
RESERVED_EXTRA_COLUMNS = (*RESERVED_COLUMNS, "id", "text")

Corpus = str | os.PathLike | CsvLayout | pd.DataFrame | Sequence[str]


# -- reading a corpus in chunks ---------------------------------------------------------------
def check_corpus_csv(corpus: str | os.PathLike | CsvLayout, columns: Sequence[str]) -> CsvLayout:
    """A corpus CSV checked (UTF-8, delimiter, every row's fields, `columns` present, not empty) in one
    streaming pass, before a model is loaded or anything encoded; pass the result on as the corpus."""
    if not isinstance(corpus, CsvLayout):
        path = Path(corpus)
        if not path.is_file():
            raise VectorIndexError(f"corpus file {path} does not exist")
        try:
            corpus = scan_csv(path)
        except DatasetError as exc:  # one error type from this module, the reader's message kept
            raise VectorIndexError(str(exc)) from None
    _check_columns(corpus.columns, columns, str(corpus.path))
    return corpus


def _check_columns(available: Sequence[str], wanted: Sequence[str], source: str) -> None:
    missing = [c for c in wanted if c not in available]
    if missing:
        raise VectorIndexError(f"{source} has no column {missing[0]!r}; its columns are: "
                               f"{', '.join(map(str, available)) or '(none)'}")


def iter_corpus(corpus: Corpus, column: str = "text", extra_columns: Sequence[str] = (),
                chunk_rows: int = READ_CHUNK_ROWS) -> tuple[int, Iterator[pd.DataFrame]]:
    """(row count, chunks of the corpus with `column` and `extra_columns`).

    A CSV path is checked whole first (check_corpus_csv), then read `chunk_rows` at a time with every
    cell as a string and nothing turned into NaN (a job title "NA" stays a title); a DataFrame is
    sliced; a list of strings becomes `column`.
    """
    wanted = [column, *[c for c in extra_columns if c != column]]
    if isinstance(corpus, str | os.PathLike | CsvLayout):
        layout = check_corpus_csv(corpus, wanted)
        return layout.rows, iter_csv(layout, wanted, chunk_rows)
    if isinstance(corpus, pd.DataFrame):
        _check_columns(list(corpus.columns), wanted, "the corpus DataFrame")
        frame = corpus[wanted]
        return len(frame), (frame.iloc[start:start + chunk_rows] for start in range(0, len(frame), chunk_rows))
    if isinstance(corpus, Sequence) and not isinstance(corpus, bytes):
        if extra_columns:
            raise VectorIndexError("extra columns need a DataFrame or a CSV corpus, not a list of texts")
        frame = pd.DataFrame({column: list(corpus)})
        return len(frame), (frame.iloc[start:start + chunk_rows] for start in range(0, len(frame), chunk_rows))
    raise VectorIndexError(f"a corpus is a CSV path, a DataFrame or a list of texts, not {type(corpus).__name__}")


def clean_chunk(chunk: pd.DataFrame, column: str, seen: set[str]) -> tuple[pd.DataFrame, int, int]:
    """Strip texts, drop empty ones and ones already `seen` (updated in place).

    Returns the kept rows (text in a `text` column, extra columns kept), the empty count and the
    duplicate count.
    """
    texts = [t.strip() if isinstance(t, str) else "" for t in chunk[column].tolist()]
    keep, empty, duplicates = [], 0, 0
    for text in texts:
        if not text:
            empty += 1
            keep.append(False)
        elif text in seen:
            duplicates += 1
            keep.append(False)
        else:
            seen.add(text)
            keep.append(True)
    rows = chunk.drop(columns=[column]).assign(text=texts)[keep]
    extras = [c for c in rows.columns if c != "text"]
    return rows[["text", *extras]].reset_index(drop=True), empty, duplicates


def _encoder_summary(encoder: Any) -> dict[str, Any]:
    summary = {"spec": getattr(encoder, "spec", None), "name": getattr(encoder, "name", None),
               "dim": int(encoder.dim), "fingerprint": getattr(encoder, "fingerprint", None),
               "precision": getattr(encoder, "precision", None) or "float32"}
    if getattr(encoder, "truncated_from", None):  # --dim: the index records how queries must be cut
        summary["truncated_from"] = int(encoder.truncated_from)
    return summary


def _add_stream(store: IndexStore, encoder: Any, corpus: Corpus, column: str, extra_columns: Sequence[str],
                batch_size: int, progress: ProgressFn | None, chunk_rows: int) -> dict[str, int]:
    """Encode and add a corpus chunk by chunk, skipping empty texts and texts already in `store`."""
    total, chunks = iter_corpus(corpus, column, extra_columns, chunk_rows)
    seen = set(store.texts())
    counts = {"rows_read": 0, "added": 0, "empty_dropped": 0, "duplicates_dropped": 0}
    for chunk in chunks:
        rows, empty, duplicates = clean_chunk(chunk, column, seen)
        counts["empty_dropped"] += empty
        counts["duplicates_dropped"] += duplicates
        before = counts["rows_read"] + empty + duplicates
        total = max(total, counts["rows_read"] + len(chunk))  # the CSV estimate can fall short
        if len(rows):
            on_batch = None
            if progress is not None:
                def on_batch(done: int, _: int, before: int = before, total: int = total) -> None:
                    progress(min(before + done, total), total)
            vectors = encoder.encode(rows["text"].tolist(), batch_size=batch_size, progress=on_batch)
            store.add(vectors, rows)
            counts["added"] += len(rows)
        counts["rows_read"] += len(chunk)
        if progress is not None:
            progress(min(counts["rows_read"], total), total)
    if progress is not None:
        progress(counts["rows_read"], counts["rows_read"])
    return counts


def _source_name(corpus: Corpus) -> str:
    if isinstance(corpus, CsvLayout):
        return str(corpus.path)
    if isinstance(corpus, str | os.PathLike):
        return str(corpus)
    return "a DataFrame" if isinstance(corpus, pd.DataFrame) else "a list of texts"


# -- the public operations ---------------------------------------------------------------------
def build_index(encoder: Any, corpus: Corpus, column: str, out_dir: str | os.PathLike, kind: str = "auto",
                batch_size: int = DEFAULT_BATCH_SIZE, progress: ProgressFn | None = None,
                extra_columns: Sequence[str] | None = None, index_params: dict[str, Any] | None = None,
                overwrite: bool = False, chunk_rows: int = READ_CHUNK_ROWS) -> dict[str, Any]:
    """Embed a corpus (CSV path, DataFrame or list of texts) into a new index folder.

    Texts are stripped; empty ones and repeats are skipped and counted. The CSV is read in chunks, each
    encoded and added before the next is read. The folder is written atomically: an existing index at
    `out_dir` (replaced only with overwrite=True) stays intact if anything fails.
    Returns a summary: count, duplicates_dropped, empty_dropped, kind, chosen_reason, seconds, ...
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise VectorIndexError(f"{out_dir} already exists; choose another folder or overwrite it")
    if not is_replaceable(out_dir):  # found out now, not after encoding the whole corpus
        raise VectorIndexError(f"{out_dir} exists and is not an index folder; refusing to replace it")
    reserved = set(RESERVED_EXTRA_COLUMNS) & set(extra_columns or [])
    if reserved:
        raise VectorIndexError(f"extra columns cannot be named {sorted(reserved)}: the index uses those names")
    store = IndexStore.create(int(encoder.dim), kind, encoder=_encoder_summary(encoder), **(index_params or {}))
    counts = _add_stream(store, encoder, corpus, column, list(extra_columns or []), batch_size, progress,
                         chunk_rows)
    if not counts["added"]:
        raise VectorIndexError(f"no texts to index in column {column!r} of {_source_name(corpus)} "
                               f"({counts['empty_dropped']} empty, {counts['duplicates_dropped']} duplicates)")
    store.save(out_dir, extra={"source": _source_name(corpus), "column": column,
                               "extra_columns": list(extra_columns or [])})
    forget_loaded_index(out_dir)
    description = store.index.describe()
    return {"out_dir": str(out_dir), "count": len(store), **counts, "kind": store.kind,
            "chosen": description.get("chosen", store.kind), "chosen_reason": description["chosen_reason"],
            "params": description["params"], "model": getattr(encoder, "spec", None), "dim": store.dim,
            "seconds": round(time.perf_counter() - started, 3)}


def add_to_index(encoder: Any, index_dir: str | os.PathLike, corpus: Corpus, column: str = "text",
                 extra_columns: Sequence[str] | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: ProgressFn | None = None, chunk_rows: int = READ_CHUNK_ROWS) -> dict[str, Any]:
    """Add texts to an existing index (refusing an encoder other than the one that built it).

    Texts already in the index, empty texts and repeats are skipped and counted. The index's writer
    lock is held from reading it to saving it, so a concurrent add or remove waits instead of losing
    this one's rows (or this one waits for it, up to index.atomic.WRITER_LOCK_TIMEOUT_S).
    """
    started = time.perf_counter()
    with open_for_update(index_dir, expected_encoder=encoder) as store:
        counts = _add_stream(store, encoder, corpus, column, list(extra_columns or []), batch_size, progress,
                             chunk_rows)
        if counts["added"]:
            store.save(index_dir)
    if counts["added"]:
        forget_loaded_index(index_dir)
    description = store.index.describe()
    return {"index": str(index_dir), "count": len(store), **counts, "kind": store.kind,
            "chosen_reason": description["chosen_reason"], "seconds": round(time.perf_counter() - started, 3)}


def remove_from_index(index_dir: str | os.PathLike, ids: Sequence[int] | None = None,
                      texts: Sequence[str] | None = None) -> dict[str, Any]:
    """Remove rows by id and/or by exact text (after stripping). No encoder needed.

    HNSW cannot delete in place: the summary's `rebuilt` / `message` say when the graph was rebuilt.
    """
    if not ids and not texts:
        raise VectorIndexError("nothing to remove: give ids or texts")
    with open_for_update(index_dir) as store:  # held to the save, as in add_to_index
        wanted = [int(i) for i in ids or []]
        missing_texts: list[str] = []
        if texts:
            text_ids, missing_texts = store.ids_for_texts(texts)
            wanted.extend(int(i) for i in text_ids)
        result = store.remove(sorted(set(wanted)))
        if result.removed:
            store.save(index_dir)
    if result.removed:
        forget_loaded_index(index_dir)
    return {"index": str(index_dir), **result.as_dict(), "missing_ids": result.missing,
            "missing_texts": missing_texts, "count": len(store)}


def index_info(index_dir: str | os.PathLike) -> dict[str, Any]:
    """What an index folder holds, from meta.json alone (fast even for a large index)."""
    index_dir = Path(index_dir)
    meta = read_meta(index_dir)
    info = meta.get("index", {})
    count = max(1, int(meta["count"]))
    memory = info.get("memory") or {}
    disk = sum(f.get("bytes", 0) for f in (meta.get("files") or {}).values())
    per_vector = {"memory": memory.get("resident", 0) / count, "mapped": memory.get("mapped", 0) / count,
                  "disk": disk / count} if memory else None
    return {"index": str(index_dir), "count": meta["count"], "dim": meta["dim"], "kind": info.get("kind"),
            "bytes_per_vector": per_vector,
            "chosen": info.get("chosen", info.get("kind")), "chosen_reason": info.get("chosen_reason"),
            "params": info.get("params"), "rebuild_on_remove": info.get("rebuild_on_remove"),
            "encoder": meta.get("encoder"), "columns": meta.get("columns"), "created": meta.get("created"),
            "updated": meta.get("updated"), "format_version": meta.get("format_version"),
            "versions": meta.get("versions"), "files": meta.get("files"), "source": meta.get("extra", {})}
