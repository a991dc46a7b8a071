"""A tiny deterministic encoder for index tests: hashed character trigrams, no model weights."""

from __future__ import annotations

import hashlib
import zlib

import numpy as np


class TrigramEncoder:
    """Same attributes and encode() signature as semsim.encoders.Encoder, in microseconds per text."""

    def __init__(self, dim: int = 32, spec: str = "fake-trigram", salt: str = ""):
        self.dim = dim
        self.spec = spec
        self.name = spec
        self.salt = salt
        self.fingerprint = hashlib.sha256(f"{spec}|{dim}|{salt}".encode()).hexdigest()[:16]
        self.calls: list[int] = []  # texts per encode() call, to check streaming

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        padded = f"  {text.lower()} "
        for i in range(len(padded) - 2):
            bucket = zlib.crc32((self.salt + padded[i:i + 3]).encode()) % self.dim
            vector[bucket] += 1.0
        return vector

    def encode(self, texts, batch_size: int = 64, progress=None) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            for row in range(start, min(start + batch_size, len(texts))):
                out[row] = self._vector(texts[row])
            if progress is not None:
                progress(min(start + batch_size, len(texts)), len(texts))
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
