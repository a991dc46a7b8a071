"""Index folders on disk (index.faiss, rows.parquet, meta.json): published atomically, read whole, checked."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from index.atomic import WRITER_LOCK_TIMEOUT_S, atomic_folder, recover_folder, writer_lock
from index.base import RemoveResult, VectorIndex, prepare_ids
from index.errors import VectorIndexError
from index.kinds import KINDS, create_index
from index.names import INDEX_FILE, META_FILE, ROWS_FILE

FORMAT_VERSION = 1
# Checksums are verified on load for files up to this size (CRC32 runs at about 1 GB/s; a 1M x 384
# index is 1.5 GB, and its truncation is still caught by the size check).
VERIFY_CHECKSUM_MAX_BYTES = 256 * 1024 * 1024
RESERVED_COLUMNS = ("rank", "score")
# A reader retries when a writer swaps the folder while it opens the files; more swaps than this in
# one open means something rewrites the index in a loop.
OPEN_ATTEMPTS = 5

T = TypeVar("T")


def is_replaceable(folder: str | os.PathLike) -> bool:
    """True if saving to `folder` may replace what is there: nothing, an empty folder, or an index."""
    folder = Path(folder)
    return not folder.exists() or (folder.is_dir() and ((folder / META_FILE).is_file() or not any(folder.iterdir())))


@contextlib.contextmanager
def _publishing(folder: Path, timeout: float) -> Iterator[Path]:
    """A folder to write a new version into, published as `folder` when the block ends.

    Only an index folder or an empty folder is ever replaced (checked under the writer lock), so a
    mistyped path cannot wipe unrelated files.
    """
    with writer_lock(folder, timeout):
        if not is_replaceable(folder):
            raise VectorIndexError(f"{folder} exists and is not an index folder; refusing to replace it")
        with atomic_folder(folder, timeout) as tmp:
            yield tmp


# -- writing ----------------------------------------------------------------------------------
def _crc32(handle: IO[bytes]) -> int:
    crc = 0
    handle.seek(0)
    while chunk := handle.read(1 << 22):
        crc = zlib.crc32(chunk, crc)
    handle.seek(0)
    return crc


def _file_record(path: Path) -> dict[str, int]:
    with open(path, "rb") as handle:
        return {"bytes": os.fstat(handle.fileno()).st_size, "crc32": _crc32(handle)}


def library_versions() -> dict[str, str]:
    return {"faiss": faiss.__version__, "numpy": np.__version__, "pyarrow": pa.__version__,
            "python": platform.python_version()}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_faiss(index: VectorIndex, folder: Path) -> None:
    faiss.write_index(index.to_faiss(), str(folder / INDEX_FILE))
    index.write_extra(folder)  # ivf-pq's refine vectors and position ids


def write_rows(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path)


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    # Every file of the new version (index.faiss, rows.parquet and any a kind adds) is sized and checksummed.
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != META_FILE)
    meta = {**meta, "files": {name: _file_record(folder / name) for name in names}}
    with open(folder / META_FILE, "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=2, ensure_ascii=False, default=_json_default)
        handle.write("\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _base_meta(index: VectorIndex, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    previous = previous or {}
    # version_id names this save: readers and cached stores compare it to tell versions apart.
    return {"format_version": FORMAT_VERSION, "version_id": uuid.uuid4().hex,
            "created": previous.get("created") or _now(), "updated": _now(), "dim": index.dim,
            "count": len(index), "index": index.describe(), "versions": library_versions()}


# -- reading one version ----------------------------------------------------------------------
def _stamp(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _parse_meta(raw: bytes, folder: Path) -> dict[str, Any]:
    """meta.json checked: valid JSON, a format this code understands, the keys a reader needs."""
    path = folder / META_FILE
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VectorIndexError(f"{path} is not valid JSON ({exc}); rebuild the index") from exc
    if not isinstance(meta, dict):
        raise VectorIndexError(f"{path} is not a JSON object; rebuild the index")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise VectorIndexError(f"{path} has no valid format_version; rebuild the index")
    if version > FORMAT_VERSION:
        raise VectorIndexError(f"the index at {folder} was built by a newer semsim (index format {version}, "
                               f"this version reads up to {FORMAT_VERSION}): upgrade semsim to open it")
    for key in ("dim", "count", "index"):
        if key not in meta:
            raise VectorIndexError(f"{path} lacks {key!r}; rebuild the index")
    return meta


class _Swapped(Exception):
    """The folder was replaced while its files were being opened: read the new version instead."""


class _FolderVersion:
    """One published version of an index folder: meta.json and handles on its other files.

    Every file is opened through one handle on the folder itself, so all of them come from the same
    directory even if a writer swaps a new version in meanwhile (files already open stay readable after
    the old folder is deleted). A file missing because the old folder is being deleted raises _Swapped;
    one missing from the folder still in place is reported as an incomplete index.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self._handles: list[IO[bytes]] = []
        try:
            self._dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            raise VectorIndexError(f"no index at {folder}: the folder does not exist") from None
        except NotADirectoryError:
            raise VectorIndexError(f"{folder} is a file; an index is a folder holding {META_FILE}, "
                                   f"{INDEX_FILE} and {ROWS_FILE}") from None
        try:
            handle = self.open(META_FILE)
            if handle is None:
                raise VectorIndexError(f"{folder} is not an index folder: {META_FILE} is missing")
            self.stamp = _stamp(os.fstat(handle.fileno()))
            self.meta = _parse_meta(handle.read(), folder)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> _FolderVersion:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        self._handles = []
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1

    def _swapped(self) -> bool:
        try:
            return not os.path.samestat(os.fstat(self._dir_fd), os.stat(self.folder))
        except OSError:
            return True

    def open(self, name: str) -> IO[bytes] | None:
        """A binary handle on `name` in this version, or None if this version has no such file."""
        try:
            handle = open(name, "rb", opener=lambda path, flags: os.open(path, flags, dir_fd=self._dir_fd))
        except FileNotFoundError:
            if self._swapped():
                raise _Swapped from None
            return None
        self._handles.append(handle)
        return handle

    def require(self, name: str) -> IO[bytes]:
        handle = self.open(name)
        if handle is None:
            raise VectorIndexError(f"the index at {self.folder} is incomplete: {name} is missing; rebuild it")
        return handle


def _read_version(folder: Path, read: Callable[[_FolderVersion], T]) -> T:
    """`read` applied to one consistent version of `folder`, retried if a writer swaps it meanwhile."""
    recover_folder(folder)
    for _ in range(OPEN_ATTEMPTS):
        try:
            with _FolderVersion(folder) as version:
                return read(version)
        except _Swapped:
            continue
    raise VectorIndexError(f"the index at {folder} was replaced {OPEN_ATTEMPTS} times while it was being "
                           f"opened; try again")


def read_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """Read and check meta.json: present, valid JSON, a format this code understands."""
    return _read_version(Path(folder), lambda version: version.meta)


def _check_file(handle: IO[bytes], path: Path, name: str, meta: Mapping[str, Any],
                verify_checksum: bool | None) -> None:
    record = (meta.get("files") or {}).get(name) or {}
    size = os.fstat(handle.fileno()).st_size
    if "bytes" in record and size != record["bytes"]:
        raise VectorIndexError(f"{path} is truncated or was changed: {size} bytes, {record['bytes']} "
                               f"expected; rebuild the index")
    check = verify_checksum if verify_checksum is not None else size <= VERIFY_CHECKSUM_MAX_BYTES
    if check and "crc32" in record and _crc32(handle) != record["crc32"]:
        raise VectorIndexError(f"{path} is corrupt (checksum mismatch); rebuild the index")


def _mmap_source(handle: IO[bytes]) -> str:
    """A path faiss can memory-map that names the very file `handle` has open (this version's, even if
    a writer has swapped the folder since): /proc/self/fd on Linux."""
    path = f"/proc/self/fd/{handle.fileno()}"
    if not os.path.exists(path):
        raise VectorIndexError("memory-mapped opening needs /proc/self/fd (Linux); open the index without mmap")
    return path


def _read_faiss(version: _FolderVersion, handle: IO[bytes], verify_checksum: bool | None,
                mmap: bool = False) -> VectorIndex:
    folder, meta = version.folder, version.meta
    path = folder / INDEX_FILE
    _check_file(handle, path, INDEX_FILE, meta, verify_checksum)
    if os.fstat(handle.fileno()).st_size == 0:
        raise VectorIndexError(f"{path} is empty; rebuild the index")
    try:
        if mmap:
            # The codes (flat vectors, inverted lists, HNSW storage) stay in the file; faiss aborts
            # the process on a write to them, so the index is marked read-only below.
            faiss_index = faiss.read_index(_mmap_source(handle), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        else:
            faiss_index = faiss.read_index(faiss.PyCallbackIOReader(handle.read))
    except (RuntimeError, MemoryError) as exc:  # faiss reports short reads and bad headers this way
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VectorIndexError(f"{path} is corrupt or truncated and cannot be read ({reason}); "
                               f"rebuild the index") from exc
    info = meta["index"]
    kind = info.get("kind") if isinstance(info, dict) else None
    if kind not in KINDS:
        raise VectorIndexError(f"{folder / META_FILE} names an unknown index kind {kind!r}")
    if faiss_index.d != meta["dim"]:
        raise VectorIndexError(f"{path} holds {faiss_index.d}-d vectors but {META_FILE} says {meta['dim']}")
    cls = KINDS[kind][0]
    extra = cls.extra_files(info)
    if extra:
        files = {}
        for name in extra:
            files[name] = version.require(name)
            _check_file(files[name], folder / name, name, meta, verify_checksum)
        index = cls.from_faiss(faiss_index, info, files=files)
    else:
        index = cls.from_faiss(faiss_index, info)
    if mmap:
        index.read_only = "it was opened memory-mapped; open it without mmap to change it"
    if len(index) != meta["count"]:
        raise VectorIndexError(f"{path} holds {len(index)} vectors but {META_FILE} says {meta['count']}; "
                               f"rebuild the index")
    return index


def save_vector_index(index: VectorIndex, folder: str | os.PathLike,
                      timeout: float = WRITER_LOCK_TIMEOUT_S) -> None:
    """Write a bare vector index (index.faiss + meta.json, no rows) atomically, under the writer lock."""
    with _publishing(Path(folder), timeout) as tmp:
        write_faiss(index, tmp)
        write_meta(tmp, _base_meta(index))


def load_vector_index(folder: str | os.PathLike, verify_checksum: bool | None = None,
                      mmap: bool = False) -> VectorIndex:
    """Read the vectors of an index folder (with or without rows) as a VectorIndex.

    mmap=True maps the faiss structure from the file instead of reading it into RAM (faiss's
    IO_FLAG_MMAP_IFC: flat codes, inverted lists, HNSW storage); such an index is read-only. An
    ivf-pq index's refine vectors are always mapped."""
    return _read_version(Path(folder), lambda version: _read_faiss(version, version.require(INDEX_FILE),
                                                                   verify_checksum, mmap))


# -- encoders (duck-typed: this package never imports semsim) ----------------------------------
def encoder_info(encoder: Any) -> dict[str, Any] | None:
    """spec, name, fingerprint and dim from an encoder object or a mapping (None stays None)."""
    if encoder is None:
        return None
    get = encoder.get if isinstance(encoder, Mapping) else lambda key: getattr(encoder, key, None)
    info = {key: get(key) for key in ("spec", "name", "fingerprint", "dim")}
    if get("precision"):  # float32, bfloat16 or int8: what the encoder computed in (same vector space)
        info["precision"] = str(get("precision"))
    if info["dim"] is not None:
        info["dim"] = int(info["dim"])
    if get("truncated_from"):  # vectors cut to their first `dim` dimensions (Matryoshka): queries must be too
        info["truncated_from"] = int(get("truncated_from"))
    return info



def _describe_encoder(info: Mapping[str, Any]) -> str:
    fingerprint = info.get("fingerprint")
    details = ", ".join(filter(None, [f"fingerprint {str(fingerprint)[:64]}" if fingerprint else "",
                                      f"{info['dim']}-d" if info.get("dim") else "",
                                      f"cut from {info['truncated_from']}-d" if info.get("truncated_from") else ""]))
    return f"{info.get('spec') or info.get('name') or 'an unnamed model'!r}" + (f" ({details})" if details else "")


def encoder_mismatch(built_with: Mapping[str, Any] | None, asked_for: Any, dim: int) -> str | None:
    """Why `asked_for` cannot be used with an index built with `built_with`, or None if it can."""
    asked = encoder_info(asked_for)
    if asked is None:
        return None
    if asked.get("dim") is not None and asked["dim"] != dim:
        built = _describe_encoder(built_with) if built_with else f"a model giving {dim}-d vectors"
        return f"it was built with {built} but {_describe_encoder(asked)} was asked for (the vector sizes differ)"
    if not built_with:
        return None
    built_fp, asked_fp = built_with.get("fingerprint"), asked.get("fingerprint")
    if built_fp and asked_fp:
        same = built_fp == asked_fp
    else:
        same = built_with.get("spec") == asked.get("spec")
    if same:
        return None
    return f"it was built with {_describe_encoder(built_with)} but {_describe_encoder(asked)} was asked for"


def precision_mismatch(built_with: Mapping[str, Any] | None, asked_for: Any) -> str | None:
    """A warning when the query encoder runs at another precision than the one that built the index.

    Not a refusal: the model and so the vector space are the same, only the rounding differs. Indexes
    from before precisions were recorded count as float32."""
    asked = encoder_info(asked_for)
    if not built_with or asked is None:
        return None
    built_p, asked_p = built_with.get("precision") or "float32", asked.get("precision") or "float32"
    if built_p == asked_p:
        return None
    return (f"the index was built at {built_p} precision and the query is encoded at {asked_p}: the vectors "
            f"are comparable (same model), so the search runs, but scores differ slightly from a "
            f"same-precision search; use --precision {built_p} (or rebuild the index at {asked_p}) to match")


# -- the store: vectors + rows + meta ---------------------------------------------------------
def _as_table(rows: Any) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a pandas DataFrame
        return pa.Table.from_pandas(rows, preserve_index=False)
    if isinstance(rows, Mapping):
        return pa.table(dict(rows))
    return pa.Table.from_pylist(list(rows))


class IndexStore:
    """A vector index paired with its rows (id, text, extra columns) and meta.json.

    `search(query_vectors, k)` returns, per query, a list of dicts: rank (1-based), id, score, text and
    any extra columns. Rows are kept as Arrow tables (compact strings; lookups take only the hit rows).
    """

    def __init__(self, index: VectorIndex, rows: pa.Table | None = None, encoder: Any = None,
                 meta: Mapping[str, Any] | None = None, folder: str | os.PathLike | None = None):
        self.index = index
        self.encoder = encoder_info(encoder)
        if self.encoder and self.encoder.get("dim") not in (None, index.dim):
            raise VectorIndexError(f"the encoder gives {self.encoder['dim']}-d vectors, the index holds {index.dim}-d")
        self.meta: dict[str, Any] = dict(meta or {})
        self.folder = Path(folder) if folder is not None else None
        self._chunks: list[pa.Table] = []
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.RLock()
        if rows is not None and rows.num_rows:
            self._chunks.append(rows)
        self._next_id = int(self.meta.get("next_id", 0))
        if len(self.row_ids()):
            self._next_id = max(self._next_id, int(self.row_ids().max()) + 1)
        # The version on disk this store was read from or last saved as (None: never on disk).
        self._source: _Source | None = None

    @classmethod
    def create(cls, dim: int, kind: str = "auto", encoder: Any = None, **params: Any) -> IndexStore:
        return cls(create_index(kind, dim, **params), encoder=encoder)

    # -- facts ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    @property
    def dim(self) -> int:
        return self.index.dim

    @property
    def kind(self) -> str:
        return self.index.kind

    def rows(self) -> pa.Table:
        """All rows as one Arrow table (id, text, extra columns), in insertion order."""
        with self._lock:
            if len(self._chunks) > 1:
                self._chunks = [pa.concat_tables(self._chunks, promote_options="permissive")]
            if not self._chunks:
                return pa.table({"id": pa.array([], pa.int64()), "text": pa.array([], pa.string())})
            return self._chunks[0]

    def row_ids(self) -> np.ndarray:
        return self.rows().column("id").to_numpy().astype(np.int64)

    def texts(self) -> list[str]:
        return self.rows().column("text").to_pylist()

    def check_encoder(self, expected: Any) -> None:
        """Refuse an encoder other than the one that built the index."""
        why = encoder_mismatch(self.encoder, expected, self.dim)
        if why:
            where = f"the index at {self.folder}" if self.folder else "this index"
            raise VectorIndexError(f"{where} cannot be used with this model: {why}. Search it with the "
                                   f"model that built it, or rebuild the index with the new one")

    # -- changes ----------------------------------------------------------------------------
    def add(self, vectors: Any, rows: Any, ids: Any = None) -> np.ndarray:
        """Add vectors with their rows (a table/DataFrame/list of dicts with at least `text`).

        Ids are taken from `ids`, else from an `id` column in rows, else assigned sequentially after
        the highest id ever used (removed ids are not reused, so stale references never match).
        """
        table = _as_table(rows)
        if "text" not in table.column_names:
            raise VectorIndexError("rows need a 'text' column")
        clash = [c for c in RESERVED_COLUMNS if c in table.column_names]
        if clash:
            raise VectorIndexError(f"rows cannot have columns named {clash}: search results use them")
        with self._lock:
            if self._chunks:  # refuse now what would fail later when the row chunks are combined
                try:
                    new = table.drop_columns([c for c in ("id",) if c in table.column_names])
                    pa.unify_schemas([self._chunks[0].schema, new.schema], promote_options="permissive")
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    raise VectorIndexError(f"the new rows' columns do not match the index's: {exc}") from exc
            if ids is None and "id" in table.column_names:
                ids = table.column("id").to_numpy()
            if ids is None:
                ids = np.arange(self._next_id, self._next_id + table.num_rows, dtype=np.int64)
            ids = prepare_ids(ids, table.num_rows)
            if "id" in table.column_names:
                table = table.drop_columns(["id"])
            table = table.add_column(0, "id", pa.array(ids, pa.int64()))
            self.index.add(vectors, ids)
            if table.num_rows:
                self._chunks.append(table)
                self._lookup = None
                self._next_id = max(self._next_id, int(ids.max()) + 1)
            return ids

    def remove(self, ids: Any) -> RemoveResult:
        with self._lock:
            result = self.index.remove(ids)
            if result.removed:
                rows = self.rows()
                keep = ~np.isin(self.row_ids(), prepare_ids(ids))
                self._chunks = [rows.filter(pa.array(keep))]
                self._lookup = None
            return result

    def ids_for_texts(self, texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Ids of rows whose text equals one of `texts` (after stripping), and the texts not found."""
        wanted = {t.strip() for t in texts}
        stored = self.texts()
        found = {t for t in stored if t in wanted}
        ids = self.row_ids()[np.fromiter((t in wanted for t in stored), dtype=bool, count=len(stored))]
        return ids, sorted(wanted - found)

    # -- search -----------------------------------------------------------------------------
    def _positions(self, ids: np.ndarray) -> np.ndarray:
        if self._lookup is None:
            row_ids = self.row_ids()
            order = np.argsort(row_ids, kind="stable")
            self._lookup = (row_ids[order], order)
        sorted_ids, order = self._lookup
        return order[np.searchsorted(sorted_ids, ids)]

    def lookup(self, ids: Any) -> list[dict[str, Any]]:
        """The rows for `ids`, in that order."""
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            return self.rows().take(self._positions(ids)).to_pylist() if len(ids) else []

    def search(self, query_vectors: Any, k: int = 10) -> list[list[dict[str, Any]]]:
        with self._lock:  # vectors and rows must come from the same version of the index
            scores, ids = self.index.search(query_vectors, k)
            flat_rows = self.lookup(ids.reshape(-1))
        results, at = [], 0
        for row_scores, row_ids in zip(scores, ids, strict=True):
            hits = []
            for rank, (score, _) in enumerate(zip(row_scores, row_ids, strict=True), start=1):
                row = flat_rows[at]
                at += 1
                hits.append({"rank": rank, "id": row.pop("id"), "score": float(score), "text": row.pop("text"),
                             **row})
            results.append(hits)
        return results

    # -- persistence ------------------------------------------------------------------------
    def is_stale(self) -> bool:
        """True if the folder this store was opened from (or saved to) now holds another version, or none.

        One stat of meta.json when nothing changed; a long-lived cached store uses it to know when to
        reopen. Always False for a store that was never on disk.
        """
        return self._source is not None and not self._source.current()

    def save(self, folder: str | os.PathLike | None = None, extra: Mapping[str, Any] | None = None,
             timeout: float = WRITER_LOCK_TIMEOUT_S) -> Path:
        """Publish the folder atomically under its writer lock (a crash leaves a recoverable version).

        A store read from `folder` refuses to save over a version another writer saved since
        (VectorIndexError): its rows would be lost. To change an index while others may too, open it
        with open_for_update(), which keeps the lock from the read to the save.
        """
        folder = Path(folder) if folder is not None else self.folder
        if folder is None:
            raise VectorIndexError("no folder to save to")
        with self._lock, writer_lock(folder, timeout):
            if self._source is not None and self._source.is_at(folder) and not self._source.current():
                raise VectorIndexError(
                    f"the index at {folder} was replaced or deleted by another writer after this copy of it "
                    f"was opened; saving would lose that writer's changes. Open it again and redo the change "
                    f"(open_for_update() makes writers wait for each other)")
            self.index.flush()
            merged_extra = {**self.meta.get("extra", {}), **(extra or {})}
            with _publishing(folder, timeout) as tmp:
                write_faiss(self.index, tmp)
                write_rows(self.rows(), tmp / ROWS_FILE)
                meta = {**_base_meta(self.index, self.meta), "encoder": self.encoder, "next_id": self._next_id,
                        "columns": self.rows().column_names, "extra": merged_extra}
                write_meta(tmp, meta)
            self._source, self.meta = _read_version(folder, lambda version: (_Source.of(version), version.meta))
            self.folder = folder
        return folder


@dataclass(frozen=True)
class _Source:
    """Which version of which folder a store came from: meta.json's version_id and its file identity."""

    folder: Path
    version_id: str | None
    stamp: tuple[int, int, int, int]

    @classmethod
    def of(cls, version: _FolderVersion) -> _Source:
        return cls(Path(os.path.realpath(version.folder)), version.meta.get("version_id"), version.stamp)

    def is_at(self, folder: Path) -> bool:
        return Path(os.path.realpath(folder)) == self.folder

    def current(self) -> bool:
        """True while the folder still holds this version."""
        try:
            stat = os.stat(self.folder / META_FILE)
        except OSError:
            return False
        if _stamp(stat) == self.stamp:
            return True
        # Another file: a new version, unless it carries the same version_id (meta.json copied or touched).
        try:
            version_id = json.loads((self.folder / META_FILE).read_bytes()).get("version_id")
        except (OSError, ValueError, AttributeError):
            return False
        return self.version_id is not None and version_id == self.version_id


def _read_store(version: _FolderVersion, expected_encoder: Any, verify_checksum: bool | None,
                mmap: bool = False) -> IndexStore:
    folder, meta = version.folder, version.meta
    built_with = meta.get("encoder")
    why = encoder_mismatch(built_with, expected_encoder, meta["dim"])
    if why:  # checked before reading a possibly large faiss file
        raise VectorIndexError(f"the index at {folder} cannot be used with this model: {why}. Search it "
                               f"with the model that built it, or rebuild the index with the new one")
    # Both files are opened before either is read (see _FolderVersion).
    rows_handle = version.open(ROWS_FILE)
    if rows_handle is None and "encoder" not in meta:
        raise VectorIndexError(f"{folder} holds vectors only (no {ROWS_FILE}): open it with load_vector_index")
    faiss_handle = version.require(INDEX_FILE)
    rows_handle = rows_handle or version.require(ROWS_FILE)
    rows_path = folder / ROWS_FILE
    _check_file(rows_handle, rows_path, ROWS_FILE, meta, verify_checksum)
    index = _read_faiss(version, faiss_handle, verify_checksum, mmap)
    try:
        rows = pq.read_table(rows_handle)
    except (pa.ArrowException, OSError) as exc:
        raise VectorIndexError(f"{rows_path} is corrupt and cannot be read ({exc}); rebuild the index") from exc
    if "id" not in rows.column_names or "text" not in rows.column_names:
        raise VectorIndexError(f"{rows_path} lacks the id/text columns; rebuild the index")
    row_ids = np.sort(rows.column("id").to_numpy().astype(np.int64))
    if len(row_ids) != len(index) or not np.array_equal(row_ids, np.sort(index.ids())):
        raise VectorIndexError(f"{rows_path} ({len(row_ids)} rows) does not match {INDEX_FILE} "
                               f"({len(index)} vectors); rebuild the index")
    store = IndexStore(index, rows, encoder=built_with, meta=meta, folder=folder)
    store._source = _Source.of(version)
    return store


def open_index(folder: str | os.PathLike, expected_encoder: Any = None,
               verify_checksum: bool | None = None, mmap: bool = False) -> IndexStore:
    """Load one consistent version of an index folder, checking every file; refuse it if
    `expected_encoder` did not build it. mmap=True: see load_vector_index (a read-only store)."""
    return _read_version(Path(folder), lambda version: _read_store(version, expected_encoder, verify_checksum,
                                                                   mmap))


@contextlib.contextmanager
def open_for_update(folder: str | os.PathLike, expected_encoder: Any = None,
                    timeout: float = WRITER_LOCK_TIMEOUT_S) -> Iterator[IndexStore]:
    """Open an index to change it, holding its writer lock until the block ends.

    A second writer of the same folder waits here (up to `timeout` s, then WriterLockTimeout) instead
    of saving over the first one's changes. Call `store.save()` inside the block to keep them.
    """
    folder = Path(folder)
    if not folder.parent.is_dir():  # the lock would create the parent folders of a mistyped path
        raise VectorIndexError(f"no index at {folder}: the folder does not exist")
    with writer_lock(folder, timeout):
        yield open_index(folder, expected_encoder)
