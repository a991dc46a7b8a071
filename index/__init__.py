"""Persistent FAISS vector indexes over ids, rows and metadata (never imports semsim, TensorFlow or Keras)."""

from index.base import RemoveResult, VectorIndex
from index.errors import VectorIndexError
from index.kinds import (
    APPROXIMATE_KINDS,
    AUTO_THRESHOLD,
    KINDS,
    AutoIndex,
    FlatIndex,
    HNSWIndex,
    IVFIndex,
    NumpyIndex,
    choose_nlist,
    choose_nprobe,
    create_index,
)
from index.storage import (
    FORMAT_VERSION,
    IndexStore,
    atomic_folder,
    load_vector_index,
    open_index,
    read_meta,
)

__all__ = [
    "APPROXIMATE_KINDS", "AUTO_THRESHOLD", "FORMAT_VERSION", "KINDS", "AutoIndex", "FlatIndex", "HNSWIndex",
    "IVFIndex", "IndexStore", "NumpyIndex", "RemoveResult", "VectorIndex", "VectorIndexError", "atomic_folder",
    "choose_nlist", "choose_nprobe", "create_index", "load_vector_index", "open_index", "read_meta",
]
