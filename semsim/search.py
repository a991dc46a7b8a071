"""Search persistent vector indexes with a semsim encoder; a loaded index is kept until its folder changes."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from index import IndexStore, VectorIndexError, open_index
from index.names import META_FILE

DEFAULT_BATCH_SIZE = 64
_CACHE_SIZE = 4  # loaded folders kept in memory; the Search page holds a base and a tuned index at once

_cache: OrderedDict[tuple[str, int, int], IndexStore] = OrderedDict()
_cache_lock = threading.Lock()


def _cache_key(index_dir: Path) -> tuple[str, int, int]:
    try:
        stat = (index_dir / META_FILE).stat()
    except OSError:
        return (str(index_dir.resolve()), -1, -1)
    return (str(index_dir.resolve()), stat.st_mtime_ns, stat.st_size)


def forget_loaded_index(index_dir: str | os.PathLike) -> None:
    """Drop the loaded copies of an index folder (called after writing it)."""
    resolved = str(Path(index_dir).resolve())
    with _cache_lock:
        for key in [k for k in _cache if k[0] == resolved]:
            del _cache[key]


def load_index(index_dir: str | os.PathLike, expected_encoder: Any = None) -> IndexStore:
    """Open an index folder, reusing the loaded copy while its meta.json is unchanged.

    A rebuilt or updated index has a new meta.json, so it is read again. The returned store is shared:
    use it for searching; changes go through semsim.corpus_index (add_to_index, remove_from_index).
    Raises VectorIndexError if `expected_encoder` (an encoder or a dict with spec/fingerprint/dim) did
    not build the index.
    """
    index_dir = Path(index_dir)
    key = _cache_key(index_dir)
    with _cache_lock:
        store = _cache.get(key)
        if store is not None:
            _cache.move_to_end(key)
    if store is None:
        store = open_index(index_dir)
        with _cache_lock:
            _cache[_cache_key(index_dir)] = store
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    if expected_encoder is not None:
        store.check_encoder(expected_encoder)
    return store


def search_index(encoder: Any, index: str | os.PathLike | IndexStore, queries: str | Sequence[str],
                 k: int = 10, batch_size: int = DEFAULT_BATCH_SIZE) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
    """Search with one query (-> a list of hits) or several (-> one list of hits per query).

    Each hit is a dict: rank (1-based), id, score (cosine), text, and the index's extra columns.
    """
    store = index if isinstance(index, IndexStore) else load_index(index, expected_encoder=encoder)
    if isinstance(index, IndexStore):
        store.check_encoder(encoder)
    single = isinstance(queries, str)
    texts = [queries] if single else list(queries)
    if not texts:
        return []
    if any(not isinstance(t, str) or not t.strip() for t in texts):
        raise VectorIndexError("queries must be non-empty strings")
    results = store.search(encoder.encode(texts, batch_size=batch_size), k)
    return results[0] if single else results
