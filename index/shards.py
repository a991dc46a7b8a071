"""Vector shards (Parquet files of ids, rows and vectors): written atomically, checked by ids, built into an index.

A distributed embedding run (semsim.ray_engine) writes one shard per batch; a shard's name carries its
first and last id, so a batch that is retried after its worker died rewrites the same file instead of
adding a second copy. Before an index is built, the set of shards is checked against the ids the run
expected: a lost row or a row in two shards with different content stops the build before anything
is written. The build then reads the shards one at a time, so the driver never holds all vectors.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from index.errors import VectorIndexError

SHARD_PREFIX = "shard-"
SHARD_PATTERN = re.compile(r"^shard-(\d{12})-(\d{12})\.parquet$")
MANIFEST_FILE = "manifest.json"
VECTOR_COLUMN = "vector"


def shard_name(first_id: int, last_id: int) -> str:
    return f"{SHARD_PREFIX}{first_id:012d}-{last_id:012d}.parquet"


def shard_table(ids: Any, vectors: np.ndarray, rows: pa.Table | None = None) -> pa.Table:
    """A shard's table: id (int64), the rows' columns (text, extras), vector (fixed-size float32 list)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.asarray(ids, dtype=np.int64)
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise VectorIndexError(f"a shard needs one vector per id: {len(ids)} ids, vectors {vectors.shape}")
    columns = {"id": pa.array(ids, pa.int64())}
    if rows is not None:
        for name in rows.column_names:
            if name not in ("id", VECTOR_COLUMN):
                columns[name] = rows.column(name)
    columns[VECTOR_COLUMN] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])
    return pa.table(columns)


def write_shard(folder: str | os.PathLike, ids: Any, vectors: np.ndarray, rows: pa.Table | None = None) -> Path:
    """Write one shard atomically (a temporary file renamed into place); a retry of the same batch
    replaces the file, so a worker killed after writing leaves one copy, not two."""
    ids = np.asarray(ids, dtype=np.int64)
    if not len(ids):
        raise VectorIndexError("an empty shard")
    folder = Path(folder)
    path = folder / shard_name(int(ids.min()), int(ids.max()))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(shard_table(ids, vectors, rows), tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def shard_vectors(table: pa.Table) -> np.ndarray:
    column = table.column(VECTOR_COLUMN).combine_chunks()
    dim = column.type.list_size
    return column.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)


@dataclass
class Shard:
    path: Path
    first_id: int
    last_id: int
    rows: int


class ShardSet:
    """The shards of one run, in id order, after `check`: every expected id exactly once."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise VectorIndexError(f"no shard folder at {self.folder}")
        self.shards: list[Shard] = []
        for path in sorted(self.folder.iterdir()):
            match = SHARD_PATTERN.match(path.name)
            if match:
                rows = pq.ParquetFile(path).metadata.num_rows
                self.shards.append(Shard(path, int(match[1]), int(match[2]), rows))
        self.dropped: list[str] = []
        self.dim: int | None = None
        if self.shards:
            self.dim = pq.read_schema(self.shards[0].path).field(VECTOR_COLUMN).type.list_size

    def __len__(self) -> int:
        return sum(s.rows for s in self.shards)

    def check(self, expected_ids: np.ndarray | None = None, expected_count: int | None = None) -> ShardSet:
        """Make sure the shards hold every expected id exactly once, reading only their id columns.

        A shard whose ids all appear in shards already kept is a second copy of a retried batch whose
        boundaries moved (identical rows: embedding is deterministic) and is dropped; a shard that
        shares only some ids with others cannot be told apart safely and stops the check, as does an id
        no shard holds (a lost row) or one the run never made.
        """
        ids_of = {shard.path: pq.read_table(shard.path, columns=["id"]).column("id").to_numpy().astype(np.int64)
                  for shard in self.shards}
        everything = np.concatenate(list(ids_of.values())) if ids_of else np.empty(0, dtype=np.int64)
        covered = np.unique(everything)
        kept = list(self.shards)
        if len(covered) != len(everything):  # some id in two shards: a retried batch, or worse
            kept, covered = self._drop_copies(ids_of)
        if expected_ids is not None:
            expected = np.sort(np.asarray(expected_ids, dtype=np.int64))
            if len(covered) != len(expected) or not np.array_equal(covered, expected):
                lost = np.setdiff1d(expected, covered, assume_unique=True)
                extra = np.setdiff1d(covered, expected, assume_unique=True)
                raise VectorIndexError(
                    f"the shards in {self.folder} do not match the run: {len(lost):,} rows lost"
                    + (f" (ids {lost[:10].tolist()})" if len(lost) else "")
                    + f", {len(extra):,} unexpected" + (f" (ids {extra[:10].tolist()})" if len(extra) else "")
                    + "; no index was written")
        elif expected_count is not None and len(covered) != expected_count:
            raise VectorIndexError(f"the shards in {self.folder} hold {len(covered):,} rows, the run expected "
                                   f"{expected_count:,}; no index was written")
        self.shards = sorted(kept, key=lambda s: s.first_id)
        return self

    def _drop_copies(self, ids_of: dict[Path, np.ndarray]) -> tuple[list[Shard], np.ndarray]:
        kept: list[Shard] = []
        covered = np.empty(0, dtype=np.int64)
        # Largest first, so a big shard is kept and the small retried pieces inside it are dropped.
        for shard in sorted(self.shards, key=lambda s: (-s.rows, s.first_id)):
            ids = ids_of[shard.path]
            if len(np.unique(ids)) != len(ids):
                raise VectorIndexError(f"{shard.path.name} holds the same id twice; rerun the embedding")
            overlap = np.isin(ids, covered) if len(covered) else np.zeros(len(ids), bool)
            if len(ids) and overlap.all():
                self.dropped.append(shard.path.name)
                continue
            if overlap.any():
                raise VectorIndexError(f"{shard.path.name} shares {int(overlap.sum())} of its {len(ids)} ids with "
                                       f"other shards; rerun the embedding into an empty folder")
            kept.append(shard)
            covered = np.union1d(covered, ids)
        return kept, covered

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, pa.Table]]:
        """(ids, vectors, rows without the vector column) for each shard, in id order."""
        for shard in self.shards:
            table = pq.read_table(shard.path)
            ids = table.column("id").to_numpy().astype(np.int64)
            yield ids, shard_vectors(table), table.drop_columns([VECTOR_COLUMN])

    def sample(self, count: int, seed: int = 0) -> np.ndarray:
        """`count` vectors drawn uniformly across all shards (the training sample), one shard read at a time."""
        total = len(self)
        count = min(count, total)
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(total, count, replace=False))
        out = np.empty((count, self.dim or 0), dtype=np.float32)
        start, filled = 0, 0
        for shard in self.shards:
            inside = chosen[(chosen >= start) & (chosen < start + shard.rows)] - start
            if len(inside):
                table = pq.read_table(shard.path, columns=[VECTOR_COLUMN])
                out[filled:filled + len(inside)] = shard_vectors(table)[inside]
                filled += len(inside)
            start += shard.rows
        return out


def write_manifest(folder: str | os.PathLike, manifest: Mapping[str, Any]) -> None:
    folder = Path(folder)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{MANIFEST_FILE}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(dict(manifest), handle, indent=2, default=lambda v: v.item() if isinstance(v, np.generic) else str(v))
        handle.write("\n")
    os.replace(tmp, folder / MANIFEST_FILE)


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / MANIFEST_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VectorIndexError(f"{path} is missing: the shard folder is incomplete (was the run interrupted?)") from None
    except (OSError, ValueError) as exc:
        raise VectorIndexError(f"{path} cannot be read ({exc})") from None


def fill_from_shards(store: Any, shards: ShardSet, spill_dir: str | os.PathLike | None = None,
                     progress: Any = None, train_seed: int = 0) -> Any:
    """Add every shard to an empty IndexStore: tell the index its size, train trained kinds on a sample
    drawn across the shards, keep ivf-pq's exact vectors on disk (`spill_dir`), then one shard at a time."""
    index = store.index
    total = len(shards)
    index.expect(total)
    inner = getattr(index, "inner", index)
    if hasattr(inner, "_train_points") and hasattr(index, "train"):
        index.train(shards.sample(inner._train_points(total), seed=train_seed))
    if spill_dir is not None and hasattr(index, "spill_refine_to"):
        index.spill_refine_to(spill_dir)
    done = 0
    for ids, vectors, rows in shards:
        store.add(vectors, rows, ids=ids)
        done += len(ids)
        if progress is not None:
            progress(done, total)
    return store


def expected_ids(counts: Sequence[int]) -> np.ndarray:
    """Ids 0..n-1 for a run that numbered `sum(counts)` kept rows in order."""
    return np.arange(int(sum(counts)), dtype=np.int64)
