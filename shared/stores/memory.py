"""An in-process store (numpy brute force + BM25). For tests and throwaway indexes: nothing persists."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

import numpy as np

from shared.models import Chunk, IndexHealth, ScoredChunk, SearchFilter
from shared.stores.base import check_embeddings
from shared.stores.lexical import LexicalIndex


class MemoryStore:
    def __init__(self, *, dimension: int, lexical_text: Callable[[Chunk], str] | None = None) -> None:
        self.dimension = dimension
        self._chunks: dict[str, Chunk] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self._lexical = LexicalIndex()
        self._lexical_text = lexical_text or (lambda c: c.text)
        self._dirty = False
        self._version = uuid.uuid4().hex

    def upsert(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        check_embeddings(chunks, embeddings, self.dimension)
        for chunk, vec in zip(chunks, embeddings, strict=True):
            self._chunks[chunk.chunk_id] = chunk
            self._vectors[chunk.chunk_id] = np.asarray(vec, dtype=np.float32)
        self._changed()

    def delete_ids(self, ids: Sequence[str]) -> None:
        for cid in ids:
            self._chunks.pop(cid, None)
            self._vectors.pop(cid, None)
        self._changed()

    def _changed(self) -> None:
        """Dense searches see a write at once, BM25 after the next flush: both renew the version."""
        self._dirty = True
        self._version = uuid.uuid4().hex

    def delete_source(self, source: str) -> int:
        ids = self.chunk_ids_for_source(source)
        self.delete_ids(ids)
        return len(ids)

    def source_hashes(self) -> dict[str, str]:
        return {c.source: c.content_hash for c in self._chunks.values()}

    def chunk_ids_for_source(self, source: str) -> list[str]:
        return [cid for cid, c in self._chunks.items() if c.source == source]

    def get_embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        return {cid: self._vectors[cid] for cid in ids if cid in self._vectors}

    def flush(self) -> None:
        if self._dirty:
            chunks = list(self._chunks.values())
            self._lexical.build(
                [c.chunk_id for c in chunks],
                [self._lexical_text(c) for c in chunks],
                [c.source for c in chunks],
                [c.tags for c in chunks],
                [c.collection for c in chunks],
            )
            self._dirty = False
            self._version = uuid.uuid4().hex

    def index_version(self) -> str:
        return self._version

    def dense_search(
        self, vector: np.ndarray, k: int, filters: SearchFilter | None = None
    ) -> list[ScoredChunk]:
        ids = [
            cid
            for cid, c in self._chunks.items()
            if filters is None or filters.matches(c.source, c.tags, c.collection)
        ]
        if not ids or k <= 0:
            return []
        scores = np.stack([self._vectors[i] for i in ids]) @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(-scores, kind="stable")[:k]
        return [ScoredChunk(chunk=self._chunks[ids[i]], score=float(scores[i])) for i in order]

    def lexical_search(self, query: str, k: int, filters: SearchFilter | None = None) -> list[ScoredChunk]:
        self.flush()
        allowed = self._lexical.allowed(filters)
        return [
            ScoredChunk(chunk=self._chunks[self._lexical.ids[row]], score=score)
            for row, score in self._lexical.search(query, k, allowed)
        ]

    def term_counts(self, terms: Sequence[str], collection: str | None = None) -> dict[str, int]:
        self.flush()
        return self._lexical.term_counts(terms, collection)

    def count_chunks(self) -> int:
        return len(self._chunks)

    def lexical_count(self) -> int:
        self.flush()
        return len(self._lexical)

    def count_documents(self) -> int:
        return len({c.source for c in self._chunks.values()})

    def health(self) -> IndexHealth:
        return IndexHealth(ok=True, detail=f"{len(self._chunks)} chunks in memory")
