"""ChromaDB adapter (embedded, on disk) with a BM25 index kept in step with it.

Chroma never embeds anything itself here: vectors are always passed in, and the collection is opened
without an embedding function, so Chroma's own (downloading) default model is never touched.

Each chunk's metadata holds its ``collection`` and, when it has one, its ``url`` (Chroma stores no None: the
key is absent). Chunks stored before collections existed have no ``collection`` key and
belong to the default collection, and a filter on the default collection finds them (see
:meth:`ChromaStore._collection_clause`).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import EmbedderMismatchError, StoreError
from shared.extras import needs_extra
from shared.models import DEFAULT_COLLECTION, Chunk, IndexHealth, ScoredChunk, SearchFilter
from shared.stores.base import check_embeddings
from shared.stores.lexical import LexicalIndex

log = logging.getLogger(__name__)

COLLECTION = "chunks"
_TAG_PREFIX = "tag:"
#: Present while Chroma holds writes that the BM25 index does not have yet (written before the first).
DIRTY_MARKER = "bm25.dirty"
#: The index version (:meth:`ChromaStore.index_version`): a random token, replaced on every change.
VERSION_FILE = "index-version"
_PAGE = 500  # rows per get() page when scanning the collection


def _metadata(chunk: Chunk) -> dict[str, Any]:
    """A chunk's metadata for ``upsert``. Chroma merges it into what an existing chunk of the same id holds
    and stores no None: a None (no page, no URL) deletes that key, so no stale value survives a re-ingest."""
    meta: dict[str, Any] = {
        "source": chunk.source,
        "title": chunk.title or "",
        "heading_path": json.dumps(chunk.heading_path, ensure_ascii=False),
        "position": chunk.position,
        "content_hash": chunk.content_hash,
        "tags": json.dumps(chunk.tags, ensure_ascii=False),
        "n_tokens": chunk.n_tokens,
        "collection": chunk.collection,
        "page": chunk.page,
        "url": chunk.url,
    }
    for tag in chunk.tags:
        meta[_TAG_PREFIX + tag] = True
    return meta


def _chunk(chunk_id: str, text: str, meta: dict[str, Any]) -> Chunk:
    return Chunk(
        chunk_id=chunk_id,
        source=str(meta["source"]),
        title=str(meta.get("title") or "") or None,
        text=text,
        heading_path=json.loads(str(meta.get("heading_path") or "[]")),
        position=int(meta.get("position") or 0),
        page=int(meta["page"]) if meta.get("page") is not None else None,
        content_hash=str(meta.get("content_hash") or ""),
        tags=json.loads(str(meta.get("tags") or "[]")),
        n_tokens=int(meta.get("n_tokens") or 0),
        url=str(meta["url"]) if meta.get("url") else None,
        collection=str(meta.get("collection") or DEFAULT_COLLECTION),
    )


class ChromaStore:
    """:class:`~shared.stores.base.VectorStore` on an embedded ChromaDB ``PersistentClient``.

    ``lexical_text`` maps a chunk to the text the BM25 leg indexes (defaults to the chunk text).
    """

    def __init__(
        self,
        path: Path,
        *,
        embedder_name: str,
        dimension: int,
        client: Any = None,
        lexical_text: Any = None,
    ) -> None:
        self.path = Path(path)
        self.embedder_name = embedder_name
        self.dimension = dimension
        self._lexical_text = lexical_text or (lambda c: c.text)
        self._client = client if client is not None else self._make_client(self.path)
        try:
            self._col = self._client.get_or_create_collection(
                COLLECTION,
                metadata={"embedder": embedder_name, "dimension": dimension},
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
        except Exception as exc:  # chromadb raises many types; map them all
            raise StoreError(f"cannot open the Chroma collection at {self.path}: {exc}") from exc
        self._check_embedder()
        self._dirty_marker = self.path / DIRTY_MARKER
        self._version_file = self.path / VERSION_FILE
        self._version = self._read_version() or self._new_version()
        self._dirty = False
        self._lexical = self._open_lexical()
        if self._dirty_marker.exists() or len(self._lexical) != self._col.count():
            # a writer stopped between the Chroma write and the BM25 save: the two may hold different
            # chunks even when their counts agree, so rebuild BM25 from Chroma
            self._dirty = True
            self.flush()

    def _open_lexical(self) -> LexicalIndex:
        try:
            return LexicalIndex(self.path / "bm25")
        except StoreError:  # unreadable (a crash mid-swap): it is derived data, rebuilt from Chroma
            self._mark_dirty()
            index = LexicalIndex()
            index.path = self.path / "bm25"
            return index

    def _mark_dirty(self) -> None:
        """Before the first Chroma write since the last BM25 save: a durable "BM25 is behind" marker."""
        if not self._dirty:
            self._dirty_marker.touch()
            self._new_version()
            self._dirty = True

    def _read_version(self) -> str | None:
        try:
            return self._version_file.read_text(encoding="ascii").strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    def _new_version(self) -> str:
        """A new version, written atomically beside the index (kept in memory if it cannot be)."""
        version = uuid.uuid4().hex
        tmp = self._version_file.with_name(f"{VERSION_FILE}.tmp-{version}")
        try:
            tmp.write_text(version, encoding="ascii")
            os.replace(tmp, self._version_file)
        except OSError as exc:
            log.warning("cannot write the index version to %s: %s", self._version_file, exc)
            tmp.unlink(missing_ok=True)
        self._version = version
        return version

    def index_version(self) -> str:
        """The token in ``index-version`` (another process's ingest renews it), else this process's.
        Renewed before the first write after a flush and again by the flush that makes writes visible."""
        return self._read_version() or self._version

    @staticmethod
    def _make_client(path: Path) -> Any:
        with needs_extra("local", "the local index"):
            import chromadb
            from chromadb.config import Settings as ChromaSettings

        try:
            path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(
                path=str(path), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False)
            )
        except Exception as exc:
            raise StoreError(f"cannot open the Chroma index at {path}: {exc}") from exc

    def _check_embedder(self) -> None:
        meta = self._col.metadata or {}
        built_with = meta.get("embedder")
        if built_with and built_with != self.embedder_name:
            raise EmbedderMismatchError(
                f"the index at {self.path} was built with embedder '{built_with}' but '{self.embedder_name}' "
                "is configured; use the same embedder, or a new --home, or remove the index and re-ingest"
            )

    # ------------------------------------------------------------------ writes

    def upsert(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        if not chunks:
            return
        check_embeddings(chunks, embeddings, self.dimension)
        self._mark_dirty()
        try:
            for start in range(0, len(chunks), 1000):
                part = chunks[start : start + 1000]
                self._col.upsert(
                    ids=[c.chunk_id for c in part],
                    embeddings=np.asarray(embeddings[start : start + 1000], dtype=np.float32),
                    documents=[c.text for c in part],
                    metadatas=[_metadata(c) for c in part],
                )
        except Exception as exc:
            raise StoreError(f"Chroma upsert failed: {exc}") from exc

    def delete_ids(self, ids: Sequence[str]) -> None:
        if ids:
            self._mark_dirty()
            try:
                self._col.delete(ids=list(ids))
            except Exception as exc:
                raise StoreError(f"Chroma delete failed: {exc}") from exc

    def delete_source(self, source: str) -> int:
        ids = self.chunk_ids_for_source(source)
        self.delete_ids(ids)
        return len(ids)

    def flush(self) -> None:
        """Rebuild the BM25 index from the collection if anything changed since the last flush."""
        if not self._dirty:
            return
        ids: list[str] = []
        texts: list[str] = []
        sources: list[str] = []
        tags: list[list[str]] = []
        collections: list[str] = []
        for cid, text, meta in self._scan(include=["documents", "metadatas"]):
            chunk = _chunk(cid, text or "", meta)
            ids.append(cid)
            texts.append(self._lexical_text(chunk))
            sources.append(chunk.source)
            tags.append(chunk.tags)
            collections.append(chunk.collection)
        self._lexical.build(ids, texts, sources, tags, collections)
        self._new_version()
        self._dirty_marker.unlink(missing_ok=True)
        self._dirty = False

    # ------------------------------------------------------------------ reads

    def _scan(self, include: list[str], where: dict[str, Any] | None = None) -> Any:
        offset = 0
        while True:
            try:
                got = self._col.get(where=where, include=include, limit=_PAGE, offset=offset)
            except Exception as exc:
                raise StoreError(f"Chroma read failed: {exc}") from exc
            ids = got["ids"]
            if not ids:
                return
            docs = got.get("documents") or [None] * len(ids)
            metas = got.get("metadatas") or [{}] * len(ids)
            yield from zip(ids, docs, metas, strict=True)
            if len(ids) < _PAGE:
                return
            offset += _PAGE

    def source_hashes(self) -> dict[str, str]:
        return {
            str(m["source"]): str(m.get("content_hash") or "")
            for _, _, m in self._scan(include=["metadatas"])
        }

    def chunk_ids_for_source(self, source: str) -> list[str]:
        return [cid for cid, _, _ in self._scan(include=[], where={"source": source})]

    def get_embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        try:
            got = self._col.get(ids=list(ids), include=["embeddings"])
        except Exception as exc:
            raise StoreError(f"Chroma read failed: {exc}") from exc
        return {
            cid: np.asarray(vec, dtype=np.float32)
            for cid, vec in zip(got["ids"], got["embeddings"], strict=True)
        }

    def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        if not ids:
            return []
        try:
            got = self._col.get(ids=list(ids), include=["documents", "metadatas"])
        except Exception as exc:
            raise StoreError(f"Chroma read failed: {exc}") from exc
        by_id = {
            cid: _chunk(cid, doc or "", meta)
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }
        return [by_id[i] for i in ids if i in by_id]

    def dense_search(
        self, vector: np.ndarray, k: int, filters: SearchFilter | None = None
    ) -> list[ScoredChunk]:
        # after a flush BM25 holds exactly Chroma's chunks: its length saves a count call per query
        total = len(self._lexical) if not self._dirty else self._col.count()
        if total == 0 or k <= 0:
            return []
        where = self._where(filters)
        # a source prefix cannot be expressed in Chroma's filter language: over-fetch and filter here
        n = min(total, k * 5 if filters and filters.source_prefix else k)
        try:
            res = self._col.query(
                query_embeddings=[np.asarray(vector, dtype=np.float32)],
                n_results=n,
                where=where,
                include=["documents", "metadatas", "distances"],
            )
        except Exception as exc:
            raise StoreError(f"Chroma query failed: {exc}") from exc
        out: list[ScoredChunk] = []
        for cid, doc, meta, dist in zip(
            res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True
        ):
            chunk = _chunk(cid, doc or "", meta)
            if filters and not filters.matches(chunk.source, chunk.tags, chunk.collection):
                continue
            out.append(ScoredChunk(chunk=chunk, score=1.0 - float(dist)))
            if len(out) == k:
                break
        return out

    def _where(self, filters: SearchFilter | None) -> dict[str, Any] | None:
        """Chroma's where clause for the tags and the collection of ``filters`` (every result is checked
        against the whole filter again, so this only has to let through everything that matches)."""
        if filters is None:
            return None
        clauses: list[dict[str, Any]] = [{_TAG_PREFIX + t: True} for t in filters.tags]
        if filters.collection is not None:
            clause = self._collection_clause(filters.collection)
            if clause is not None:
                clauses.append(clause)
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def _collection_clause(self, name: str) -> dict[str, Any] | None:
        """Only collection ``name``. For the default collection: every other collection excluded (the
        names the BM25 rows know), because ``$nin`` also lets through chunks without the key, stored before
        collections existed; None when the index holds no other collection."""
        if name != DEFAULT_COLLECTION:
            return {"collection": name}
        others = sorted(set(self._lexical.collections) - {DEFAULT_COLLECTION})
        return {"collection": {"$nin": others}} if others else None

    def lexical_search(self, query: str, k: int, filters: SearchFilter | None = None) -> list[ScoredChunk]:
        self.flush()
        rows = self._lexical.search(query, k, self._lexical.allowed(filters))
        if not rows:
            return []
        chunks = {c.chunk_id: c for c in self.get_chunks([self._lexical.ids[r] for r, _ in rows])}
        return [
            ScoredChunk(chunk=chunks[self._lexical.ids[r]], score=s)
            for r, s in rows
            if self._lexical.ids[r] in chunks
        ]

    def term_counts(self, terms: Sequence[str], collection: str | None = None) -> dict[str, int]:
        self.flush()
        return self._lexical.term_counts(terms, collection)

    def count_chunks(self) -> int:
        return int(self._col.count())

    def count_documents(self) -> int:
        return len(set(self._lexical.sources)) if not self._dirty else len(self.source_hashes())

    def lexical_count(self) -> int:
        return len(self._lexical)

    def health(self) -> IndexHealth:
        try:
            dense = self._col.count()
        except Exception as exc:
            return IndexHealth(ok=False, detail=f"Chroma unreadable: {exc}")
        lexical = len(self._lexical)
        if dense != lexical and not self._dirty:
            return IndexHealth(
                ok=False, detail=f"BM25 index has {lexical} chunks, Chroma {dense}; re-ingest to repair"
            )
        return IndexHealth(ok=True, detail=f"{dense} chunks in Chroma and BM25")
