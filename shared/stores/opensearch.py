"""OpenSearch adapter: the dense leg is a k-NN query, the lexical leg a BM25 ``match``; fusion is client side.

One index holds one document per chunk (``_id`` = ``chunk_id``). It is created on first use from the versioned
template :func:`index_body`; its mapping ``_meta`` records the template version, the embedder name and the
vector dimension, and an index built by another embedder is refused (:class:`EmbedderMismatchError`). An index
of an older template version that only lacks fields (version 1: no ``collection`` and ``url``) is upgraded in
place before the first write; until then, and for the chunks written before, reads see the default collection.

Writes are not refreshed one by one: the store remembers that it wrote and refreshes the index once before the
next search-based read (counts, listings, searches, ``delete_by_query``), so a process always reads its own
writes, as with the other stores. Reads by id (``mget``) are real time anyway.

The index version (:meth:`OpenSearchStore.index_version`) is read from what searches see: the number of
chunks and the newest ``indexed_at`` (one ``size: 0`` search with a ``max`` aggregation, at most once per
:data:`VERSION_TTL_S` per process). Every upsert stamps its chunks with the time, and a removal lowers the
count, so any ingest or removal that changes the index changes it, and it changes only once the change is
searchable (a version written at ingest could run ahead of the refresh). It needs no write and no permission
beyond searching: no version document among the chunks (it would be counted, searched and aggregated with
them), no mapping update, and not the index's write statistics, which restart with a node.

Backend errors are mapped: unreachable, timeouts, HTTP 429 and 5xx → :class:`StoreUnavailableError` (may
succeed when retried); any other failure → :class:`StoreError`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from opensearchpy import ConnectionError as OSConnectionError
from opensearchpy import ConnectionTimeout as OSConnectionTimeout
from opensearchpy import (
    ImproperlyConfigured,
    OpenSearch,
    OpenSearchException,
    RequestsHttpConnection,
    TransportError,
    helpers,
)

from shared.chunking import embedding_text
from shared.errors import ConfigError, EmbedderMismatchError, StoreError, StoreUnavailableError
from shared.extras import needs_extra
from shared.models import DEFAULT_COLLECTION, Chunk, IndexHealth, ScoredChunk, SearchFilter, utc_timestamp
from shared.stores.base import check_embeddings
from shared.stores.opensearch_queries import (
    HIT_SOURCE_EXCLUDES,
    TEMPLATE_VERSION,
    UPGRADABLE_VERSIONS,
    VECTOR_FIELD,
    cosine_from_score,
    index_body,
    knn_query,
    match_query,
    term_counts_query,
    upgrade_body,
)

__all__ = ["TEMPLATE_VERSION", "OpenSearchStore", "build_client", "cosine_from_score", "sigv4_auth"]

if TYPE_CHECKING:
    from shared.embeddings.base import Embedder
    from shared.settings import Settings

log = logging.getLogger(__name__)

_PAGE = 1000  # ids per mget, hits per search_after page, buckets per composite page
_BULK_DOCS = 500
#: Seconds a process keeps the index version it read (another process's ingest shows within this).
VERSION_TTL_S = 2.0
#: The version while the index does not exist (nothing ingested, and this role may not create it).
UNVERSIONED = "none"
_BULK_BYTES = (
    8 * 1024 * 1024
)  # below the 10 MiB request limit of the smallest Amazon OpenSearch Service nodes


def _reason(exc: TransportError) -> str:
    info = exc.info
    if isinstance(info, dict):
        error = info.get("error")
        if isinstance(error, dict):
            causes = error.get("root_cause") or [error]
            first = causes[0] if isinstance(causes[0], dict) else error
            return f"{first.get('type', 'error')}: {first.get('reason', '')}".strip()
        if error:
            return str(error)
    if isinstance(info, Exception):
        return f"{type(info).__name__}: {info}"
    return str(exc.error)


def _item_reason(item: dict[str, Any]) -> str:
    error = item.get("error")
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}"
    return str(error or f"HTTP {item.get('status')}")


def build_client(
    url: str,
    *,
    http_auth: Any = None,
    timeout_s: float = 10.0,
    connection_class: type | None = None,
) -> OpenSearch:
    """An ``OpenSearch`` client for ``url`` (http or https; certificates are verified for https)."""
    kwargs: dict[str, Any] = {
        "hosts": [url],
        "http_auth": http_auth,
        "timeout": timeout_s,
        "verify_certs": True,  # only used for https, and never turned off
        "max_retries": 2,
        "retry_on_timeout": False,
    }
    if connection_class is not None:
        kwargs["connection_class"] = connection_class
    try:
        return OpenSearch(**kwargs)
    except (ImproperlyConfigured, ValueError) as exc:
        raise ConfigError(f"cannot build an OpenSearch client for {url}: {exc}") from exc


def sigv4_auth(region: str | None, *, service: str = "es") -> Any:
    """SigV4 request signing (``requests-aws4auth``) with the default boto3 credential chain, refreshed as
    the credentials expire (Lambda role, instance profile, SSO...)."""
    with needs_extra("aws", "SigV4 signing for OpenSearch"):
        import boto3
        from requests_aws4auth import AWS4Auth

    session = boto3.Session()
    region = (
        region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or session.region_name
    )
    if not region:
        raise ConfigError("opensearch_auth 'sigv4' needs a region: set aws_region or AWS_REGION")
    credentials = session.get_credentials()
    if credentials is None:
        raise ConfigError("opensearch_auth 'sigv4' found no AWS credentials (environment, profile or role)")
    return AWS4Auth(refreshable_credentials=credentials, region=region, service=service)


class OpenSearchStore:
    """:class:`~shared.stores.base.VectorStore` on one OpenSearch index.

    ``client`` is used as given; otherwise one is built from ``url`` (with ``http_auth``, ``timeout_s`` and
    ``connection_class``). Nothing is sent until the first operation, which creates the index if needed and
    checks its ``_meta``. ``lexical_text`` maps a chunk to the text the BM25 leg indexes.
    """

    def __init__(
        self,
        *,
        client: OpenSearch | None = None,
        index: str,
        embedder_name: str,
        dimension: int,
        lexical_text: Callable[[Chunk], str] = embedding_text,
        url: str | None = None,
        http_auth: Any = None,
        timeout_s: float = 10.0,
        connection_class: type | None = None,
    ) -> None:
        if client is None:
            if not url:
                raise ConfigError("OpenSearchStore needs a client or a url")
            client = build_client(
                url, http_auth=http_auth, timeout_s=timeout_s, connection_class=connection_class
            )
        self.client = client
        self.index = index
        self.url = url
        self.embedder_name = embedder_name
        self.dimension = dimension
        self.timeout_s = timeout_s
        self._lexical_text = lexical_text
        self._ready = False
        self._dirty = False
        self._outdated: dict[str, Any] | None = None  # the _meta of an index to upgrade before writing
        self._version = UNVERSIONED
        self._version_read_at: float | None = None  # None: read it again (never read, or this store wrote)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, embedder: Embedder, client: OpenSearch | None = None
    ) -> OpenSearchStore:
        """The store configured by ``settings`` (``opensearch_*``, ``aws_region``) for ``embedder``."""
        url = settings.opensearch_url
        if client is None and not url:
            raise ConfigError("store 'opensearch' needs opensearch_url")
        http_auth: Any = None
        connection_class: type | None = None
        if client is None:
            if settings.opensearch_auth == "basic":
                if not settings.opensearch_username or not settings.opensearch_password:
                    raise ConfigError(
                        "opensearch_auth 'basic' needs opensearch_username and opensearch_password"
                    )
                http_auth = (settings.opensearch_username, settings.opensearch_password)
            elif settings.opensearch_auth == "sigv4":
                http_auth = sigv4_auth(settings.aws_region)
                connection_class = RequestsHttpConnection  # AWS4Auth is a requests auth hook
        return cls(
            client=client,
            index=settings.opensearch_index,
            embedder_name=embedder.name,
            dimension=embedder.dimension,
            lexical_text=embedding_text,
            url=url,
            http_auth=http_auth,
            timeout_s=settings.opensearch_timeout_s,
            connection_class=connection_class,
        )

    # ------------------------------------------------------------------ plumbing

    @property
    def _where(self) -> str:
        return f"the OpenSearch index '{self.index}'" + (f" at {self.url}" if self.url else "")

    @contextmanager
    def _backend(self, what: str) -> Iterator[None]:
        """Map opensearch-py errors raised while doing ``what`` onto the core's store errors."""
        try:
            yield
        except StoreError:
            raise
        except OSConnectionTimeout as exc:
            raise StoreUnavailableError(
                f"OpenSearch {what} timed out (timeout {self.timeout_s:g} s): {_reason(exc)}"
            ) from exc
        except OSConnectionError as exc:  # includes TLS errors
            raise StoreUnavailableError(f"OpenSearch is unreachable ({what}): {_reason(exc)}") from exc
        except TransportError as exc:
            status = exc.status_code
            if not isinstance(status, int) or status >= 500 or status == 429:
                raise StoreUnavailableError(
                    f"OpenSearch {what} failed (HTTP {status}, retry later): {_reason(exc)}"
                ) from exc
            if status in (401, 403):
                raise StoreError(
                    f"OpenSearch refused {what} (HTTP {status}); check opensearch_auth and its credentials: "
                    f"{_reason(exc)}"
                ) from exc
            raise StoreError(f"OpenSearch {what} failed (HTTP {status}): {_reason(exc)}") from exc
        except (OpenSearchException, ImproperlyConfigured) as exc:
            raise StoreError(f"OpenSearch {what} failed: {exc}") from exc

    def _ensure_index(self, *, write: bool = False) -> bool:
        """Create the index from the template if it is missing, then check its ``_meta`` (once).

        Returns ``False`` when the index does not exist and this role may not create it (the query and
        health functions may only read; the ingest function creates the index with the first document):
        reads then see an empty index, and ``write=True`` raises :class:`StoreError`. With ``write=True``
        an index of an upgradable older template version is brought up to date first."""
        if not self._ready and not self._open_index(write=write):
            return False
        if write and self._outdated is not None:
            with self._backend("mapping upgrade"):
                self.client.indices.put_mapping(index=self.index, body=upgrade_body(self._outdated))
            log.info("upgraded OpenSearch index %s to template v%d", self.index, TEMPLATE_VERSION)
            self._outdated = None
        return True

    def _open_index(self, *, write: bool) -> bool:
        """Create the index if it is missing (and this role may), then check its ``_meta``."""
        with self._backend("index setup"):
            if not self.client.indices.exists(index=self.index):
                body = index_body(embedder_name=self.embedder_name, dimension=self.dimension)
                try:
                    self.client.indices.create(index=self.index, body=body)
                    log.info("created OpenSearch index %s (template v%d)", self.index, TEMPLATE_VERSION)
                except TransportError as exc:  # created meanwhile by another process: fine
                    if exc.status_code == 403 and not write:
                        return False  # not created yet, and not ours to create: empty until ingest
                    if exc.error != "resource_already_exists_exception":
                        raise
            mappings = self.client.indices.get_mapping(index=self.index)
        for mapping in mappings.values():
            self._check_meta(mapping.get("mappings", {}).get("_meta") or {})
        self._ready = True
        return True

    def _check_meta(self, meta: dict[str, Any]) -> None:
        built_with = meta.get("embedder")
        if not built_with:
            raise StoreError(
                f"{self._where} exists but was not created by RAG Explorer (no _meta.embedder in its "
                "mapping); choose another opensearch_index"
            )
        if built_with != self.embedder_name:
            raise EmbedderMismatchError(
                f"{self._where} was built with embedder '{built_with}' but '{self.embedder_name}' is "
                "configured; use the same embedder, or a new opensearch_index, or delete the index and "
                "re-ingest"
            )
        if meta.get("dimension") != self.dimension:
            raise EmbedderMismatchError(
                f"{self._where} holds vectors of dimension {meta.get('dimension')} but embedder "
                f"'{self.embedder_name}' makes {self.dimension}; delete the index and re-ingest"
            )
        if meta.get("template_version") in UPGRADABLE_VERSIONS:
            self._outdated = meta
        elif meta.get("template_version") != TEMPLATE_VERSION:
            raise StoreError(
                f"{self._where} was created from index template version {meta.get('template_version')}, "
                f"this version of RAG Explorer uses {TEMPLATE_VERSION}; use a new opensearch_index and "
                "re-ingest"
            )

    def _read_own_writes(self) -> bool:
        """Before a search-based read: make this store's pending writes visible. ``False``: there is no
        index yet (nothing was ingested), so the read finds nothing."""
        if not self._ensure_index():
            return False
        if self._dirty:
            self.flush()
        return True

    def _doc(self, chunk: Chunk, vector: np.ndarray, now: str) -> dict[str, Any]:
        return {
            VECTOR_FIELD: np.asarray(vector, dtype=np.float32).tolist(),
            "text": self._lexical_text(chunk),
            "display_text": chunk.text,
            "chunk_id": chunk.chunk_id,
            "source": chunk.source,
            "content_hash": chunk.content_hash,
            "tags": list(chunk.tags),
            "heading_path": list(chunk.heading_path),
            "title": chunk.title,
            "position": chunk.position,
            "page": chunk.page,
            "n_tokens": chunk.n_tokens,
            "indexed_at": now,
            "collection": chunk.collection,
            "url": chunk.url,
        }

    @staticmethod
    def _chunk(src: dict[str, Any]) -> Chunk:
        def as_list(value: Any) -> list[str]:
            if value is None:
                return []
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]

        return Chunk(
            chunk_id=str(src["chunk_id"]),
            source=str(src["source"]),
            title=str(src.get("title") or "") or None,
            text=str(src.get("display_text") or ""),
            heading_path=as_list(src.get("heading_path")),
            position=int(src.get("position") or 0),
            page=int(src["page"]) if src.get("page") is not None else None,
            content_hash=str(src.get("content_hash") or ""),
            tags=as_list(src.get("tags")),
            n_tokens=int(src.get("n_tokens") or 0),
            url=str(src["url"]) if src.get("url") else None,
            collection=str(src.get("collection") or DEFAULT_COLLECTION),
        )

    def _bulk(self, actions: list[dict[str, Any]], what: str) -> None:
        failures: list[dict[str, Any]] = []
        with self._backend(what):
            for ok, result in helpers.streaming_bulk(
                self.client,
                actions,
                chunk_size=_BULK_DOCS,
                max_chunk_bytes=_BULK_BYTES,
                raise_on_error=False,
                max_retries=2,
                initial_backoff=1,
            ):
                if ok:
                    continue
                op, item = next(iter(result.items()))
                if op == "delete" and item.get("status") == 404:  # already gone
                    continue
                failures.append(item)
        if failures:
            first = failures[0]
            status = first.get("status")
            message = (
                f"OpenSearch {what}: {len(failures)} of {len(actions)} operations failed; first "
                f"(id {first.get('_id')}, HTTP {status}): {_item_reason(first)}"
            )
            if isinstance(status, int) and (status >= 500 or status == 429):
                raise StoreUnavailableError(message)
            raise StoreError(message)

    def _mget(self, ids: Sequence[str], source: dict[str, Any]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(ids))
        with self._backend("read by id"):
            for start in range(0, len(unique), _PAGE):
                resp = self.client.mget(
                    index=self.index, body={"ids": unique[start : start + _PAGE]}, **source
                )
                for doc in resp["docs"]:
                    if doc.get("found"):
                        found[str(doc["_id"])] = doc.get("_source") or {}
        return found

    def _composite(self, fields: Sequence[str], what: str) -> Iterator[dict[str, Any]]:
        """Every distinct combination of the keyword ``fields``, paged with a composite aggregation."""
        if not self._read_own_writes():
            return
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": _PAGE,
                "sources": [{f: {"terms": {"field": f}}} for f in fields],
            }
            if after is not None:
                composite["after"] = after
            with self._backend(what):
                resp = self.client.search(
                    index=self.index, body={"size": 0, "aggs": {"keys": {"composite": composite}}}
                )
            agg = resp["aggregations"]["keys"]
            buckets = agg.get("buckets") or []
            for bucket in buckets:
                yield bucket["key"]
            after = agg.get("after_key")
            if not buckets or after is None:
                return

    def _hits(self, body: dict[str, Any], what: str) -> list[dict[str, Any]]:
        with self._backend(what):
            resp = self.client.search(index=self.index, body=body)
        hits: list[dict[str, Any]] = resp["hits"]["hits"]
        return hits

    # ------------------------------------------------------------------ writes

    def upsert(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        check_embeddings(chunks, embeddings, self.dimension)
        if not chunks:
            return
        self._ensure_index(write=True)
        now = utc_timestamp()
        actions = [
            {"_op_type": "index", "_index": self.index, "_id": c.chunk_id, "_source": self._doc(c, v, now)}
            for c, v in zip(chunks, embeddings, strict=True)
        ]
        self._dirty = True
        self._version_read_at = None
        self._bulk(actions, "upsert")

    def delete_ids(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        self._ensure_index(write=True)
        self._dirty = True
        self._version_read_at = None
        self._bulk([{"_op_type": "delete", "_index": self.index, "_id": i} for i in ids], "delete")

    def delete_source(self, source: str) -> int:
        if not self._read_own_writes():
            return 0
        with self._backend("delete_by_query"):
            resp = self.client.delete_by_query(
                index=self.index, body={"query": {"term": {"source": source}}}, refresh=True
            )
        self._version_read_at = None
        if resp.get("failures"):
            raise StoreError(f"OpenSearch delete of {source} failed: {resp['failures'][0]}")
        return int(resp.get("deleted", 0))

    def flush(self) -> None:
        """Refresh the index: every write so far becomes visible to searches."""
        if not self._ensure_index():
            return
        with self._backend("refresh"):
            self.client.indices.refresh(index=self.index)
        self._dirty = False

    def index_version(self) -> str:
        """``<chunks>-<newest indexed_at, epoch ms>`` as searches see them now (this process's own writes
        refreshed first), read again after :data:`VERSION_TTL_S` or a write of this store."""
        if not self._read_own_writes():
            return UNVERSIONED
        now = time.monotonic()
        if self._version_read_at is None or now - self._version_read_at >= VERSION_TTL_S:
            body = {"size": 0, "track_total_hits": True, "aggs": {"newest": {"max": {"field": "indexed_at"}}}}
            with self._backend("index version"):
                resp = self.client.search(index=self.index, body=body)
            total = resp.get("hits", {}).get("total", {})
            count = total.get("value", 0) if isinstance(total, dict) else total
            newest = resp.get("aggregations", {}).get("newest", {}).get("value")
            self._version = f"{int(count or 0)}-{int(newest or 0)}"
            self._version_read_at = now
        return self._version

    # ------------------------------------------------------------------ reads

    def source_hashes(self) -> dict[str, str]:
        """``source -> content_hash``; a source whose chunks disagree (an interrupted update) maps to ``""``,
        so the next ingest re-indexes it."""
        seen: dict[str, str] = {}
        for key in self._composite(["source", "content_hash"], "listing of sources"):
            source, digest = str(key["source"]), str(key["content_hash"])
            seen[source] = digest if source not in seen else ""
        return seen

    def chunk_ids_for_source(self, source: str) -> list[str]:
        if not self._read_own_writes():
            return []
        ids: list[str] = []
        body: dict[str, Any] = {
            "size": _PAGE,
            "_source": False,
            "query": {"bool": {"filter": [{"term": {"source": source}}]}},
            "sort": [{"chunk_id": "asc"}],
        }
        while True:
            hits = self._hits(body, "listing of chunks")
            ids.extend(str(h["_id"]) for h in hits)
            if len(hits) < _PAGE:
                return ids
            body["search_after"] = hits[-1]["sort"]

    def get_embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids or not self._ensure_index():
            return {}
        found = self._mget(ids, {"_source_includes": [VECTOR_FIELD]})
        return {
            cid: np.asarray(src[VECTOR_FIELD], dtype=np.float32)
            for cid, src in found.items()
            if src.get(VECTOR_FIELD) is not None
        }

    def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        if not ids or not self._ensure_index():
            return []
        found = self._mget(ids, {"_source_excludes": HIT_SOURCE_EXCLUDES})
        return [self._chunk(found[i]) for i in ids if i in found]

    def dense_search(
        self, vector: np.ndarray, k: int, filters: SearchFilter | None = None
    ) -> list[ScoredChunk]:
        vec = np.asarray(vector, dtype=np.float32)
        if k <= 0 or not np.any(vec):  # cosine is undefined for a zero vector (OpenSearch rejects it)
            return []
        if not self._read_own_writes():
            return []
        hits = self._hits(knn_query(vec.tolist(), k, filters), "k-NN search")
        return [
            ScoredChunk(chunk=self._chunk(h["_source"]), score=cosine_from_score(h["_score"]))
            for h in hits[:k]
        ]

    def lexical_search(self, query: str, k: int, filters: SearchFilter | None = None) -> list[ScoredChunk]:
        if k <= 0 or not query.strip():
            return []
        if not self._read_own_writes():
            return []
        hits = self._hits(match_query(query, k, filters), "BM25 search")
        return [ScoredChunk(chunk=self._chunk(h["_source"]), score=float(h["_score"])) for h in hits[:k]]

    def term_counts(self, terms: Sequence[str], collection: str | None = None) -> dict[str, int]:
        terms = list(dict.fromkeys(terms))
        if not terms:
            return {}
        if not self._read_own_writes():
            return dict.fromkeys(terms, 0)
        with self._backend("vocabulary lookup"):
            resp = self.client.search(index=self.index, body=term_counts_query(terms, collection))
        buckets = resp.get("aggregations", {}).get("terms", {}).get("buckets", {})
        return {term: int(buckets.get(f"t{i}", {}).get("doc_count", 0)) for i, term in enumerate(terms)}

    def count_chunks(self) -> int:
        if not self._read_own_writes():
            return 0
        with self._backend("count"):
            return int(self.client.count(index=self.index)["count"])

    def lexical_count(self) -> int:
        """One index serves both legs: every chunk is in the BM25 leg."""
        return self.count_chunks()

    def count_documents(self) -> int:
        """Exact (a paged composite aggregation; ``cardinality`` would be approximate)."""
        return sum(1 for _ in self._composite(["source"], "count of documents"))

    def health(self) -> IndexHealth:
        try:
            if not self._ensure_index():
                return IndexHealth(ok=True, detail=f"{self._where} does not exist yet: nothing ingested")
            with self._backend("health check"):
                cluster = self.client.cluster.health(index=self.index)
                status = str(cluster.get("status", "unknown"))
                if status == "red":
                    return IndexHealth(
                        ok=False,
                        detail=f"{self._where} is red ({cluster.get('unassigned_shards', '?')} unassigned "
                        "shards); searches may fail or miss chunks",
                    )
                count = int(self.client.count(index=self.index)["count"])
        except StoreError as exc:
            return IndexHealth(ok=False, detail=str(exc))
        return IndexHealth(ok=True, detail=f"{count} chunks in OpenSearch index '{self.index}' ({status})")
