"""Embeddings remembered by text, so that work done once per chunk is not redone per question.

Answering embeds every candidate sentence of the retrieved chunks (about fifty per question, most of the
cost of ``ask``). Those sentences are known at ingest time: the service embeds them there, through
:class:`CachingEmbedder`, and a question then only looks them up. The query embedding is memoised too,
so retrieval and answering share one.

Vectors are kept as float16 (cosines move by about 1e-3) in a bounded in-memory LRU and, for a local
index, in SQLite beside it (WAL mode: several `serve` workers read it while one writes). The cache is
keyed by a hash of the embedder's name and the text, so a changed embedder never reads old vectors.
Anything that goes wrong with the file only costs recomputation: a cache never fails a request.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.embeddings.base import Embedder

#: Vectors kept in memory (float16: 384 dimensions are 768 bytes, 50,000 of them 38 MB).
MEMORY_ENTRIES = 50_000
#: Query vectors memoised (the last questions asked).
QUERY_ENTRIES = 256
_SQL_BATCH = 500  # ids per SELECT ... IN (...), under SQLite's variable limit


class EmbeddingCache:
    """Vectors by text for one embedder: memory first, then the SQLite file (when ``path`` is set)."""

    def __init__(self, embedder_name: str, *, path: Path | None = None, memory_entries: int = MEMORY_ENTRIES):
        self.embedder_name = embedder_name
        self.path = path
        self.memory_entries = memory_entries
        self._memory: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection | None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=2.0, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
            return db
        except (sqlite3.Error, OSError):
            return None  # a read-only or broken location: memory only

    def key(self, text: str) -> bytes:
        return hashlib.blake2b(f"{self.embedder_name}\0{text}".encode(), digest_size=16).digest()

    def get_many(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        keys = [self.key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for k in keys:
                if k in self._memory:
                    self._memory.move_to_end(k)
                    found[k] = self._memory[k]
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing and self._db is not None:
            loaded = self._select(missing)
            found.update(loaded)
            self._remember(loaded)
        return [found.get(k) for k in keys]

    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        rows = {self.key(t): np.asarray(v, dtype=np.float16) for t, v in zip(texts, vectors, strict=True)}
        self._remember(rows)
        if self._db is not None:
            try:
                with self._lock:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)",
                        [(k, v.tobytes()) for k, v in rows.items()],
                    )
            except sqlite3.Error:
                pass  # busy or read-only: the vectors stay in memory, the file catches up next time

    def _select(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        assert self._db is not None
        out: dict[bytes, np.ndarray] = {}
        try:
            for start in range(0, len(keys), _SQL_BATCH):
                part = keys[start : start + _SQL_BATCH]
                marks = ",".join("?" * len(part))
                with self._lock:
                    rows = self._db.execute(
                        f"SELECT key, vector FROM vectors WHERE key IN ({marks})",  # noqa: S608 - only "?"s
                        part,
                    ).fetchall()
                for k, blob in rows:
                    out[bytes(k)] = np.frombuffer(blob, dtype=np.float16)
        except sqlite3.Error:
            pass
        return out

    def _remember(self, rows: dict[bytes, np.ndarray]) -> None:
        with self._lock:
            for k, v in rows.items():
                self._memory[k] = v
                self._memory.move_to_end(k)
            while len(self._memory) > self.memory_entries:
                self._memory.popitem(last=False)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class CachingEmbedder:
    """An :class:`Embedder` that looks texts up in an :class:`EmbeddingCache` before computing them."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0  # texts embedded by the inner embedder (documents and queries)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_spans(text)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        cached = self.cache.get_many(texts)
        todo = list(dict.fromkeys(t for t, v in zip(texts, cached, strict=True) if v is None))
        fresh: dict[str, np.ndarray] = {}
        if todo:
            vectors = self.inner.embed_documents(todo)
            self.computed += len(todo)
            fresh = dict(zip(todo, vectors, strict=True))
            self.cache.put_many(todo, vectors)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, (text, vector) in enumerate(zip(texts, cached, strict=True)):
            out[i] = fresh[text] if vector is None else vector
        return out

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            if text in self._queries:
                self._queries.move_to_end(text)
                return self._queries[text]
        vector = self.inner.embed_query(text)
        self.computed += 1
        with self._lock:
            self._queries[text] = vector
            while len(self._queries) > QUERY_ENTRIES:
                self._queries.popitem(last=False)
        return vector
