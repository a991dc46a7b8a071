"""What every encoder's preprocessing shares, importable without Keras: text checks, Hugging Face
tokenisation, padding a batch into the model's input arrays and embedding texts in length order."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def validate_texts(texts: Sequence[str] | str) -> list[str]:
    """Return texts as a list of str, refusing non-strings with a clear message."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {type(text).__name__}, expected str")
    return texts


def is_hf_tokenizer(path: Path) -> bool:
    """A Hugging Face tokenizer.json (KerasHub presets also write a tokenizer.json: a Keras config)."""
    try:
        head = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(head, dict) and "model" in head and "class_name" not in head


class HFTokenizer:
    """Fast tokenisation with a Hugging Face tokenizer.json (the one sentence-transformers uses).

    Pure Rust/Python, no TensorFlow ops, so it also serves the JAX backend and ONNX Runtime.
    """

    def __init__(self, path: Path, max_length: int):
        from tokenizers import Tokenizer

        self.path = Path(path)
        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()
        pad = (self.tokenizer.padding or {}).get("pad_token") or "[PAD]"
        self.pad_id = self.tokenizer.token_to_id(pad) or 0

    def __call__(self, texts: list[str]) -> tuple[list[list[int]], list[list[int]]]:
        encodings = self.tokenizer.encode_batch(texts)
        return [e.ids for e in encodings], [e.type_ids for e in encodings]


def pad_batch(ids: list[list[int]], segments: list[list[int]], pad_id: int, length: int) -> dict[str, np.ndarray]:
    """token_ids, padding_mask and segment_ids as int32 (batch, length) arrays, rows cut at `length`."""
    token_ids = np.full((len(ids), length), pad_id, dtype=np.int32)
    padding_mask = np.zeros((len(ids), length), dtype=np.int32)
    segment_ids = np.zeros((len(ids), length), dtype=np.int32)
    for i, (row, seg) in enumerate(zip(ids, segments, strict=True)):
        row, seg = row[:length], seg[:length]
        token_ids[i, :len(row)] = row
        padding_mask[i, :len(row)] = 1
        segment_ids[i, :len(seg)] = seg
    return {"token_ids": token_ids, "padding_mask": padding_mask, "segment_ids": segment_ids}


def encode_in_length_order(texts: Sequence[str] | str, dim: int, batch_size: int,
                           embed: Callable[[list[str]], np.ndarray],
                           progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Embed texts -> float32 (n, dim) in the input order, batching them sorted by length so that each
    batch is padded only to its own longest text."""
    texts = validate_texts(texts)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    out = np.zeros((len(texts), dim), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")  # maps batch rows back to input rows
    done = 0
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        out[rows] = embed([texts[i] for i in rows])
        done += len(rows)
        if progress is not None:
            progress(done, len(texts))
    return out
