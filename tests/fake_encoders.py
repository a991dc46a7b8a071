"""Encoders made of numpy alone, for comparisons that must not need Keras: a bag-of-words base and the
"squeezed" fake tuned model (the base with every cosine pushed towards 0.8 and nothing re-ranked)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


class BagOfWordsEncoder:
    """Each word a fixed random vector (seeded by the word), a text the normalised mean of its words."""

    def __init__(self, dim: int = 32, seed: int = 0, spec: str = "bag-of-words"):
        self.dim, self.seed, self.spec, self.name = dim, seed, spec, spec

    def _word(self, word: str) -> np.ndarray:
        digest = hashlib.sha256(f"{self.seed}:{word}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little")).normal(size=self.dim)

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress=None) -> np.ndarray:
        rows = [np.mean([self._word(w) for w in (text.lower().split() or [""])], axis=0) for text in texts]
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class SqueezedEncoder:
    """The base model with its cosines squeezed towards `level`: each unit vector v becomes
    [sqrt(1 - level) v, sqrt(level)], so every cosine c becomes (1 - level) c + level. Nothing is ranked
    differently: a comparison that shows this as a gain is flattering a fake."""

    def __init__(self, base, level: float = 0.8):
        self.base, self.level = base, level
        self.spec = self.name = f"{getattr(base, 'spec', 'base')}-squeezed"
        self.dim = base.dim + 1

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress=None) -> np.ndarray:
        vectors = np.asarray(self.base.encode(texts, batch_size=batch_size), dtype=np.float64)
        shared = np.full((len(vectors), 1), np.sqrt(self.level))
        return np.hstack([np.sqrt(1 - self.level) * vectors, shared]).astype(np.float32)
