"""Amazon S3 Vectors adapter: a vector index billed per GB stored and per query, with no instances.

The request layout (keys, metadata, filters, the index definition) is in
:mod:`shared.stores.s3vectors_requests`. This module sends those requests with boto3's ``s3vectors``
client and maps the service onto the :class:`~shared.stores.base.VectorStore` port:

- **Dense leg**: ``QueryVectors`` with the query vector, the filter applied by the service before the
  search (ENHANCED index mode). Cosine similarity is ``1 - distance``.
- **Lexical leg**: the service's full-text search (BM25 over the ``text`` key, ``queryTexts`` without a
  vector) when the index has that text search configuration and it is ACTIVE; otherwise (an index created
  without it, or while the service still builds it) BM25 computed here over a listing of the index. The
  two legs are fused by :mod:`shared.retrieval` as for every store, not by the service's hybrid query:
  the answerer's confidence uses each leg's ranks, which a fused result no longer has. ``health()`` (and
  so ``status``) says which lexical leg is in use.
- **Listings** (sources and their hashes, a document's chunk ids, counts): S3 Vectors has no aggregation,
  so they come from one ``ListVectors`` pass (1,000 vectors a page), kept in memory and reused while the
  index version is unchanged; this store's own writes update it in place.
- **Index version and embedder**: a manifest vector (:data:`MANIFEST_KEY`) holds the embedder that built
  the index and a token renewed by every :meth:`flush` that follows a write. A process reads it at most
  every :data:`VERSION_TTL_S` seconds. S3 Vectors writes are strongly consistent: a flushed write is
  visible to every reader.
- **Writes** go in batches within the service limits, split and retried when throttled
  (:mod:`shared.stores.s3vectors_client`, which also maps the errors).

Errors: throttling, 5xx, timeouts and unreachable endpoints → :class:`StoreUnavailableError`; a missing
bucket, refused permissions and invalid requests → :class:`StoreError` with what to check. A chunk whose
metadata the service would refuse (over 2 KB filterable or 40 KB in all) fails its document with a
:class:`LoaderError` before anything is written.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.chunking import embedding_text
from shared.errors import ConfigError, EmbedderMismatchError, LoaderError, StoreError
from shared.models import Chunk, IndexHealth, ScoredChunk, SearchFilter, utc_timestamp
from shared.stores import s3vectors_requests as rq
from shared.stores.base import check_embeddings
from shared.stores.s3vectors_catalog import Catalog
from shared.stores.s3vectors_client import VectorsClient, build_client

if TYPE_CHECKING:
    from shared.embeddings.base import Embedder
    from shared.settings import Settings

log = logging.getLogger(__name__)

VERSION_TTL_S = 2.0
UNVERSIONED = "none"
TERM_LOOKUP_THREADS = 8


class S3VectorsStore:
    """:class:`~shared.stores.base.VectorStore` on one S3 Vectors index of a vector bucket.

    ``client`` is used as given; otherwise one is built once (per process: a Lambda cold start). Nothing
    is sent until the first operation, which reads the index (and creates it on the first write when it
    is missing and the role may) and checks the manifest."""

    def __init__(
        self,
        *,
        bucket: str,
        index: str,
        embedder_name: str,
        dimension: int,
        client: Any = None,
        region: str | None = None,
        timeout_s: float = 10.0,
        lexical_text: Callable[[Chunk], str] = embedding_text,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= dimension <= rq.MAX_DIMENSION:
            raise ConfigError(
                f"S3 Vectors holds vectors of 1 to {rq.MAX_DIMENSION} dimensions, not {dimension}"
            )
        self.client = client if client is not None else build_client(region, timeout_s=timeout_s)
        self.transport = VectorsClient(self.client, bucket=bucket, index=index, sleep=sleep)
        self.bucket = bucket
        self.index = index
        self.embedder_name = embedder_name
        self.dimension = dimension
        self._lexical_text = lexical_text
        self._ready = False
        self._text_search = "absent"  # "active", "building" or "absent" (from GetIndex)
        self._manifest_written = False
        self._dirty = False
        self._version = UNVERSIONED
        self._version_read_at: float | None = None
        self._catalog: Catalog | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, embedder: Embedder, client: Any = None) -> S3VectorsStore:
        if not settings.s3vectors_bucket:
            raise ConfigError("store 's3vectors' needs s3vectors_bucket")
        return cls(
            bucket=settings.s3vectors_bucket,
            index=settings.s3vectors_index,
            embedder_name=embedder.name,
            dimension=embedder.dimension,
            client=client,
            region=settings.aws_region,
            timeout_s=settings.s3vectors_timeout_s,
        )

    # ------------------------------------------------------------------ plumbing

    @property
    def where(self) -> str:
        return self.transport.where

    def _backend(self, what: str) -> AbstractContextManager[None]:
        return self.transport.backend(what)

    def _call(self, operation: str, what: str, **request: Any) -> dict[str, Any]:
        return self.transport.call(operation, what, **request)

    def _open(self, *, write: bool = False) -> bool:
        """Read the index (once): check its dimension and metric, learn its text search state, check the
        manifest. A missing index is created on a write; for a read it means nothing is ingested yet."""
        if self._ready:
            return True
        index = self._get_index()
        if index is None:
            if not write:
                return False  # the index appears with the first ingest
            with self._backend("index creation"):
                index = self._create_index()
        self._check_index(index)
        self._check_manifest()
        self._ready = True
        return True

    def _get_index(self) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        with self._backend("index lookup"):
            try:
                index: dict[str, Any] = self.client.get_index(
                    vectorBucketName=self.bucket, indexName=self.index
                )["index"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                    raise
                return None
        return index

    def _create_index(self) -> dict[str, Any]:
        """Create the index (another process may just have: then use that one)."""
        from botocore.exceptions import ClientError

        try:
            self.client.create_index(
                **rq.create_index_request(self.bucket, self.index, dimension=self.dimension)
            )
            log.info("created %s (dimension %d)", self.where, self.dimension)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConflictException":
                raise
        index: dict[str, Any] = self.client.get_index(vectorBucketName=self.bucket, indexName=self.index)[
            "index"
        ]
        return index

    def _check_index(self, index: dict[str, Any]) -> None:
        if int(index.get("dimension", 0)) != self.dimension:
            raise EmbedderMismatchError(
                f"{self.where} holds vectors of dimension {index.get('dimension')} but embedder "
                f"'{self.embedder_name}' makes {self.dimension}; use another s3vectors_index"
            )
        if index.get("distanceMetric") != rq.DISTANCE_METRIC:
            raise StoreError(
                f"{self.where} uses the {index.get('distanceMetric')} metric; RAG Explorer needs "
                f"{rq.DISTANCE_METRIC}: use another s3vectors_index"
            )
        configs = (index.get("metadataConfiguration") or {}).get("textSearchConfigurations") or []
        text = [c for c in configs if c.get("metadataKey") == rq.TEXT_KEY]
        enhanced = index.get("indexMode", rq.INDEX_MODE) == rq.INDEX_MODE
        if not text or not enhanced:
            self._text_search = "absent"
        else:
            self._text_search = "building" if text[0].get("status") == "BUILDING" else "active"

    def _manifest(self) -> dict[str, Any] | None:
        response = self._call(
            "get_vectors",
            "manifest read",
            **rq.keys_request(self.bucket, self.index, [rq.MANIFEST_KEY], returnMetadata=True),
        )
        for vector in response.get("vectors") or []:
            if vector.get("key") == rq.MANIFEST_KEY:
                return rq.read_manifest(vector.get("metadata"))
        return None

    def _check_manifest(self) -> None:
        manifest = self._manifest()
        if manifest is None:
            self._version, self._version_read_at = UNVERSIONED, time.monotonic()
            return
        built_with = manifest.get("embedder")
        if built_with != self.embedder_name or manifest.get("dimension") != self.dimension:
            raise EmbedderMismatchError(
                f"{self.where} was built with embedder '{built_with}' but '{self.embedder_name}' is "
                "configured; use the same embedder, or another s3vectors_index"
            )
        if manifest.get("template_version") != rq.TEMPLATE_VERSION:
            raise StoreError(
                f"{self.where} has layout version {manifest.get('template_version')}, this version of RAG "
                f"Explorer uses {rq.TEMPLATE_VERSION}; use another s3vectors_index and re-ingest"
            )
        self._manifest_written = True
        self._version, self._version_read_at = str(manifest.get("version", UNVERSIONED)), time.monotonic()

    def _write_manifest(self) -> None:
        """Renew the index version. The listing kept in memory stays valid when it was listed at the
        version this replaces (the one read last); otherwise it is listed again when next needed."""
        previous = self._version
        version = f"{utc_timestamp()}-{uuid.uuid4().hex[:12]}"
        record = rq.manifest_record(embedder=self.embedder_name, dimension=self.dimension, version=version)
        self.transport.write("put_vectors", "vectors", [record], "manifest write")
        self._manifest_written = True
        self._version, self._version_read_at = version, time.monotonic()
        if self._catalog is not None:
            if self._catalog.version == previous:
                self._catalog.version = version
            else:
                self._catalog = None

    # ------------------------------------------------------------------ writes

    def upsert(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        check_embeddings(chunks, embeddings, self.dimension)
        if not chunks:
            return
        now = utc_timestamp()
        records = []
        for chunk, vector in zip(chunks, embeddings, strict=True):
            metadata = rq.chunk_metadata(chunk, self._lexical_text(chunk), now)
            problem = rq.metadata_problem(metadata)
            if problem is None and len(chunk.chunk_id) > rq.MAX_KEY_CHARS:
                problem = f"its chunk id is over {rq.MAX_KEY_CHARS} characters"
            if problem is not None:
                raise LoaderError(f"cannot be stored in S3 Vectors: {problem}", source=chunk.source)
            records.append(rq.vector_record(chunk.chunk_id, vector, metadata))
        self._open(write=True)
        if not self._manifest_written:
            self._write_manifest()
        self._dirty = True
        self.transport.write("put_vectors", "vectors", records, "upsert")
        if self._catalog is not None:
            self._catalog.put({r["key"]: r["metadata"] for r in records})

    def delete_ids(self, ids: Sequence[str]) -> None:
        ids = [i for i in dict.fromkeys(ids) if i != rq.MANIFEST_KEY]
        if not ids or not self._open():
            return
        self._dirty = True
        self.transport.write("delete_vectors", "keys", ids, "delete")
        if self._catalog is not None:
            self._catalog.drop(ids)

    def delete_source(self, source: str) -> int:
        ids = self.chunk_ids_for_source(source)
        self.delete_ids(ids)
        return len(ids)

    def flush(self) -> None:
        """Writes are visible at once (strong consistency); after a write, renew the index version."""
        if not self._dirty:
            return
        self._remote_version(fresh=True)  # another process may have written meanwhile
        self._write_manifest()
        self._dirty = False

    # ------------------------------------------------------------------ version and listing

    def _remote_version(self, *, fresh: bool = False) -> str:
        if not self._open():
            return UNVERSIONED
        now = time.monotonic()
        if fresh or self._version_read_at is None or now - self._version_read_at >= VERSION_TTL_S:
            manifest = self._manifest()
            self._version = str((manifest or {}).get("version", UNVERSIONED))
            self._version_read_at = now
        return self._version

    def index_version(self) -> str:
        """The manifest's token (renewed by every flush after a write), read at most every
        :data:`VERSION_TTL_S` seconds."""
        return self._remote_version()

    def _listing(self, *, fresh: bool = True) -> Catalog:
        """Every chunk's metadata, listed again when the index version moved since the last listing
        (``fresh``: read the version now, as before a write; else at most every :data:`VERSION_TTL_S`).
        While this store has unflushed writes, the listing it holds already has them."""
        if not self._open():
            return Catalog(UNVERSIONED, {})
        version = self._version if self._dirty else self._remote_version(fresh=fresh)
        if self._catalog is None or self._catalog.version != version:
            entries: dict[str, dict[str, Any]] = {}
            token: str | None = None
            while True:
                page = self._call(
                    "list_vectors", "listing", **rq.list_request(self.bucket, self.index, token)
                )
                for vector in page.get("vectors") or []:
                    if vector.get("key") != rq.MANIFEST_KEY:
                        entries[str(vector["key"])] = vector.get("metadata") or {}
                token = page.get("nextToken")
                if not token:
                    break
            self._catalog = Catalog(version, entries)
        return self._catalog

    # ------------------------------------------------------------------ reads

    def source_hashes(self) -> dict[str, str]:
        return self._listing().source_hashes()

    def chunk_ids_for_source(self, source: str) -> list[str]:
        return self._listing().ids_of(source)

    def count_chunks(self) -> int:
        return len(self._listing())

    def lexical_count(self) -> int:
        """The service's full-text search covers every vector; the local BM25 is built from the listing."""
        return self.count_chunks()

    def count_documents(self) -> int:
        return len(self._listing().source_hashes())

    def get_embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        wanted = [i for i in dict.fromkeys(ids) if i != rq.MANIFEST_KEY]
        if not wanted or not self._open():
            return {}
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(wanted), rq.MAX_GET_VECTORS):
            request = rq.keys_request(
                self.bucket, self.index, wanted[start : start + rq.MAX_GET_VECTORS], returnData=True
            )
            for vector in self._call("get_vectors", "read by id", **request).get("vectors") or []:
                data = (vector.get("data") or {}).get("float32")
                if data is not None:
                    found[str(vector["key"])] = np.asarray(data, dtype=np.float32)
        return found

    def _query(self, what: str, request: dict[str, Any]) -> list[dict[str, Any]]:
        hits: list[dict[str, Any]] = self._call("query_vectors", what, **request).get("vectors") or []
        return [
            h for h in hits if h.get("key") != rq.MANIFEST_KEY and rq.CHUNK_KEY in (h.get("metadata") or {})
        ]

    def _scored(
        self,
        hits: list[dict[str, Any]],
        k: int,
        filters: SearchFilter | None,
        score: Callable[[int, dict[str, Any]], float],
    ) -> list[ScoredChunk]:
        found = [
            ScoredChunk(chunk=rq.chunk_from_metadata(str(h["key"]), h["metadata"]), score=score(i, h))
            for i, h in enumerate(hits)
        ]
        if rq.needs_exact_prefix_check(filters):
            assert filters is not None
            found = [s for s in found if filters.matches(s.chunk.source, s.chunk.tags, s.chunk.collection)]
        return found[:k]

    def _top_k(self, k: int, filters: SearchFilter | None) -> int:
        """Ask for one more (the manifest may be among the results); for a prefix the service can only
        narrow to its folder, ask for as many as it returns."""
        return rq.MAX_TOP_K if rq.needs_exact_prefix_check(filters) else k + 1

    def dense_search(
        self, vector: np.ndarray, k: int, filters: SearchFilter | None = None
    ) -> list[ScoredChunk]:
        vec = np.asarray(vector, dtype=np.float32)
        if k <= 0 or not np.any(vec) or not self._open():
            return []
        request = rq.query_request(
            self.bucket, self.index, top_k=self._top_k(k, filters), vector=vec.tolist(), filters=filters
        )
        hits = self._query("vector search", request)
        return self._scored(hits, k, filters, lambda _, h: rq.cosine_from_distance(h.get("distance", 1.0)))

    @property
    def lexical_mode(self) -> str:
        """``service``: S3 Vectors' full-text search; ``local``: BM25 here over the listed chunks."""
        self._open()
        return "service" if self._text_search == "active" else "local"

    def lexical_search(self, query: str, k: int, filters: SearchFilter | None = None) -> list[ScoredChunk]:
        if k <= 0 or not query.strip() or not self._open():
            return []
        if self.lexical_mode == "local":
            return self._listing(fresh=False).lexical_search(query, k, filters)
        request = rq.query_request(
            self.bucket, self.index, top_k=self._top_k(k, filters), text=query, filters=filters
        )
        hits = self._query("full-text search", request)

        def bm25(rank: int, hit: dict[str, Any]) -> float:
            scores = (hit.get("scores") or {}).get("bm25Scores") or []
            text = [float(x["score"]) for x in scores if x.get("metadataKey") == rq.TEXT_KEY and "score" in x]
            return text[0] if text else 1.0 / (rank + 1)

        return self._scored(hits, k, filters, bm25)

    def term_counts(self, terms: Sequence[str], collection: str | None = None) -> dict[str, int]:
        """Chunks holding each term. With the service's full-text search a count stops at
        :data:`MAX_TOP_K` (the answerer only asks whether a term is used at all, or more than once)."""
        terms = list(dict.fromkeys(terms))
        if not terms:
            return {}
        if not self._open():
            return dict.fromkeys(terms, 0)
        if self.lexical_mode == "local":
            return self._listing(fresh=False).term_counts(terms, collection)
        filters = SearchFilter(collection=collection) if collection is not None else None

        def count(term: str) -> int:
            if not term.strip():
                return self.count_chunks()
            request = rq.query_request(
                self.bucket, self.index, top_k=rq.MAX_TOP_K, text=term, filters=filters, metadata=False
            )
            return sum(
                1
                for h in self._call("query_vectors", "vocabulary lookup", **request).get("vectors") or []
                if h.get("key") != rq.MANIFEST_KEY
            )

        with ThreadPoolExecutor(max_workers=min(TERM_LOOKUP_THREADS, len(terms))) as pool:
            return dict(zip(terms, pool.map(count, terms), strict=True))

    def health(self) -> IndexHealth:
        try:
            if not self._open():
                return IndexHealth(
                    ok=True,
                    detail=f"{self.where} does not exist yet: nothing ingested (or check s3vectors_bucket)",
                )
            count = self.count_chunks()
        except StoreError as exc:
            return IndexHealth(ok=False, detail=str(exc))
        lexical = {
            "active": "S3 Vectors full-text search (BM25 on 'text')",
            "building": "local BM25 over the listed chunks until the service's full-text search is built",
            "absent": "local BM25 over the listed chunks (the index has no full-text search on 'text')",
        }[self._text_search]
        return IndexHealth(ok=True, detail=f"{count} chunks in {self.where}; lexical leg: {lexical}")
