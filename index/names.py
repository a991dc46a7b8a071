"""Names of an index folder's files and of the index kinds, importable without loading FAISS."""

INDEX_FILE = "index.faiss"
ROWS_FILE = "rows.parquet"
META_FILE = "meta.json"
# The kinds `create_index` makes (index.kinds.KINDS maps each to its class); "auto" picks one by size.
KIND_NAMES = ("auto", "flat", "hnsw", "hnsw-sq8", "ivf", "ivf-sq8", "numpy")
