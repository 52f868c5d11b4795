"""The OpenSearch adapter against a server: osmem-server (in memory, started once for this module) by default,
or a real OpenSearch when ``OPENSEARCH_URL`` is set (e.g. ``http://localhost:9200`` for a local container with
the security plugin off; ``OPENSEARCH_INSECURE=1`` skips certificate checks for a self-signed one).

osmem-server has no k-NN, so the dense leg and hybrid retrieval only run against a real OpenSearch.
Every test gets its own index, deleted afterwards.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from opensearchpy import OpenSearch

from shared.chunking import Chunker, embedding_text
from shared.embeddings.hashing import HashingEmbedder
from shared.errors import EmbedderMismatchError, StoreError, StoreUnavailableError
from shared.ingest import Ingestor, source_for
from shared.models import Chunk, SearchFilter
from shared.retrieval import HybridRetriever
from shared.stores.opensearch import TEMPLATE_VERSION, OpenSearchStore
from tests.integration.store_cases import make_chunks

REAL_URL = os.environ.get("OPENSEARCH_URL")
needs_knn = pytest.mark.skipif(
    not REAL_URL, reason="osmem-server has no k-NN; set OPENSEARCH_URL to run against a real OpenSearch"
)

EMB = HashingEmbedder(64)


@pytest.fixture(scope="module")
def os_client() -> Iterator[OpenSearch]:
    if REAL_URL:
        insecure = os.environ.get("OPENSEARCH_INSECURE") == "1"
        client = OpenSearch(hosts=[REAL_URL], verify_certs=not insecure, ssl_show_warn=False, timeout=30)
        yield client
        client.close()
        return
    from osmem_server import OsmemServer

    server = OsmemServer.start(japanese=False)
    client = OpenSearch(hosts=[server.url], timeout=30)
    try:
        yield client
    finally:
        client.close()
        server.close()
        if server.process.stdout is not None:  # osmem leaves its stdout pipe open
            server.process.stdout.close()


@pytest.fixture
def index(os_client: OpenSearch) -> Iterator[str]:
    name = f"rag-test-{uuid.uuid4().hex[:12]}"
    yield name
    os_client.indices.delete(index=name, ignore_unavailable=True)


def open_store(
    client: OpenSearch, index: str, name: str = EMB.name, dimension: int = EMB.dimension
) -> OpenSearchStore:
    return OpenSearchStore(client=client, index=index, embedder_name=name, dimension=dimension)


@pytest.fixture
def store(os_client: OpenSearch, index: str) -> OpenSearchStore:
    s = open_store(os_client, index)
    chunks = make_chunks()
    s.upsert(chunks, EMB.embed_documents([embedding_text(c) for c in chunks]))
    s.flush()
    return s


# --------------------------------------------------------------------------- index template


def test_index_is_created_from_the_template_with_meta(os_client: OpenSearch, index: str) -> None:
    s = open_store(os_client, index)
    assert not os_client.indices.exists(index=index)  # nothing happens before the first use
    assert s.count_chunks() == 0
    mapping = os_client.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["_meta"] == {
        "app": "rag-explorer",
        "template_version": TEMPLATE_VERSION,
        "embedder": "hash:64",
        "dimension": 64,
    }
    vector = mapping["properties"]["embedding"]
    assert (vector["type"], vector["dimension"]) == ("knn_vector", 64)
    assert {k: vector["method"][k] for k in ("name", "engine", "space_type")} == {
        "name": "hnsw",
        "engine": "lucene",
        "space_type": "cosinesimil",
    }
    props = mapping["properties"]
    assert {
        f: props[f]["type"] for f in ("source", "chunk_id", "tags", "content_hash", "heading_path")
    } == dict.fromkeys(("source", "chunk_id", "tags", "content_hash", "heading_path"), "keyword")
    assert {f: props[f]["type"] for f in ("position", "page", "n_tokens")} == dict.fromkeys(
        ("position", "page", "n_tokens"), "integer"
    )
    assert props["title"]["fields"]["keyword"]["type"] == "keyword" and props["indexed_at"]["type"] == "date"
    settings = os_client.indices.get_settings(index=index)[index]["settings"]["index"]
    assert str(settings["knn"]).lower() == "true"


def test_refuses_an_index_of_another_embedder(
    store: OpenSearchStore, os_client: OpenSearch, index: str
) -> None:
    with pytest.raises(
        EmbedderMismatchError, match="built with embedder 'hash:64' but 'local:other' is configured"
    ):
        open_store(os_client, index, name="local:other").count_chunks()


def test_refuses_an_index_it_did_not_create(os_client: OpenSearch, index: str) -> None:
    os_client.indices.create(index=index, body={"mappings": {"properties": {"x": {"type": "keyword"}}}})
    with pytest.raises(StoreError, match="not created by RAG Explorer"):
        open_store(os_client, index).source_hashes()


# --------------------------------------------------------------------------- writes and reads


def test_roundtrip_of_every_chunk_field(store: OpenSearchStore) -> None:
    assert store.get_chunks(["c3", "missing", "c1"]) == [make_chunks()[2], make_chunks()[0]]
    odd = Chunk(
        chunk_id="c9",
        source="/d/odd.md",
        title=None,
        text="Ünïcode — text\nwith lines",
        heading_path=["B", "A", "B"],
        position=0,
        page=None,
        content_hash="h9",
        tags=[],
        n_tokens=0,
    )
    store.upsert([odd], EMB.embed_documents([embedding_text(odd)]))
    assert store.get_chunks(["c9"]) == [odd]
    vectors = store.get_embeddings(["c1", "missing"])
    assert list(vectors) == ["c1"]
    np.testing.assert_allclose(
        vectors["c1"], EMB.embed_documents([embedding_text(make_chunks()[0])])[0], atol=1e-6
    )


def test_upsert_replaces_by_chunk_id(store: OpenSearchStore) -> None:
    changed = make_chunks()[0].model_copy(update={"text": "Keys are rotated weekly.", "content_hash": "new"})
    store.upsert([changed], EMB.embed_documents([embedding_text(changed)]))
    assert store.count_chunks() == 3
    assert store.get_chunks(["c1"]) == [changed]
    assert [h.chunk.chunk_id for h in store.lexical_search("weekly", 3)] == ["c1"]


def test_wrong_embedding_shape_is_rejected(store: OpenSearchStore) -> None:
    with pytest.raises(ValueError, match="shape"):
        store.upsert(make_chunks()[:1], np.zeros((1, 3), dtype=np.float32))


def test_lexical_leg_and_filters(store: OpenSearchStore) -> None:
    lexical = store.lexical_search("invoices emailed", 3)
    assert [h.chunk.chunk_id for h in lexical] == ["c3"] and lexical[0].score > 0
    assert lexical[0].chunk == make_chunks()[2]
    assert store.lexical_search("zebra", 3) == []
    assert {
        h.chunk.chunk_id for h in store.lexical_search("keys invoices", 3, SearchFilter(tags=["billing"]))
    } == {"c3"}
    assert {
        h.chunk.chunk_id
        for h in store.lexical_search("key keys invoices", 3, SearchFilter(source_prefix="/d/k"))
    } == {"c1", "c2"}
    both = SearchFilter(tags=["security", "admin"])  # every tag is required
    assert [h.chunk.chunk_id for h in store.lexical_search("keys rotation console", 3, both)] == ["c2"]
    assert store.lexical_search("invoices", 3, SearchFilter(source_prefix="/nowhere")) == []


def test_lexical_leg_indexes_title_and_headings(os_client: OpenSearch, index: str) -> None:
    s = open_store(os_client, index)
    c = make_chunks()[2].model_copy(update={"title": "Accounting", "heading_path": ["Payments"]})
    s.upsert([c], EMB.embed_documents([embedding_text(c)]))
    assert [h.chunk.chunk_id for h in s.lexical_search("payments", 3)] == ["c3"]  # read-your-writes: no flush
    assert s.get_chunks(["c3"])[0].text == "Invoices are emailed every month."  # display text, no context


def test_delete_source_and_counts(store: OpenSearchStore) -> None:
    assert store.count_chunks() == 3 and store.count_documents() == 2
    assert store.chunk_ids_for_source("/d/keys.md") == ["c1", "c2"]
    assert store.delete_source("/d/keys.md") == 2
    assert store.delete_source("/d/keys.md") == 0
    store.flush()
    assert store.count_chunks() == 1 and store.count_documents() == 1
    assert store.lexical_search("rotate", 3) == []
    assert store.source_hashes() == {"/d/billing.md": "hash-/d/billing.md"}


def test_delete_ids(store: OpenSearchStore) -> None:
    store.delete_ids(["c2", "never-indexed"])
    assert store.chunk_ids_for_source("/d/keys.md") == ["c1"]
    assert store.get_chunks(["c2"]) == [] and store.count_chunks() == 2


def test_source_hashes_and_counts_page_past_one_page(os_client: OpenSearch, index: str) -> None:
    s = open_store(os_client, index, dimension=8)
    n = 1500
    chunks = [
        Chunk(
            chunk_id=f"id{i}-{j}",
            source=f"/docs/{i:05d}.md",
            text=f"text {i}",
            position=j,
            content_hash=f"h{i}",
        )
        for i in range(n)
        for j in range(2 if i % 100 == 0 else 1)
    ]
    rng = np.random.default_rng(0)
    s.upsert(chunks, rng.normal(size=(len(chunks), 8)).astype(np.float32))
    hashes = s.source_hashes()
    assert len(hashes) == n and hashes["/docs/01499.md"] == "h1499" and hashes["/docs/00000.md"] == "h0"
    assert s.count_documents() == n
    assert s.count_chunks() == len(chunks) == n + 15
    assert s.chunk_ids_for_source("/docs/00100.md") == ["id100-0", "id100-1"]


def test_health_and_flush(store: OpenSearchStore, os_client: OpenSearch, index: str) -> None:
    health = store.health()
    assert health.ok and f"3 chunks in OpenSearch index '{index}'" in (health.detail or "")
    other = open_store(os_client, index)  # a second process: sees writes once flushed
    extra = make_chunks()[0].model_copy(update={"chunk_id": "c4", "source": "/d/new.md"})
    store.upsert([extra], EMB.embed_documents([embedding_text(extra)]))
    store.flush()
    assert other.count_chunks() == 4 and other.count_documents() == 3


def test_unreachable_server() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = OpenSearchStore(
        url=f"http://127.0.0.1:{port}", index="x", embedder_name=EMB.name, dimension=64, timeout_s=2
    )
    with pytest.raises(StoreUnavailableError, match="unreachable"):
        s.count_chunks()
    health = s.health()
    assert not health.ok and "unreachable" in (health.detail or "")


# --------------------------------------------------------------------------- ingestion


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


GUIDE = (
    "# Guide\n\n## Install\n\nRun the installer and accept the licence.\n\n"
    "## Upgrade\n\nDownload the new release.\n"
)


def test_ingest_reingest_and_change(os_client: OpenSearch, index: str, tmp_path: Path) -> None:
    s = open_store(os_client, index)
    ingestor = Ingestor(EMB, s, Chunker(EMB, chunk_tokens=40, overlap_tokens=8))
    guide = _write(tmp_path / "docs" / "guide.md", GUIDE)
    _write(tmp_path / "docs" / "notes.txt", "Notes\n\nThe cache lives in the home folder.")
    first = ingestor.ingest_paths([tmp_path / "docs"])
    assert (first.files_indexed, first.files_failed) == (2, 0)
    assert first.chunks_added == s.count_chunks() > 0 and s.count_documents() == 2

    again = ingestor.ingest_paths([tmp_path / "docs"])
    assert (again.files_indexed, again.files_unchanged, again.chunks_added) == (0, 2, 0)

    before = set(s.chunk_ids_for_source(source_for(guide)))
    _write(guide, GUIDE.replace("Download the new release.", "Download the release from the portal."))
    changed = ingestor.ingest_paths([tmp_path / "docs"])
    after = set(s.chunk_ids_for_source(source_for(guide)))
    assert (changed.files_indexed, changed.files_unchanged) == (1, 1)
    assert before & after and before != after  # unchanged chunks kept their ids, the rest were replaced
    notes = s.chunk_ids_for_source(source_for(tmp_path / "docs" / "notes.txt"))
    assert s.count_chunks() == len(after) + len(notes)  # no orphans
    texts = " ".join(c.text for c in s.get_chunks(sorted(after)))
    assert "portal" in texts and "Download the new release." not in texts
    assert len({h for src, h in s.source_hashes().items() if src == source_for(guide)}) == 1
    assert [h.chunk.source for h in s.lexical_search("portal", 3)] == [source_for(guide)]

    removed = ingestor.remove_paths([guide])
    assert removed.sources_removed == [source_for(guide)] and s.count_documents() == 1


# --------------------------------------------------------------------------- k-NN (real OpenSearch only)


@needs_knn
def test_dense_leg_returns_cosine_similarities(store: OpenSearchStore) -> None:
    query = EMB.embed_query("rotate api key console")
    dense = store.dense_search(query, 2)
    assert [h.chunk.chunk_id for h in dense][:1] == ["c1"] and len(dense) == 2
    vectors = store.get_embeddings([h.chunk.chunk_id for h in dense])
    for h in dense:
        assert -1.0 <= h.score <= 1.0
        assert h.score == pytest.approx(float(vectors[h.chunk.chunk_id] @ query), abs=1e-3)
    assert dense[0].chunk == make_chunks()[0]


@needs_knn
def test_dense_leg_filters(store: OpenSearchStore) -> None:
    q = EMB.embed_query("keys invoices")
    assert {h.chunk.source for h in store.dense_search(q, 3, SearchFilter(tags=["billing"]))} == {
        "/d/billing.md"
    }
    assert {h.chunk.source for h in store.dense_search(q, 3, SearchFilter(source_prefix="/d/k"))} == {
        "/d/keys.md"
    }
    both = store.dense_search(q, 3, SearchFilter(tags=["security", "admin"]))
    assert [h.chunk.chunk_id for h in both] == ["c2"]
    assert store.dense_search(q, 3, SearchFilter(tags=["nothing"])) == []


@needs_knn
def test_hybrid_retrieval_over_opensearch(store: OpenSearchStore) -> None:
    retriever = HybridRetriever(EMB, store, candidates=10)
    top = retriever.retrieve("when do old keys expire after rotation", 3)
    assert top[0].chunk.chunk_id == "c2"
    assert top[0].dense_score is not None and top[0].lexical_score is not None
    billing = retriever.retrieve("keys", 3, SearchFilter(tags=["billing"]))
    assert [r.chunk.chunk_id for r in billing] == ["c3"]


def test_term_counts_follow_ingest_and_removal(store: OpenSearchStore) -> None:
    """The vocabulary behind "the documentation never mentions X" comes from the index itself."""
    counts = store.term_counts(["invoices", "invoice", "rotation", "keys", "zebra"])
    # as in the stemmed local index: "rotation" also finds "Rotate", "keys" also finds "key"
    assert counts == {"invoices": 1, "invoice": 1, "rotation": 2, "keys": 2, "zebra": 0}
    assert store.term_counts([]) == {}
    store.delete_source("/d/billing.md")
    store.flush()
    assert store.term_counts(["invoices", "rotation"]) == {"invoices": 0, "rotation": 2}
