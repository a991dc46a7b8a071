"""Exact float32 vectors by position for the refine step: in RAM, spilled to disk while building, or memory-mapped."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from index.errors import VectorIndexError

# Rows copied per step when a store is written out (64 MB at 384-d): writing never holds all vectors.
COPY_ROWS = 40_000
# A written .npy header is padded to this many bytes (numpy pads to a multiple of 64 anyway), so the
# header of a file being appended to can be rewritten in place once the final row count is known.
HEADER_BYTES = 128


def npy_header(rows: int, dim: int) -> bytes:
    """A version 1.0 .npy header for a C-order float32 (rows, dim) array, exactly HEADER_BYTES long."""
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + f"{int(rows)}, {int(dim)}), " + "}"
    pad = HEADER_BYTES - 10 - len(text) - 1
    if pad < 0:
        raise VectorIndexError(f"a ({rows}, {dim}) array does not fit a {HEADER_BYTES}-byte .npy header")
    body = (text + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


def map_npy(handle: IO[bytes], what: str) -> np.ndarray:
    """A read-only memory map of the float32 or int64 2-D/1-D array in an open .npy file (nothing is copied).

    The map keeps its own reference to the file, so it stays readable after `handle` is closed and the
    folder it came from is replaced (the old version's files live on while mapped)."""
    handle.seek(0)
    try:
        version = np.lib.format.read_magic(handle)
        shape, fortran, dtype = (np.lib.format.read_array_header_1_0(handle) if version == (1, 0)
                                 else np.lib.format.read_array_header_2_0(handle))
    except ValueError as exc:
        raise VectorIndexError(f"{what} is not a valid .npy file ({exc}); rebuild the index") from exc
    if fortran or dtype.hasobject or dtype not in (np.dtype("<f4"), np.dtype("<i8")):
        raise VectorIndexError(f"{what} holds {dtype} data, expected float32 or int64; rebuild the index")
    offset = handle.tell()
    size = os.fstat(handle.fileno()).st_size
    if offset + int(np.prod(shape)) * dtype.itemsize != size:
        raise VectorIndexError(f"{what} is truncated ({size} bytes for shape {shape}); rebuild the index")
    if int(np.prod(shape)) == 0:
        return np.empty(shape, dtype=dtype)
    return np.memmap(handle, dtype=dtype, mode="r", offset=offset, shape=tuple(shape))


class RefineStore:
    """Exact float32 vectors addressed by position (0, 1, 2, ... in the order they were appended).

    Three places a row can live, in this order: a read-only memory map of a saved file (an opened
    index), a spill file on disk (a large build: vectors go to disk as they arrive instead of RAM),
    and RAM chunks (small indexes, tests, adds after opening). Rows are never rewritten, so reading
    a few hundred candidate rows for a query touches only those pages.
    """

    def __init__(self, dim: int, mapped: np.ndarray | None = None):
        self.dim = int(dim)
        self._mapped = mapped if mapped is not None else np.empty((0, self.dim), dtype=np.float32)
        self._chunks: list[np.ndarray] = []
        self._ram_rows = 0
        self._spill: IO[bytes] | None = None
        self._spill_path: Path | None = None
        self._spill_rows = 0
        self._spill_map: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._mapped) + self._spill_rows + self._ram_rows

    def spill_to(self, folder: str | os.PathLike) -> None:
        """Send later appends to a file in `folder` (same disk as the output, so RAM holds none of them)."""
        if self._spill is not None:
            return
        if self._ram_rows:
            raise VectorIndexError("spill_to must be called before vectors are added")
        fd, path = tempfile.mkstemp(dir=folder, prefix=".refine-", suffix=".f32")
        self._spill = os.fdopen(fd, "w+b")
        self._spill_path = Path(path)

    def close(self) -> None:
        """Delete the spill file (a finished or abandoned build)."""
        if self._spill is not None:
            self._spill_map = None
            self._spill.close()
            self._spill = None
            if self._spill_path is not None:
                self._spill_path.unlink(missing_ok=True)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to clean reliably
            pass

    def append(self, vectors: np.ndarray) -> np.ndarray:
        """Store rows; returns their positions."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        start = len(self)
        if self._spill is not None and not self._ram_rows:
            self._spill.seek(0, os.SEEK_END)
            self._spill.write(vectors.tobytes())
            self._spill_rows += len(vectors)
            self._spill_map = None
        else:
            self._chunks.append(vectors.copy())
            self._ram_rows += len(vectors)
        return np.arange(start, start + len(vectors), dtype=np.int64)

    def _spilled(self) -> np.ndarray:
        if self._spill_map is None:
            if not self._spill_rows:
                return np.empty((0, self.dim), dtype=np.float32)
            self._spill.flush()
            self._spill_map = np.memmap(self._spill, dtype=np.float32, mode="r", shape=(self._spill_rows, self.dim))
        return self._spill_map

    def _ram(self) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.empty((0, self.dim), dtype=np.float32)

    def get(self, positions: Any) -> np.ndarray:
        """Rows at `positions` (any order, repeats allowed) as a float32 (n, dim) array."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        out = np.empty((len(positions), self.dim), dtype=np.float32)
        bounds = np.cumsum([0, len(self._mapped), self._spill_rows, self._ram_rows])
        if len(positions) and (positions.min() < 0 or positions.max() >= bounds[-1]):
            raise VectorIndexError(f"refine positions out of range 0..{bounds[-1] - 1}")
        for (low, high), source in zip(zip(bounds[:-1], bounds[1:], strict=True),
                                       (lambda: self._mapped, self._spilled, self._ram), strict=True):
            inside = (positions >= low) & (positions < high)
            if inside.any():
                rows = positions[inside] - low
                # Sorted reads of a memory map walk the file forwards; the order is restored after.
                order = np.argsort(rows, kind="stable")
                block = np.asarray(source()[rows[order]])
                out[np.flatnonzero(inside)[order]] = block
        return out

    def segments(self) -> list[np.ndarray]:
        """All rows in position order as a few arrays (memory maps stay maps)."""
        return [part for part in (self._mapped, self._spilled(), self._ram()) if len(part)]

    def write(self, path: str | os.PathLike) -> None:
        """Write every row as one float32 .npy file, COPY_ROWS at a time."""
        with open(path, "wb") as handle:
            handle.write(npy_header(len(self), self.dim))
            for part in self.segments():
                for start in range(0, len(part), COPY_ROWS):
                    handle.write(np.ascontiguousarray(part[start:start + COPY_ROWS]).tobytes())

    def resident_bytes(self) -> int:
        """Bytes of vectors held in RAM (memory-mapped and spilled rows live on disk)."""
        return self._ram_rows * self.dim * 4
