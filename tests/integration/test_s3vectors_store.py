"""The S3 Vectors adapter against a server: moto (buckets, indexes, vector CRUD) behind the local fake
that adds what moto lacks (``QueryVectors``: filters, cosine top-k, full-text BM25; the index's text search
configuration and mode) — or the real service when ``S3VECTORS_TEST_BUCKET`` names a vector bucket (region
and credentials from the usual AWS environment; each test creates its own index there and deletes it).

Every test gets its own index.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config

from shared.chunking import Chunker, embedding_text
from shared.embeddings.hashing import HashingEmbedder
from shared.errors import EmbedderMismatchError, LoaderError, StoreError, StoreUnavailableError
from shared.ingest import Ingestor, source_for
from shared.models import Chunk, SearchFilter
from shared.retrieval import HybridRetriever
from shared.stores import s3vectors_requests as rq
from shared.stores.s3vectors import S3VectorsStore
from shared.stores.s3vectors_client import WRITE_ATTEMPTS
from tests.aws import moto_server
from tests.integration.store_cases import make_chunks

REAL_BUCKET = os.environ.get("S3VECTORS_TEST_BUCKET")
fake_only = pytest.mark.skipif(
    bool(REAL_BUCKET), reason="needs the local fake (fault injection, request log)"
)
EMB = HashingEmbedder(64)
FAKE_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "region_name": "us-east-1",
}


class Server:
    """Where the tests send requests: the fake in front of moto, or the real service."""

    def __init__(self, fake: Any = None) -> None:
        self.fake = fake

    def client(self, *, attempts: int = 3) -> Any:
        config = Config(retries={"mode": "standard", "total_max_attempts": attempts}, read_timeout=30)
        if self.fake is None:
            return boto3.client("s3vectors", config=config)
        return boto3.client("s3vectors", endpoint_url=self.fake.url, config=config, **FAKE_CREDENTIALS)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    if REAL_BUCKET:
        yield Server()
        return
    from tests.fakes.s3vectors_server import S3VectorsFake

    with moto_server() as moto_url, S3VectorsFake(moto_url) as fake:
        yield Server(fake)


@pytest.fixture(scope="module")
def bucket(server: Server) -> str:
    if REAL_BUCKET:
        return REAL_BUCKET
    name = f"rag-test-{uuid.uuid4().hex[:10]}"
    server.client().create_vector_bucket(vectorBucketName=name)
    return name


@pytest.fixture
def index(server: Server, bucket: str) -> Iterator[str]:
    name = f"idx-{uuid.uuid4().hex[:12]}"
    yield name
    with contextlib.suppress(Exception):  # never created by this test
        server.client().delete_index(vectorBucketName=bucket, indexName=name)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def open_store(
    server: Server,
    bucket: str,
    index: str,
    *,
    name: str = EMB.name,
    dimension: int = EMB.dimension,
    **kw: Any,
) -> S3VectorsStore:
    return S3VectorsStore(
        client=kw.pop("client", None) or server.client(),
        bucket=bucket,
        index=index,
        embedder_name=name,
        dimension=dimension,
        sleep=kw.pop("sleep", Sleeps()),
        **kw,
    )


def fill(s: S3VectorsStore, chunks: list[Chunk] | None = None) -> S3VectorsStore:
    chunks = chunks or make_chunks()
    s.upsert(chunks, EMB.embed_documents([embedding_text(c) for c in chunks]))
    s.flush()
    return s


@pytest.fixture
def store(server: Server, bucket: str, index: str) -> S3VectorsStore:
    return fill(open_store(server, bucket, index))


def ids(hits: list[Any]) -> list[str]:
    return [h.chunk.chunk_id for h in hits]


# --------------------------------------------------------------------------- the index


def test_index_is_created_on_the_first_write_only(server: Server, bucket: str, index: str) -> None:
    s = open_store(server, bucket, index)
    assert s.count_chunks() == 0 and s.dense_search(EMB.embed_query("x"), 3) == []
    assert s.index_version() == "none" and "does not exist yet" in (s.health().detail or "")
    names = [i["indexName"] for i in server.client().list_indexes(vectorBucketName=bucket)["indexes"]]
    assert index not in names  # reads never create it
    fill(s)
    got = server.client().get_index(vectorBucketName=bucket, indexName=index)["index"]
    assert (got["dimension"], got["distanceMetric"], got["dataType"]) == (64, "cosine", "float32")
    config = got["metadataConfiguration"]
    assert config["nonFilterableMetadataKeys"] == ["text", "chunk"]
    assert [(c["metadataKey"], c.get("language")) for c in config["textSearchConfigurations"]] == [
        ("text", "en")
    ]


def test_refuses_another_embedder_and_another_dimension(store: S3VectorsStore, server: Server) -> None:
    with pytest.raises(EmbedderMismatchError, match="built with embedder 'hash:64' but 'local:other'"):
        open_store(server, store.bucket, store.index, name="local:other").count_chunks()
    with pytest.raises(EmbedderMismatchError, match="dimension 64"):
        open_store(server, store.bucket, store.index, dimension=32).count_chunks()


def test_refuses_an_index_of_another_metric(server: Server, bucket: str, index: str) -> None:
    server.client().create_index(
        vectorBucketName=bucket, indexName=index, dataType="float32", dimension=64, distanceMetric="euclidean"
    )
    with pytest.raises(StoreError, match="euclidean metric"):
        open_store(server, bucket, index).count_chunks()


@fake_only
def test_an_index_created_meanwhile_by_another_process_is_used(store: S3VectorsStore, server: Server) -> None:
    server.fake.fail_next("GetIndex", 1, code="NotFoundException", status=404)  # looked before it existed
    late = open_store(server, store.bucket, store.index, client=server.client(attempts=1))
    fill(late, [make_chunks()[0].model_copy(update={"chunk_id": "c4", "source": "/d/new.md"})])
    assert late.count_chunks() == 4 and store.count_documents() == 3


def test_a_missing_bucket_is_a_clear_error(server: Server, index: str) -> None:
    s = open_store(server, f"missing-{uuid.uuid4().hex[:8]}", index)
    with pytest.raises(StoreError, match=r"was not found.*check s3vectors_bucket"):
        fill(s)


# --------------------------------------------------------------------------- writes and reads


def test_roundtrip_of_every_chunk_field(store: S3VectorsStore) -> None:
    odd = Chunk(
        chunk_id="c9",
        source="odd.md",
        title=None,
        text="Ünïcode — text\nwith lines",
        heading_path=["B", "A", "B"],
        position=0,
        content_hash="h9",
        url="https://docs.example.com/odd#x",
        collection="help",
    )
    fill(store, [odd])
    hits = store.lexical_search("ünïcode lines", 3)
    assert [h.chunk for h in hits] == [odd]
    dense = store.dense_search(EMB.embed_documents([embedding_text(make_chunks()[2])])[0], 1)
    assert [h.chunk for h in dense] == [make_chunks()[2]]
    vectors = store.get_embeddings(["c1", "missing", rq.MANIFEST_KEY])
    assert list(vectors) == ["c1"]
    np.testing.assert_allclose(
        vectors["c1"], EMB.embed_documents([embedding_text(make_chunks()[0])])[0], atol=1e-6
    )


def test_upsert_replaces_by_chunk_id(store: S3VectorsStore) -> None:
    changed = make_chunks()[0].model_copy(update={"text": "Keys are rotated weekly.", "content_hash": "new"})
    fill(store, [changed])
    assert store.count_chunks() == 3
    assert [h.chunk for h in store.lexical_search("weekly", 3)] == [changed]


def test_wrong_embedding_shape_is_rejected(store: S3VectorsStore) -> None:
    with pytest.raises(ValueError, match="shape"):
        store.upsert(make_chunks()[:1], np.zeros((1, 3), dtype=np.float32))


def test_metadata_the_service_would_refuse_fails_the_document_before_any_write(
    server: Server, bucket: str, index: str
) -> None:
    s = open_store(server, bucket, index)
    too_many = make_chunks()[0].model_copy(update={"tags": [f"tag-{i}-" + "x" * 90 for i in range(30)]})
    with pytest.raises(LoaderError, match="2048") as error:
        s.upsert([make_chunks()[1], too_many], EMB.embed_documents(["a", "b"]))
    assert error.value.source == "/d/keys.md"
    assert s.count_chunks() == 0


def test_lexical_leg_and_filters(store: S3VectorsStore) -> None:
    assert store.lexical_mode == "service"
    lexical = store.lexical_search("invoices emailed", 3)
    assert ids(lexical) == ["c3"] and lexical[0].score > 0
    assert store.lexical_search("zebra", 3) == []
    assert ids(store.lexical_search("keys invoices", 3, SearchFilter(tags=["billing"]))) == ["c3"]
    assert set(ids(store.lexical_search("key keys invoices", 3, SearchFilter(source_prefix="/d/k")))) == {
        "c1",
        "c2",
    }
    both = SearchFilter(tags=["security", "admin"])  # every tag is required
    assert ids(store.lexical_search("keys rotation console", 3, both)) == ["c2"]
    assert store.lexical_search("invoices", 3, SearchFilter(source_prefix="/nowhere")) == []
    assert store.lexical_search("invoices", 3, SearchFilter(collection="other")) == []


def test_dense_leg_returns_cosine_similarities_and_filters(store: S3VectorsStore) -> None:
    query = EMB.embed_query("rotate api key console")
    dense = store.dense_search(query, 2)
    assert ids(dense)[:1] == ["c1"] and len(dense) == 2
    vectors = store.get_embeddings(ids(dense))
    for h in dense:
        assert h.score == pytest.approx(float(vectors[h.chunk.chunk_id] @ query), abs=1e-4)
    q = EMB.embed_query("keys invoices")
    assert {h.chunk.source for h in store.dense_search(q, 3, SearchFilter(tags=["billing"]))} == {
        "/d/billing.md"
    }
    assert {h.chunk.source for h in store.dense_search(q, 3, SearchFilter(source_prefix="/d/k"))} == {
        "/d/keys.md"
    }
    assert ids(store.dense_search(q, 3, SearchFilter(tags=["security", "admin"]))) == ["c2"]
    assert store.dense_search(q, 3, SearchFilter(tags=["nothing"])) == []


def test_the_manifest_is_never_a_result(store: S3VectorsStore) -> None:
    unit = np.zeros(EMB.dimension, dtype=np.float32)
    unit[0] = 1.0  # the manifest's own vector: its nearest neighbour
    hits = store.dense_search(unit, 3)
    assert len(hits) == 3 and rq.MANIFEST_KEY not in ids(hits)
    assert store.count_chunks() == 3 and rq.MANIFEST_KEY not in store.source_hashes()


def test_hybrid_retrieval_over_s3_vectors(store: S3VectorsStore) -> None:
    retriever = HybridRetriever(EMB, store, candidates=10)
    top = retriever.retrieve("when do old keys expire after rotation", 3)
    assert top[0].chunk.chunk_id == "c2"
    assert top[0].dense_score is not None and top[0].lexical_score is not None
    assert [r.chunk.chunk_id for r in retriever.retrieve("keys", 3, SearchFilter(tags=["billing"]))] == ["c3"]


def test_lexical_leg_without_the_service_full_text_search(server: Server, bucket: str, index: str) -> None:
    """An index created without the text search configuration: BM25 here, over the listing, same results."""
    definition = rq.index_definition(dimension=EMB.dimension)
    definition["metadataConfiguration"].pop("textSearchConfigurations")
    server.client().create_index(vectorBucketName=bucket, indexName=index, **definition)
    s = fill(open_store(server, bucket, index))
    assert s.lexical_mode == "local" and "local BM25" in (s.health().detail or "")
    assert ids(s.lexical_search("invoices emailed", 3)) == ["c3"]
    assert ids(s.lexical_search("keys rotation console", 3, SearchFilter(tags=["security", "admin"]))) == [
        "c2"
    ]
    assert s.term_counts(["invoices", "zebra"]) == {"invoices": 1, "zebra": 0}
    s.delete_source("/d/billing.md")
    s.flush()
    assert s.lexical_search("invoices", 3) == [] and s.term_counts(["invoices"]) == {"invoices": 0}


def test_term_counts_follow_ingest_and_removal(store: S3VectorsStore) -> None:
    counts = store.term_counts(["invoices", "invoice", "rotation", "keys", "zebra"])
    assert counts == {"invoices": 1, "invoice": 1, "rotation": 2, "keys": 2, "zebra": 0}
    assert store.term_counts(["invoices"], "other") == {"invoices": 0}
    assert store.term_counts([]) == {}
    store.delete_source("/d/billing.md")
    store.flush()
    assert store.term_counts(["invoices", "rotation"]) == {"invoices": 0, "rotation": 2}


def test_delete_source_delete_ids_and_counts(store: S3VectorsStore) -> None:
    assert store.count_chunks() == 3 and store.count_documents() == 2
    assert store.chunk_ids_for_source("/d/keys.md") == ["c1", "c2"]
    store.delete_ids(["c2", "never-indexed"])
    assert store.chunk_ids_for_source("/d/keys.md") == ["c1"]
    assert store.delete_source("/d/keys.md") == 1 and store.delete_source("/d/keys.md") == 0
    store.flush()
    assert store.count_chunks() == 1 and store.count_documents() == 1
    assert store.lexical_search("rotate", 3) == []
    assert store.source_hashes() == {"/d/billing.md": "hash-/d/billing.md"}


def test_index_version_moves_with_writes_only_and_other_processes_see_them(
    store: S3VectorsStore, server: Server
) -> None:
    other = open_store(server, store.bucket, store.index)  # a second process
    version = other.index_version()
    assert version == store.index_version() != "none"
    assert store.index_version() == version  # reading changes nothing
    extra = make_chunks()[0].model_copy(update={"chunk_id": "c4", "source": "/d/new.md"})
    fill(store, [extra])
    assert store.index_version() != version
    fresh = open_store(server, store.bucket, store.index)
    assert fresh.index_version() == store.index_version()
    assert fresh.count_chunks() == 4 and fresh.count_documents() == 3
    assert other.count_chunks() == 4  # the listing is renewed when the version moved
    store.flush()  # nothing written since: the version stays
    assert store.index_version() == fresh.index_version()


@fake_only
def test_listings_and_writes_page_past_the_service_limits(server: Server, bucket: str, index: str) -> None:
    s = open_store(server, bucket, index, dimension=8)
    n = 1200
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
    before = len(server.fake.calls("PutVectors"))
    s.upsert(chunks, np.random.default_rng(0).normal(size=(len(chunks), 8)).astype(np.float32))
    s.flush()
    sizes = [len(body["vectors"]) for body in server.fake.calls("PutVectors")[before:]]
    assert max(sizes) <= rq.MAX_PUT_VECTORS and sum(sizes) == len(chunks) + 2  # + the manifest, twice
    fresh = open_store(server, bucket, index, dimension=8)
    hashes = fresh.source_hashes()
    assert len(hashes) == n and hashes["/docs/01199.md"] == "h1199"
    assert fresh.count_chunks() == len(chunks) == n + 12
    assert fresh.chunk_ids_for_source("/docs/00100.md") == ["id100-0", "id100-1"]
    listed = server.fake.calls("ListVectors")
    assert len(listed) >= 2 and all(body.get("maxResults", 0) <= rq.MAX_LIST_RESULTS for body in listed)


@fake_only
def test_a_throttled_batch_is_split_and_retried(server: Server, bucket: str, index: str) -> None:
    sleeps = Sleeps()
    s = open_store(server, bucket, index, client=server.client(attempts=1), sleep=sleeps)
    fill(s, make_chunks()[:1])
    server.fake.fail_next("PutVectors", 1, code="TooManyRequestsException", status=429)
    before = len(server.fake.calls("PutVectors"))
    fill(s, make_chunks()[1:])
    assert s.count_chunks() == 3
    sizes = [
        (len(body["vectors"]), body["vectors"][0]["key"]) for body in server.fake.calls("PutVectors")[before:]
    ]
    assert sizes == [(2, "c2"), (1, "c2"), (1, "c3"), (1, rq.MANIFEST_KEY)]  # refused, the halves, flush
    assert sleeps == [0.5]


@fake_only
def test_a_write_refused_every_time_raises_retryable(server: Server, bucket: str, index: str) -> None:
    sleeps = Sleeps()
    s = open_store(server, bucket, index, client=server.client(attempts=1), sleep=sleeps)
    fill(s, make_chunks()[:1])
    server.fake.fail_next("PutVectors", WRITE_ATTEMPTS, code="ServiceUnavailableException", status=503)
    with pytest.raises(StoreUnavailableError, match="ServiceUnavailableException"):
        fill(s, make_chunks()[1:2])
    assert len(sleeps) == WRITE_ATTEMPTS - 1 and sleeps == sorted(sleeps)


@fake_only
def test_refused_permissions_name_the_fix(server: Server, bucket: str, index: str) -> None:
    s = open_store(server, bucket, index, client=server.client(attempts=1))
    server.fake.fail_next("GetIndex", 1, code="AccessDeniedException", status=403)
    with pytest.raises(StoreError, match=r"refused index lookup.*s3vectors:GetVectors") as error:
        s.count_chunks()
    assert not isinstance(error.value, StoreUnavailableError)


def test_unreachable_endpoint() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = boto3.client(
        "s3vectors",
        endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2),
        **FAKE_CREDENTIALS,
    )
    s = S3VectorsStore(client=client, bucket="b-1", index="i-1", embedder_name=EMB.name, dimension=64)
    with pytest.raises(StoreUnavailableError, match="index lookup failed"):
        s.count_chunks()
    assert not s.health().ok


# --------------------------------------------------------------------------- ingestion


GUIDE = (
    "# Guide\n\n## Install\n\nRun the installer and accept the licence.\n\n"
    "## Upgrade\n\nDownload the new release.\n"
)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_ingest_reingest_and_change(server: Server, bucket: str, index: str, tmp_path: Path) -> None:
    s = open_store(server, bucket, index)
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
    assert before & after and before != after
    notes = s.chunk_ids_for_source(source_for(tmp_path / "docs" / "notes.txt"))
    assert s.count_chunks() == len(after) + len(notes)  # no orphans
    assert [h.chunk.source for h in s.lexical_search("portal", 3)] == [source_for(guide)]
    removed = ingestor.remove_paths([guide])
    assert removed.sources_removed == [source_for(guide)] and s.count_documents() == 1
