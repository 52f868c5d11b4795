"""What one ``ListVectors`` pass over an S3 Vectors index tells: every chunk's metadata, and what is
derived from it (sources and their hashes, a document's chunk ids, counts and, when the index has no
full-text search of its own, a BM25 index). No client here: :mod:`shared.stores.s3vectors` lists, this
holds; the store keeps it while the index version it was listed at is current, and applies its own
writes to it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from shared.models import ScoredChunk, SearchFilter
from shared.stores import s3vectors_requests as rq
from shared.stores.lexical import LexicalIndex


class Catalog:
    def __init__(self, version: str, entries: dict[str, dict[str, Any]]) -> None:
        self.version = version
        self._entries = entries
        self._rows: dict[str, tuple[str, str]] = {}  # key -> (source, content_hash), parsed once
        self._lexical: LexicalIndex | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, entries: dict[str, dict[str, Any]]) -> None:
        self._entries.update(entries)
        for key in entries:
            self._rows.pop(key, None)
        self._lexical = None

    def drop(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._entries.pop(key, None)
            self._rows.pop(key, None)
        self._lexical = None

    def _row(self, key: str) -> tuple[str, str]:
        row = self._rows.get(key)
        if row is None:
            try:
                rest = json.loads(self._entries[key].get(rq.CHUNK_KEY) or "{}")
            except ValueError:
                rest = {}
            row = (str(rest.get("source", "")), str(rest.get("content_hash", "")))
            self._rows[key] = row
        return row

    def source_hashes(self) -> dict[str, str]:
        """``source -> content_hash``; a source whose chunks disagree (an interrupted update) maps to
        ``""``, so the next ingest re-indexes it."""
        seen: dict[str, str] = {}
        for key in self._entries:
            source, digest = self._row(key)
            if source:
                seen[source] = digest if seen.get(source, digest) == digest else ""
        return seen

    def ids_of(self, source: str) -> list[str]:
        return sorted(key for key in self._entries if self._row(key)[0] == source)

    # ------------------------------------------------------------------ BM25 here, when the service has none

    def _index(self) -> LexicalIndex:
        if self._lexical is None:
            keys = [k for k in self._entries if rq.CHUNK_KEY in self._entries[k]]
            chunks = [rq.chunk_from_metadata(k, self._entries[k]) for k in keys]
            index = LexicalIndex()
            index.build(
                keys,
                [str(self._entries[k].get(rq.TEXT_KEY) or c.text) for k, c in zip(keys, chunks, strict=True)],
                [c.source for c in chunks],
                [list(c.tags) for c in chunks],
                [c.collection for c in chunks],
            )
            self._lexical = index
        return self._lexical

    def lexical_search(self, query: str, k: int, filters: SearchFilter | None) -> list[ScoredChunk]:
        index = self._index()
        return [
            ScoredChunk(
                chunk=rq.chunk_from_metadata(index.ids[row], self._entries[index.ids[row]]), score=score
            )
            for row, score in index.search(query, k, index.allowed(filters))
        ]

    def term_counts(self, terms: Sequence[str], collection: str | None) -> dict[str, int]:
        return self._index().term_counts(terms, collection)
