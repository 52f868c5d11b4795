"""The exact requests the OpenSearch store sends, and how it maps backend errors (no network).

A real ``opensearchpy.OpenSearch`` client runs over a fake ``Connection`` that records every request (method,
path, query parameters, decoded body) and answers like a cluster would, so the bodies asserted here are what
goes on the wire, serialized by opensearch-py itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from opensearchpy import Connection, OpenSearch, RequestsHttpConnection
from opensearchpy import ConnectionError as OSConnectionError
from opensearchpy import ConnectionTimeout as OSConnectionTimeout

from shared.chunking import embedding_text
from shared.errors import ConfigError, EmbedderMismatchError, StoreError, StoreUnavailableError
from shared.models import Chunk, SearchFilter
from shared.settings import Settings
from shared.stores.base import VectorStore
from shared.stores.opensearch import TEMPLATE_VERSION, OpenSearchStore, cosine_from_score

INDEX = "chunks-test"
DIM = 4
EMBEDDER = "hash:4"
META = {"app": "rag-explorer", "template_version": TEMPLATE_VERSION, "embedder": EMBEDDER, "dimension": DIM}


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, Any]
    body: Any  # dict for JSON bodies, list of dicts for NDJSON (bulk), None without a body


Answer = tuple[int, Any]


class FakeCluster:
    """Answers requests by path (the last matching route wins) and records them."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.routes: list[tuple[str | None, re.Pattern[str], Callable[[Request], Answer]]] = []
        self.fail: Exception | None = None
        self.on("HEAD", rf"/{INDEX}", (200, None))
        self.on("GET", rf"/{INDEX}/_mapping", (200, {INDEX: {"mappings": {"_meta": META, "properties": {}}}}))
        self.on("PUT", rf"/{INDEX}", (200, {"acknowledged": True, "index": INDEX}))
        self.on("POST", rf"/{INDEX}/_refresh", (200, {"_shards": {"failed": 0}}))
        self.on(None, rf"/{INDEX}/_count", (200, {"count": 3}))
        self.on("POST", r"/_bulk", self._bulk_ok)
        self.on("POST", rf"/{INDEX}/_search", (200, {"hits": {"hits": []}}))

    def on(self, method: str | None, path: str, answer: Answer | Callable[[Request], Answer]) -> None:
        fn = answer if callable(answer) else (lambda _req, a=answer: a)
        self.routes.append((method, re.compile(path + r"\Z"), fn))

    @staticmethod
    def _bulk_ok(req: Request) -> Answer:
        items = []
        for line in req.body:
            (op, meta), *_ = line.items()
            if op in ("index", "delete"):
                items.append({op: {"_index": meta["_index"], "_id": meta["_id"], "status": 200}})
        return 200, {"took": 1, "errors": False, "items": items}

    def answer(self, req: Request) -> Answer:
        for method, pattern, fn in reversed(self.routes):
            if (method is None or method == req.method) and pattern.match(req.path):
                return fn(req)
        raise AssertionError(f"unexpected request {req.method} {req.path}")

    def of(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def connection_class(self) -> type[Connection]:
        cluster = self

        class FakeConnection(Connection):
            def perform_request(  # type: ignore[override]
                self,
                method: str,
                url: str,
                params: Any = None,
                body: Any = None,
                timeout: Any = None,
                ignore: Any = (),
                headers: Any = None,
            ) -> tuple[int, dict[str, str], str]:
                if cluster.fail is not None:
                    raise cluster.fail
                text = body.decode() if isinstance(body, bytes) else body
                parsed: Any = None
                if text and url.endswith("/_bulk"):
                    parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
                elif text:
                    parsed = json.loads(text)
                query = {k: v.decode() if isinstance(v, bytes) else v for k, v in (params or {}).items()}
                req = Request(method, url, query, parsed)
                cluster.requests.append(req)
                status, payload = cluster.answer(req)
                raw = "" if payload is None else json.dumps(payload)
                if not 200 <= status < 300 and status not in (ignore or ()):
                    self._raise_error(status, raw, "application/json")
                return status, {"content-type": "application/json"}, raw

        return FakeConnection


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


def make_store(cluster: FakeCluster, *, embedder: str = EMBEDDER) -> OpenSearchStore:
    client = OpenSearch(
        hosts=["http://opensearch.test:9200"], connection_class=cluster.connection_class(), max_retries=0
    )
    return OpenSearchStore(client=client, index=INDEX, embedder_name=embedder, dimension=DIM)


def chunk(cid: str = "c1", **kw: Any) -> Chunk:
    base: dict[str, Any] = {
        "chunk_id": cid,
        "source": "/d/keys.md",
        "title": "Keys",
        "text": "Rotate the API key.",
        "heading_path": ["Security", "Keys"],
        "position": 2,
        "page": 3,
        "content_hash": "h1",
        "tags": ["security", "admin"],
        "n_tokens": 5,
    }
    base.update(kw)
    return Chunk(**base)


def hit(c: Chunk, score: float) -> dict[str, Any]:
    src = {
        "display_text": c.text,
        "chunk_id": c.chunk_id,
        "source": c.source,
        "content_hash": c.content_hash,
        "tags": c.tags,
        "heading_path": c.heading_path,
        "title": c.title,
        "position": c.position,
        "page": c.page,
        "n_tokens": c.n_tokens,
        "indexed_at": "2025-01-01T00:00:00.000Z",
    }
    return {"_index": INDEX, "_id": c.chunk_id, "_score": score, "_source": src}


# --------------------------------------------------------------------------- index creation


def test_the_store_is_a_vector_store_and_sends_nothing_until_used(cluster: FakeCluster) -> None:
    store = make_store(cluster)
    assert isinstance(store, VectorStore)
    assert cluster.requests == []


def test_missing_index_is_created_from_the_template(cluster: FakeCluster) -> None:
    cluster.on("HEAD", rf"/{INDEX}", (404, None))
    store = make_store(cluster)
    assert store.count_chunks() == 3
    assert [(r.method, r.path) for r in cluster.requests] == [
        ("HEAD", f"/{INDEX}"),
        ("PUT", f"/{INDEX}"),
        ("GET", f"/{INDEX}/_mapping"),
        ("POST", f"/{INDEX}/_count"),
    ]
    assert cluster.of("PUT", f"/{INDEX}")[0].body == {
        "settings": {"index": {"knn": True}},
        "mappings": {
            "_meta": {"app": "rag-explorer", "template_version": 2, "embedder": "hash:4", "dimension": 4},
            "dynamic": "strict",
            "properties": {
                "embedding": {
                    "type": "knn_vector",
                    "dimension": 4,
                    "method": {
                        "name": "hnsw",
                        "engine": "lucene",
                        "space_type": "cosinesimil",
                        "parameters": {"m": 16, "ef_construction": 128},
                    },
                },
                "text": {"type": "text", "analyzer": "standard"},
                "display_text": {"type": "text", "index": False},
                "chunk_id": {"type": "keyword"},
                "source": {"type": "keyword"},
                "content_hash": {"type": "keyword"},
                "tags": {"type": "keyword"},
                "heading_path": {"type": "keyword", "ignore_above": 1024},
                "title": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}},
                "position": {"type": "integer"},
                "page": {"type": "integer"},
                "n_tokens": {"type": "integer"},
                "indexed_at": {"type": "date"},
                "collection": {"type": "keyword"},
                "url": {"type": "keyword", "index": False, "doc_values": False},
            },
        },
    }
    store.count_chunks()  # the index is checked once per store
    assert len(cluster.of("HEAD", f"/{INDEX}")) == 1


def test_existing_index_is_not_recreated_and_a_creation_race_is_fine(cluster: FakeCluster) -> None:
    make_store(cluster).count_chunks()
    assert cluster.of("PUT", f"/{INDEX}") == []
    race = FakeCluster()
    race.on("HEAD", rf"/{INDEX}", (404, None))
    race.on(
        "PUT", rf"/{INDEX}", (400, {"error": {"type": "resource_already_exists_exception"}, "status": 400})
    )
    assert make_store(race).count_chunks() == 3


def test_a_reader_that_may_not_create_the_index_sees_an_empty_one(cluster: FakeCluster) -> None:
    """The query and health roles may only read; before the first ingest there is no index to read."""
    cluster.on("HEAD", rf"/{INDEX}", (404, None))
    denied = {"error": {"type": "security_exception", "reason": "no permissions for [indices:admin/create]"}}
    cluster.on("PUT", rf"/{INDEX}", (403, {**denied, "status": 403}))
    store = make_store(cluster)
    assert store.count_chunks() == 0 and store.source_hashes() == {}
    assert store.dense_search(np.ones(DIM, dtype=np.float32), 3) == []
    assert store.lexical_search("anything", 3) == [] and store.get_chunks(["a"]) == []
    assert store.term_counts(["x"]) == {"x": 0}
    health = store.health()
    assert health.ok and "does not exist yet" in (health.detail or "")
    assert cluster.of("POST", f"/{INDEX}/_search") == []  # nothing was searched
    chunk = Chunk(chunk_id="c", source="s", text="t", position=0, content_hash="h")
    with pytest.raises(StoreError):  # a writer must be able to create it
        store.upsert([chunk], np.ones((1, DIM), dtype=np.float32))
    cluster.on("HEAD", rf"/{INDEX}", (200, None))  # the ingest function created it meanwhile
    assert store.count_chunks() == 3


def test_index_of_another_embedder_is_refused(cluster: FakeCluster) -> None:
    with pytest.raises(
        EmbedderMismatchError, match=r"built with embedder 'hash:4' but 'local:other' is configured"
    ):
        make_store(cluster, embedder="local:other").count_chunks()


@pytest.mark.parametrize(
    ("meta", "error", "message"),
    [
        ({}, StoreError, "not created by RAG Explorer"),
        ({**META, "dimension": 8}, EmbedderMismatchError, "dimension 8"),
        ({**META, "template_version": 99}, StoreError, "template version 99"),
    ],
)
def test_foreign_or_incompatible_indexes_are_refused(
    cluster: FakeCluster, meta: dict[str, Any], error: type[Exception], message: str
) -> None:
    cluster.on("GET", rf"/{INDEX}/_mapping", (200, {INDEX: {"mappings": {"_meta": meta}}}))
    with pytest.raises(error, match=message):
        make_store(cluster).source_hashes()


# --------------------------------------------------------------------------- writes


def test_upsert_sends_bulk_index_actions_with_chunk_ids(cluster: FakeCluster) -> None:
    store = make_store(cluster)
    chunks = [chunk("c1"), chunk("c2", title=None, page=None, tags=[], heading_path=[])]
    vectors = np.array([[1, 0, 0, 0], [0, 0.6, 0.8, 0]], dtype=np.float32)
    store.upsert(chunks, vectors)
    (bulk,) = cluster.of("POST", "/_bulk")
    assert bulk.body[0] == {"index": {"_index": INDEX, "_id": "c1"}}
    assert bulk.body[2] == {"index": {"_index": INDEX, "_id": "c2"}}
    doc = bulk.body[1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc.pop("indexed_at"))
    assert doc == {
        "embedding": [1.0, 0.0, 0.0, 0.0],
        "text": embedding_text(chunks[0]),
        "display_text": "Rotate the API key.",
        "chunk_id": "c1",
        "source": "/d/keys.md",
        "content_hash": "h1",
        "tags": ["security", "admin"],
        "heading_path": ["Security", "Keys"],
        "title": "Keys",
        "position": 2,
        "page": 3,
        "n_tokens": 5,
        "collection": "default",
        "url": None,
    }
    assert doc["text"] == "Keys > Security > Keys\nRotate the API key."
    second = bulk.body[3]
    assert (second["title"], second["page"], second["tags"], second["heading_path"]) == (None, None, [], [])
    np.testing.assert_allclose(second["embedding"], [0, 0.6, 0.8, 0], atol=1e-7)
    assert cluster.of("POST", f"/{INDEX}/_refresh") == []  # no refresh per write ...
    store.count_chunks()
    store.count_chunks()
    assert len(cluster.of("POST", f"/{INDEX}/_refresh")) == 1  # ... one before the next search-based read


def test_upsert_checks_the_shape_and_sends_nothing_for_no_chunks(cluster: FakeCluster) -> None:
    store = make_store(cluster)
    with pytest.raises(ValueError, match="shape"):
        store.upsert([chunk()], np.zeros((1, 3), dtype=np.float32))
    store.upsert([], np.zeros((0, DIM), dtype=np.float32))
    assert cluster.requests == []


def _bulk_with_failure(status: int, reason: str) -> Callable[[Request], Answer]:
    def answer(req: Request) -> Answer:
        items = [{"index": {"_index": INDEX, "_id": "c1", "status": 201}}]
        error = {"type": "mapper_parsing_exception", "reason": reason}
        items.append({"index": {"_index": INDEX, "_id": "c2", "status": status, "error": error}})
        return 200, {"errors": True, "items": items}

    return answer


def test_per_item_bulk_failures_raise_with_the_first_reason(cluster: FakeCluster) -> None:
    cluster.on("POST", r"/_bulk", _bulk_with_failure(400, "failed to parse field [page]"))
    vectors = np.eye(2, DIM, dtype=np.float32)
    with pytest.raises(
        StoreError, match=r"1 of 2 operations failed.*c2.*failed to parse field \[page\]"
    ) as exc:
        make_store(cluster).upsert([chunk("c1"), chunk("c2")], vectors)
    assert not isinstance(exc.value, StoreUnavailableError)
    busy = FakeCluster()
    busy.on("POST", r"/_bulk", _bulk_with_failure(503, "shard not available"))
    with pytest.raises(StoreUnavailableError, match="shard not available"):
        make_store(busy).upsert([chunk("c1"), chunk("c2")], vectors)


def test_delete_ids_sends_bulk_deletes_and_ignores_missing_ids(cluster: FakeCluster) -> None:
    def answer(req: Request) -> Answer:
        return 200, {
            "errors": False,
            "items": [
                {"delete": {"_id": "c1", "status": 200, "result": "deleted"}},
                {"delete": {"_id": "gone", "status": 404, "result": "not_found"}},
            ],
        }

    cluster.on("POST", r"/_bulk", answer)
    make_store(cluster).delete_ids(["c1", "gone"])
    (bulk,) = cluster.of("POST", "/_bulk")
    assert bulk.body == [
        {"delete": {"_index": INDEX, "_id": "c1"}},
        {"delete": {"_index": INDEX, "_id": "gone"}},
    ]


def test_delete_source_is_a_refreshing_delete_by_query(cluster: FakeCluster) -> None:
    cluster.on("POST", rf"/{INDEX}/_delete_by_query", (200, {"deleted": 2, "failures": []}))
    assert make_store(cluster).delete_source("/d/keys.md") == 2
    (req,) = cluster.of("POST", f"/{INDEX}/_delete_by_query")
    assert req.body == {"query": {"term": {"source": "/d/keys.md"}}}
    assert req.params["refresh"] == "true"


def test_flush_refreshes_the_index(cluster: FakeCluster) -> None:
    make_store(cluster).flush()
    assert len(cluster.of("POST", f"/{INDEX}/_refresh")) == 1


# --------------------------------------------------------------------------- searches


def test_knn_query_body_without_filters(cluster: FakeCluster) -> None:
    c = chunk()
    cluster.on(
        "POST", rf"/{INDEX}/_search", (200, {"hits": {"hits": [hit(c, 0.75), hit(chunk("c2"), 0.25)]}})
    )
    got = make_store(cluster).dense_search(np.array([0.5, 0.5, 0.5, 0.5], dtype=np.float32), 2)
    # https://docs.opensearch.org/latest/vector-search/filter-search-knn/efficient-knn-filtering/ :
    # {"size": N, "query": {"knn": {"<field>": {"vector": [...], "k": K, "filter": {...}}}}}
    assert cluster.of("POST", f"/{INDEX}/_search")[0].body == {
        "size": 2,
        "_source": {"excludes": ["embedding", "text"]},
        "query": {"knn": {"embedding": {"vector": [0.5, 0.5, 0.5, 0.5], "k": 2}}},
    }
    assert [h.chunk for h in got] == [c, chunk("c2")]
    # cosinesimil: score = (2 - d) / 2 with d = 1 - cos, so cos = 2 * score - 1
    assert [h.score for h in got] == pytest.approx([0.5, -0.5])


def test_knn_query_body_with_efficient_filters(cluster: FakeCluster) -> None:
    store = make_store(cluster)
    filters = SearchFilter(tags=["security", "admin"], source_prefix="/d/k")
    store.dense_search(np.array([1, 0, 0, 0], dtype=np.float32), 5, filters)
    # the filter sits inside the knn clause (efficient filtering: k results when k match), as in
    # https://docs.opensearch.org/latest/vector-search/filter-search-knn/efficient-knn-filtering/
    assert cluster.of("POST", f"/{INDEX}/_search")[0].body == {
        "size": 5,
        "_source": {"excludes": ["embedding", "text"]},
        "query": {
            "knn": {
                "embedding": {
                    "vector": [1.0, 0.0, 0.0, 0.0],
                    "k": 5,
                    "filter": {
                        "bool": {
                            "filter": [
                                {"term": {"tags": "security"}},
                                {"term": {"tags": "admin"}},
                                {"prefix": {"source": "/d/k"}},
                            ]
                        }
                    },
                }
            }
        },
    }


def test_dense_search_sends_nothing_for_a_zero_vector_or_k_0(cluster: FakeCluster) -> None:
    store = make_store(cluster)
    assert store.dense_search(np.zeros(DIM, dtype=np.float32), 5) == []
    assert store.dense_search(np.ones(DIM, dtype=np.float32), 0) == []
    assert cluster.requests == []


def test_cosine_from_score_inverts_the_documented_formula() -> None:
    for cos in (-1.0, -0.3, 0.0, 0.42, 1.0):
        assert cosine_from_score((2 - (1 - cos)) / 2) == pytest.approx(cos)
    assert cosine_from_score(1.0000001) == 1.0


def test_match_query_body_with_and_without_filters(cluster: FakeCluster) -> None:
    c = chunk()
    cluster.on("POST", rf"/{INDEX}/_search", (200, {"hits": {"hits": [hit(c, 3.25)]}}))
    store = make_store(cluster)
    got = store.lexical_search("rotate keys", 7)
    assert [(h.chunk, h.score) for h in got] == [(c, 3.25)]
    store.lexical_search("rotate keys", 3, SearchFilter(tags=["security"], source_prefix="/d/"))
    first, second = cluster.of("POST", f"/{INDEX}/_search")
    assert first.body == {
        "size": 7,
        "_source": {"excludes": ["embedding", "text"]},
        "query": {"bool": {"must": [{"match": {"text": {"query": "rotate keys"}}}]}},
    }
    assert second.body == {
        "size": 3,
        "_source": {"excludes": ["embedding", "text"]},
        "query": {
            "bool": {
                "must": [{"match": {"text": {"query": "rotate keys"}}}],
                "filter": [{"term": {"tags": "security"}}, {"prefix": {"source": "/d/"}}],
            }
        },
    }
    assert store.lexical_search("   ", 3) == []
    assert len(cluster.of("POST", f"/{INDEX}/_search")) == 2


# --------------------------------------------------------------------------- reads by id and listings


def test_get_chunks_and_embeddings_use_mget(cluster: FakeCluster) -> None:
    c1, c2 = chunk("c1"), chunk("c2", title=None, page=None)

    def mget(req: Request) -> Answer:
        docs = []
        for i in req.body["ids"]:
            if i == "missing":
                docs.append({"_id": i, "found": False})
            elif "_source_includes" in req.params:
                docs.append({"_id": i, "found": True, "_source": {"embedding": [0.0, 1.0, 0.0, 0.0]}})
            else:
                docs.append({"_id": i, "found": True, "_source": hit(c1 if i == "c1" else c2, 1)["_source"]})
        return 200, {"docs": docs}

    cluster.on("POST", rf"/{INDEX}/_mget", mget)
    store = make_store(cluster)
    assert store.get_chunks(["c2", "missing", "c1"]) == [c2, c1]
    vectors = store.get_embeddings(["c1", "missing"])
    assert list(vectors) == ["c1"] and vectors["c1"].dtype == np.float32
    chunks_req, vectors_req = cluster.of("POST", f"/{INDEX}/_mget")
    assert chunks_req.body == {"ids": ["c2", "missing", "c1"]}
    assert chunks_req.params["_source_excludes"] == "embedding,text"
    assert vectors_req.params["_source_includes"] == "embedding"
    assert store.get_chunks([]) == [] and store.get_embeddings([]) == {}


def test_source_hashes_pages_through_a_composite_aggregation(cluster: FakeCluster) -> None:
    pages = [
        {
            "after_key": {"source": "/b", "content_hash": "hb"},
            "buckets": [
                {"key": {"source": "/a", "content_hash": "ha"}, "doc_count": 2},
                {"key": {"source": "/b", "content_hash": "hb"}, "doc_count": 1},
            ],
        },
        {
            "after_key": {"source": "/c", "content_hash": "hc2"},
            "buckets": [
                {"key": {"source": "/c", "content_hash": "hc1"}, "doc_count": 1},
                {"key": {"source": "/c", "content_hash": "hc2"}, "doc_count": 1},
            ],
        },
        {"buckets": []},
    ]
    cluster.on("POST", rf"/{INDEX}/_search", lambda req: (200, {"aggregations": {"keys": pages.pop(0)}}))
    # a source whose chunks disagree on the hash (an interrupted update) maps to "" so it is re-indexed
    assert make_store(cluster).source_hashes() == {"/a": "ha", "/b": "hb", "/c": ""}
    bodies = [r.body for r in cluster.of("POST", f"/{INDEX}/_search")]
    assert bodies[0] == {
        "size": 0,
        "aggs": {
            "keys": {
                "composite": {
                    "size": 1000,
                    "sources": [
                        {"source": {"terms": {"field": "source"}}},
                        {"content_hash": {"terms": {"field": "content_hash"}}},
                    ],
                }
            }
        },
    }
    assert bodies[1]["aggs"]["keys"]["composite"]["after"] == {"source": "/b", "content_hash": "hb"}
    assert bodies[2]["aggs"]["keys"]["composite"]["after"] == {"source": "/c", "content_hash": "hc2"}


def test_chunk_ids_for_source_pages_with_search_after(cluster: FakeCluster, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("shared.stores.opensearch._PAGE", 2)
    pages = [["c1", "c2"], ["c3"]]

    def answer(req: Request) -> Answer:
        return 200, {"hits": {"hits": [{"_id": i, "sort": [i]} for i in pages.pop(0)]}}

    cluster.on("POST", rf"/{INDEX}/_search", answer)
    assert make_store(cluster).chunk_ids_for_source("/d/keys.md") == ["c1", "c2", "c3"]
    first, second = (r.body for r in cluster.of("POST", f"/{INDEX}/_search"))
    assert first == {
        "size": 2,
        "_source": False,
        "query": {"bool": {"filter": [{"term": {"source": "/d/keys.md"}}]}},
        "sort": [{"chunk_id": "asc"}],
    }
    assert second["search_after"] == ["c2"]


# --------------------------------------------------------------------------- health and errors


def test_health_reports_green_yellow_and_red(cluster: FakeCluster) -> None:
    cluster.on("GET", rf"/_cluster/health/{INDEX}", (200, {"status": "yellow", "unassigned_shards": 1}))
    health = make_store(cluster).health()
    assert health.ok and health.detail == f"3 chunks in OpenSearch index '{INDEX}' (yellow)"
    red = FakeCluster()
    red.on("GET", rf"/_cluster/health/{INDEX}", (200, {"status": "red", "unassigned_shards": 2}))
    health = make_store(red).health()
    assert not health.ok and "red (2 unassigned shards)" in (health.detail or "")


@pytest.mark.parametrize(
    "failure",
    [
        OSConnectionError("N/A", "Connection refused", OSError("refused")),
        OSConnectionTimeout("TIMEOUT", "Read timed out", TimeoutError("timed out")),
    ],
)
def test_connection_errors_and_timeouts_are_store_unavailable(
    cluster: FakeCluster, failure: Exception
) -> None:
    store = make_store(cluster)
    cluster.fail = failure
    with pytest.raises(StoreUnavailableError):
        store.count_chunks()
    health = store.health()
    assert not health.ok and "OpenSearch" in (health.detail or "")


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (400, StoreError, r"HTTP 400.*parsing_exception: unknown query"),
        (403, StoreError, "check opensearch_auth"),
        (429, StoreUnavailableError, "HTTP 429"),
        (503, StoreUnavailableError, "HTTP 503"),
    ],
)
def test_http_errors_are_mapped(
    cluster: FakeCluster, status: int, error: type[Exception], message: str
) -> None:
    body = {
        "error": {"root_cause": [{"type": "parsing_exception", "reason": "unknown query"}]},
        "status": status,
    }
    cluster.on("POST", rf"/{INDEX}/_search", (status, body))
    with pytest.raises(error, match=message) as exc:
        make_store(cluster).lexical_search("keys", 3)
    if error is StoreError:
        assert not isinstance(exc.value, StoreUnavailableError)


# --------------------------------------------------------------------------- clients from settings


class _Embedder:
    name = EMBEDDER
    dimension = DIM


def _connection(store: OpenSearchStore) -> Any:
    return store.client.transport.connection_pool.connections[0]  # type: ignore[attr-defined]


def test_from_settings_without_auth() -> None:
    settings = Settings(store="opensearch", opensearch_url="http://localhost:9200", opensearch_timeout_s=3)
    store = OpenSearchStore.from_settings(settings, embedder=_Embedder())  # type: ignore[arg-type]
    conn = _connection(store)
    assert (conn.host, conn.use_ssl, conn.timeout, conn.http_auth) == (
        "http://localhost:9200",
        False,
        3,
        None,
    )
    assert (store.index, store.embedder_name, store.dimension) == ("rag-explorer-chunks", EMBEDDER, DIM)


def test_from_settings_with_basic_auth_verifies_tls() -> None:
    settings = Settings(
        store="opensearch",
        opensearch_url="https://search.example.com",
        opensearch_auth="basic",
        opensearch_username="reader",
        opensearch_password="secret",
        opensearch_index="docs",
    )
    store = OpenSearchStore.from_settings(settings, embedder=_Embedder())  # type: ignore[arg-type]
    conn = _connection(store)
    assert conn.use_ssl and conn.pool.cert_reqs == "CERT_REQUIRED"
    assert conn.headers["authorization"].startswith("Basic ")
    with pytest.raises(ConfigError, match="opensearch_username"):
        OpenSearchStore.from_settings(
            settings.model_copy(update={"opensearch_password": None}),
            embedder=_Embedder(),  # type: ignore[arg-type]
        )


def test_from_settings_with_sigv4_signs_with_refreshable_boto3_credentials(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from requests_aws4auth import AWS4Auth

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    settings = Settings(
        store="opensearch",
        opensearch_url="https://search-x.eu-west-1.es.amazonaws.com",
        opensearch_auth="sigv4",
    )
    store = OpenSearchStore.from_settings(settings, embedder=_Embedder())  # type: ignore[arg-type]
    conn = _connection(store)
    assert isinstance(conn, RequestsHttpConnection)
    auth = conn.session.auth
    assert isinstance(auth, AWS4Auth)
    assert (auth.region, auth.service, auth.refreshable_credentials.access_key) == (
        "eu-west-1",
        "es",
        "AKIDEXAMPLE",
    )
    assert conn.session.verify  # a CA bundle: certificates are verified
    store = OpenSearchStore.from_settings(
        settings.model_copy(update={"aws_region": "us-east-2"}),
        embedder=_Embedder(),  # type: ignore[arg-type]
    )
    assert _connection(store).session.auth.region == "us-east-2"


def test_a_given_client_is_used_as_is(cluster: FakeCluster) -> None:
    client = OpenSearch(hosts=["http://x:9200"], connection_class=cluster.connection_class())
    settings = Settings(store="opensearch", opensearch_url="http://ignored:9200")
    store = OpenSearchStore.from_settings(settings, embedder=_Embedder(), client=client)  # type: ignore[arg-type]
    assert store.client is client
    with pytest.raises(ConfigError):
        OpenSearchStore(index=INDEX, embedder_name=EMBEDDER, dimension=DIM)


def test_term_counts_is_one_filters_aggregation(cluster: FakeCluster) -> None:
    """The vocabulary lookup: one request, a bucket per term (the word, or a word starting with its stem)."""
    buckets = {"t0": {"doc_count": 3}, "t1": {"doc_count": 0}}
    cluster.on(
        "POST",
        rf"/{INDEX}/_search",
        (200, {"hits": {"hits": []}, "aggregations": {"terms": {"buckets": buckets}}}),
    )
    got = make_store(cluster).term_counts(["Backups", "restic", "Backups"])
    assert got == {"Backups": 3, "restic": 0}
    (req,) = cluster.of("POST", f"/{INDEX}/_search")
    # https://docs.opensearch.org/latest/aggregations/bucket/filters/ :
    # {"aggs": {NAME: {"filters": {"filters": {KEY: QUERY, ...}}}}}
    assert req.body == {
        "size": 0,
        "query": {"match_all": {}},
        "aggs": {
            "terms": {
                "filters": {
                    "filters": {
                        "t0": {
                            "bool": {
                                "should": [
                                    {"match": {"text": {"query": "backups"}}},
                                    {"prefix": {"text": {"value": "backup"}}},
                                ],
                                "minimum_should_match": 1,
                            }
                        },
                        "t1": {
                            "bool": {
                                "should": [{"match": {"text": {"query": "restic"}}}],
                                "minimum_should_match": 1,
                            }
                        },
                    }
                }
            }
        },
    }
    assert make_store(cluster).term_counts([]) == {}
    assert len(cluster.of("POST", f"/{INDEX}/_search")) == 1  # no request for no terms
