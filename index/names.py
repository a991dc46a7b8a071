"""Names of an index folder's files and of the index kinds, importable without loading FAISS."""

INDEX_FILE = "index.faiss"
ROWS_FILE = "rows.parquet"
META_FILE = "meta.json"
# ivf-pq's exact vectors for the refine step (read memory-mapped) and its position -> id map.
REFINE_FILE = "refine_vectors.npy"
POSITION_IDS_FILE = "position_ids.npy"
# The kinds `create_index` makes (index.kinds.KINDS maps each to its class); "auto" picks one by size.
KIND_NAMES = ("auto", "flat", "hnsw", "hnsw-sq8", "ivf", "ivf-sq8", "ivf-pq", "numpy")
