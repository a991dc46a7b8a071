"""Search persistent vector indexes with a semsim encoder; a loaded index is kept until its folder changes."""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from index import IndexStore, VectorIndexError, open_index

DEFAULT_BATCH_SIZE = 64
_CACHE_SIZE = 4  # loaded folders kept in memory; the Search page holds a base and a tuned index at once

_cache: OrderedDict[str, IndexStore] = OrderedDict()  # resolved folder -> the store last opened from it
_cache_lock = threading.Lock()


def _cache_key(index_dir: str | os.PathLike) -> str:
    return os.path.realpath(index_dir)


def forget_loaded_index(index_dir: str | os.PathLike) -> None:
    """Drop the loaded copy of an index folder (called after writing it)."""
    with _cache_lock:
        _cache.pop(_cache_key(index_dir), None)


def load_index(index_dir: str | os.PathLike, expected_encoder: Any = None) -> IndexStore:
    """Open an index folder, reusing the loaded copy until the folder holds another version.

    The copy is keyed by the folder's resolved path (two spellings of one folder share it) and checked
    with IndexStore.is_stale() on every call (one stat of meta.json), so an index rebuilt, updated or
    deleted since is read again (or reported missing), never answered from the old version. The
    returned store is shared: use it for searching; changes go through semsim.corpus_index
    (add_to_index, remove_from_index). Raises VectorIndexError if `expected_encoder` (an encoder or a
    dict with spec/fingerprint/dim) did not build the index.
    """
    key = _cache_key(index_dir)
    with _cache_lock:
        store = _cache.get(key)
        if store is not None:
            _cache.move_to_end(key)
    if store is None or store.is_stale():
        store = open_index(index_dir)
        with _cache_lock:
            _cache[key] = store
            _cache.move_to_end(key)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    if expected_encoder is not None and not isinstance(expected_encoder, dict):
        from semsim.matryoshka import for_index

        # An index built with --dim holds cut vectors: the model that built it, cut the same way, matches.
        expected_encoder = for_index(expected_encoder, store.encoder, store.dim)
    if expected_encoder is not None:
        store.check_encoder(expected_encoder)
    return store


class PrecisionMismatchWarning(UserWarning):
    """The query encoder runs at another precision than the index was built with (the search still runs)."""


def precision_note(store: IndexStore, encoder: Any) -> str | None:
    """What to tell the user when `encoder`'s precision differs from the index's (None when they match)."""
    from index.storage import precision_mismatch

    return precision_mismatch(store.encoder, encoder)


def warn_on_precision_mismatch(store: IndexStore, encoder: Any) -> None:
    note = precision_note(store, encoder)
    if note:
        warnings.warn(note, PrecisionMismatchWarning, stacklevel=3)


def search_index(encoder: Any, index: str | os.PathLike | IndexStore, queries: str | Sequence[str],
                 k: int = 10, batch_size: int = DEFAULT_BATCH_SIZE,
                 dim: int | None = None) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
    """Search with one query (-> a list of hits) or several (-> one list of hits per query).

    Each hit is a dict: rank (1-based), id, score (cosine), text, and the index's extra columns.
    Queries are cut to the index's dimension when it was built with --dim (Matryoshka); a `dim` other
    than the index's is refused.
    """
    from semsim.matryoshka import DimensionError, for_index

    store = index if isinstance(index, IndexStore) else load_index(index)
    try:
        encoder = for_index(encoder, store.encoder, store.dim, dim)
    except DimensionError as exc:
        raise VectorIndexError(str(exc)) from None
    store.check_encoder(encoder)
    warn_on_precision_mismatch(store, encoder)
    single = isinstance(queries, str)
    texts = [queries] if single else list(queries)
    if not texts:
        return []
    if any(not isinstance(t, str) or not t.strip() for t in texts):
        raise VectorIndexError("queries must be non-empty strings")
    results = store.search(encoder.encode(texts, batch_size=batch_size), k)
    return results[0] if single else results
