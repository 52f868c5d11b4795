"""A tiny deterministic embedder (feature hashing of stemmed words).

It needs no model files, so unit tests and quick experiments use it; retrieval quality is that of a
bag of words. Name: ``hash:<dimension>``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from shared.text import stem_all

_TOKEN = re.compile(r"\S+")


class HashingEmbedder:
    def __init__(self, dimension: int = 256, *, max_tokens: int = 256) -> None:
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.name = f"hash:{dimension}"

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _TOKEN.finditer(text)]

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dimension, dtype=np.float32)
        words = re.findall(r"(?u)\b\w\w+\b", text.lower())[: self.max_tokens]
        for w in stem_all(words):
            digest = hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest()
            idx = int.from_bytes(digest[:4], "little") % self.dimension
            sign = 1.0 if digest[4] & 1 else -1.0
            vec[idx] += sign
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0
            return vec
        return vec / norm

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)
