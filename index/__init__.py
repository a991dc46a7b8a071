"""Persistent FAISS vector indexes over ids, rows and metadata (never imports semsim, TensorFlow or Keras)."""

from __future__ import annotations

import importlib
from typing import Any

from index.errors import VectorIndexError as VectorIndexError  # light: eager

# Exported name -> the module that defines it. They load on first use (PEP 562), so importing a light
# module such as index.names or index.atomic does not load FAISS, NumPy or PyArrow.
_EXPORTS = {
    **dict.fromkeys(("INDEX_FILE", "KIND_NAMES", "META_FILE", "ROWS_FILE"), "index.names"),
    **dict.fromkeys(("WRITER_LOCK_TIMEOUT_S", "WriterLockTimeout", "atomic_folder", "publish_folder",
                     "recover_folder", "writer_lock"), "index.atomic"),
    **dict.fromkeys(("RemoveResult", "VectorIndex", "exact_search", "l2_normalize"), "index.base"),
    **dict.fromkeys(("APPROXIMATE_KINDS", "AUTO_THRESHOLD", "KINDS", "AutoIndex", "FlatIndex", "HNSWIndex",
                     "IVFIndex", "NumpyIndex", "choose_nlist", "choose_nprobe", "create_index"), "index.kinds"),
    **dict.fromkeys(("FORMAT_VERSION", "IndexStore", "is_replaceable", "load_vector_index", "open_for_update",
                     "open_index", "read_meta", "save_vector_index"), "index.storage"),
}

__all__ = sorted(["VectorIndexError", *_EXPORTS])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'index' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
