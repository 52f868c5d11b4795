"""Faults: the store down or timing out (during ingest and during queries), objects that vanish before
they are read, and duplicated, reordered events at volume. Nothing is lost, nothing is left behind.

The AWS side is moto in server mode (tests/aws.py): real S3 notifications into a real queue, whose
redrive policy moves a message to the dead-letter queue after its third failed delivery. The tests play
Lambda's event source mapping around the real ingest handler (functions/ingest/handler.py).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.s3_sync import S3Sync
from shared.errors import StoreUnavailableError
from shared.models import Chunk, ErrorResponse
from shared.service import RagService
from shared.stores.base import VectorStore
from shared.stores.memory import MemoryStore
from tests.aws import DocsBucket, load_handler, moto_server, set_aws_env

EVENTS = Path(__file__).resolve().parents[1] / "events"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    set_aws_env(monkeypatch, tmp_path, moto_url)
    return moto_url


# --------------------------------------------------------------------------- stores that fail


class Outage:
    """The real store, except that writes for some sources fail: refused at once, or after a timeout."""

    def __init__(self, inner: VectorStore, failing: dict[str, str], *, timeout_s: float = 0.05) -> None:
        self.inner = inner
        self.failing = failing  # source -> "refused" | "timeout"
        self.timeout_s = timeout_s
        self.failures = 0

    def _check(self, sources: set[str]) -> None:
        for source in sorted(sources & set(self.failing)):
            self.failures += 1
            if self.failing[source] == "timeout":
                time.sleep(self.timeout_s)
                raise StoreUnavailableError(f"read timed out after {self.timeout_s} s (simulated)")
            raise StoreUnavailableError("connection refused (simulated)")

    def upsert(self, chunks: list[Chunk], embeddings: Any) -> None:
        self._check({c.source for c in chunks})
        self.inner.upsert(chunks, embeddings)

    def delete_source(self, source: str) -> int:
        self._check({source})
        return self.inner.delete_source(source)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Cluster(MemoryStore):
    """A store behind a network: while ``down``, every call fails as an unreachable cluster's would."""

    def __init__(self, *, dimension: int) -> None:
        super().__init__(dimension=dimension)
        self.down = True

    def __getattribute__(self, name: str) -> Any:
        if (
            not name.startswith("_")
            and name not in ("down", "dimension")
            and object.__getattribute__(self, "down")
        ):
            raise StoreUnavailableError("connection refused: opensearch:443 (simulated)")
        return object.__getattribute__(self, name)


def index_of(store: Any) -> dict[str, set[str]]:
    """source -> its chunk ids."""
    return {s: set(store.chunk_ids_for_source(s)) for s in store.source_hashes()}


def body(key: str, version: int) -> str:
    return f"The body of {key}, version {version}. It explains one thing well."


def doc(key: str, version: int = 1) -> bytes:
    """One chunk per document: a Markdown heading and a body, a text body, or two JSON Lines records."""
    if key.endswith(".jsonl"):
        records = [
            {"_id": f"{key}-{i}", "title": f"Record {i}", "text": f"{key} record {i} v{version}."}
            for i in (0, 1)
        ]
        return "".join(json.dumps(r) + "\n" for r in records).encode()
    if key.endswith(".md"):
        return f"# {key}\n\n{body(key, version)}\n".encode()
    return f"{body(key, version)}\n".encode()


# --------------------------------------------------------------------------- ingest: outage, DLQ, redrive


def test_store_outage_dead_letters_then_redrive_loses_nothing(aws_env: str, lambda_context: Any) -> None:
    docs = DocsBucket(aws_env, max_receive_count=3)
    keys = [f"kb/guide-{i}.md" for i in range(8)] + ["kb/notes one.txt", "kb/corpus.jsonl"]
    for key in keys:
        docs.put(key, doc(key))
    ingest = load_handler("ingest")
    healthy = ingest.sync.service
    src = f"s3://{docs.bucket}/"
    failing = {
        src + "kb/guide-1.md": "refused",
        src + "kb/guide-5.md": "refused",
        src + "kb/notes one.txt": "timeout",
        src + "kb/corpus.jsonl#kb/corpus.jsonl-0": "timeout",
    }
    outage = Outage(healthy.store, failing)
    ingest.sync.service = RagService(healthy.settings, embedder=healthy.embedder, store=outage)

    # the event source mapping keeps redelivering the 4 failed messages; the 4th receive dead-letters them
    deliveries = docs.run_event_source(ingest, lambda_context)
    assert [(d.received, len(d.failed)) for d in deliveries] == [(10, 4), (4, 4), (4, 4)]
    assert outage.failures == 12  # 4 messages x 3 deliveries
    assert docs.depth() == 0 and docs.depth(docs.dlq_url) == 4
    indexed = index_of(healthy.store)
    assert len(indexed) == 6 and not set(failing) & set(indexed)

    # the cluster is back: redrive the dead letters and let the event source mapping process them
    ingest.sync.service = healthy
    assert docs.redrive_dead_letters() == 4
    assert [(d.received, d.failed) for d in docs.run_event_source(ingest, lambda_context)] == [(4, [])]
    assert docs.depth() == 0 and docs.depth(docs.dlq_url) == 0

    # nothing lost: the index equals an index built from the bucket as it is now, chunk for chunk
    reference = RagService(healthy.settings, embedder=healthy.embedder, store=MemoryStore(dimension=256))
    sync = S3Sync(reference, ingest.s3)
    for key in docs.objects():
        sync.reconcile(docs.bucket, key)
    expected = index_of(reference.store)
    assert len(expected) == 11  # 9 files and 2 JSON Lines records
    assert index_of(healthy.store) == expected
    assert healthy.store.count_chunks() == reference.store.count_chunks() == sum(map(len, expected.values()))


# --------------------------------------------------------------------------- ingest: objects that vanish


def test_object_deleted_between_event_and_download(aws_env: str, lambda_context: Any) -> None:
    docs = DocsBucket(aws_env)
    ingest = load_handler("ingest")
    store = ingest.service.store
    docs.put("kb/old.md", doc("kb/old.md"))
    assert docs.deliver(ingest, docs.receive(1), lambda_context).failed == []
    old = f"s3://{docs.bucket}/kb/old.md"
    assert store.chunk_ids_for_source(old)

    docs.put("kb/old.md", doc("kb/old.md", 2))  # a new version, deleted before its event is handled
    docs.delete("kb/old.md")
    docs.put("kb/ghost.md", doc("kb/ghost.md"))  # never indexed: gone before its event is handled
    docs.delete("kb/ghost.md")
    messages = docs.receive(4)
    created = [m for m in messages if "ObjectCreated" in m["Body"]]
    assert len(created) == 2
    # the "created" events find nothing to download: acknowledged (no retry), and no chunk remains
    assert docs.deliver(ingest, created, lambda_context).failed == []
    assert store.chunk_ids_for_source(old) == []
    assert store.chunk_ids_for_source(f"s3://{docs.bucket}/kb/ghost.md") == []
    removed = [m for m in messages if m not in created]
    assert docs.deliver(ingest, removed, lambda_context).failed == []
    assert docs.depth() == 0 and store.count_chunks() == 0


# --------------------------------------------------------------------------- query: store down


def api_event(template: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / template).read_text(encoding="utf-8"))
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def test_store_down_during_queries_is_a_503_and_health_says_so(aws_env: str, lambda_context: Any) -> None:
    query = load_handler("query")
    health = load_handler("health")
    cluster = Cluster(dimension=256)  # unreachable from the start
    for service in (query.service, health.service):
        service.__dict__["store"] = cluster

    for template, body in (
        ("query_event.json", {"question": "How do I rotate my API key?"}),
        ("search_event.json", {"query": "api key rotation"}),
    ):
        event = api_event(template, body)
        result = query.lambda_handler(event, lambda_context)
        assert result["statusCode"] == 503, result
        error = ErrorResponse.model_validate_json(result["body"])  # the API's one error model
        assert error.error == "store_unavailable"
        assert error.message == "the search index is unavailable right now; retry later"
        assert error.request_id == event["requestContext"]["requestId"]
        assert "opensearch:443" not in result["body"]  # no internal detail leaks

    result = health.lambda_handler(api_event("health_detailed_event.json"), lambda_context)
    report = json.loads(result["body"])
    assert result["statusCode"] == 503
    assert report["status"] == "unavailable" and report["failing"] == ["store"]
    assert report["store"]["status"] == "down" and "connection refused" in report["store"]["detail"]
    assert report["embedder"]["ok"]
    assert health.lambda_handler(api_event("health_event.json"), lambda_context)["statusCode"] == 200

    cluster.down = False  # the cluster is back: the same Lambda instances answer again
    result = query.lambda_handler(api_event("search_event.json", {"query": "x"}), lambda_context)
    assert result["statusCode"] == 200, result
    assert health.lambda_handler(api_event("health_detailed_event.json"), lambda_context)["statusCode"] == 200


# --------------------------------------------------------------------------- duplicates and reordering


class QuietStore(MemoryStore):
    """The memory store without the BM25 rebuild on every flush (the lexical index is not under test)."""

    def flush(self) -> None:
        pass


@pytest.mark.slow
def test_a_thousand_duplicated_and_shuffled_events_end_with_the_bucket(
    aws_env: str, lambda_context: Any
) -> None:
    rng = random.Random(20240611)
    docs = DocsBucket(aws_env, shards=10)  # key prefixes s0/ .. s9/: ten queues
    names = [f"kb/doc-{i:03d}.txt" for i in range(270)]
    names += [f"kb/page {i} ✓.md" for i in range(20)] + [f"corpus/c{i}.jsonl" for i in range(10)]
    keys = [f"s{i % 10}/{name}" for i, name in enumerate(names)]
    version = dict.fromkeys(keys, 0)
    live: set[str] = set()
    operations = 0

    def put(key: str) -> None:
        nonlocal operations
        version[key] += 1
        docs.put(key, doc(key, version[key]))
        live.add(key)
        operations += 1

    for key in keys:  # 300 created
        put(key)
    while operations < 910:  # then updated (60%), deleted (25%) and created again (15%)
        roll = rng.random()
        if roll < 0.60 and live:
            put(rng.choice(sorted(live)))
        elif roll < 0.85 and live:
            key = rng.choice(sorted(live))
            docs.delete(key)
            live.discard(key)
            operations += 1
        elif dead := sorted(set(keys) - live):
            put(rng.choice(dead))
    messages = docs.receive(910)
    events = messages + rng.sample(messages, 90)  # 10% delivered twice
    rng.shuffle(events)
    assert len(events) == 1000

    ingest = load_handler("ingest")
    real = ingest.sync.service
    service = RagService(real.settings, embedder=real.embedder, store=QuietStore(dimension=256))
    ingest.sync.service = service
    started = time.perf_counter()
    for i in range(0, len(events), 10):
        result = ingest.lambda_handler(docs.sqs_event(events[i : i + 10]), lambda_context)
        assert result == {"batchItemFailures": []}
    seconds = time.perf_counter() - started

    bucket = docs.objects()
    assert set(bucket) == live  # the model of the bucket is right
    expected: set[tuple[str, str]] = set()
    for key, content in bucket.items():
        source = f"s3://{docs.bucket}/{key}"
        if key.endswith(".jsonl"):
            for line in content.decode().splitlines():
                record = json.loads(line)
                expected.add((f"{source}#{record['_id']}", record["text"]))
        else:
            expected.add((source, body(key, version[key])))  # the latest version, and only it
    chunks = list(service.store._chunks.values())
    assert {(c.source, c.text) for c in chunks} == expected
    assert len(chunks) == len(expected)  # not one duplicate
    print(f"\n1000 events ({len(live)} objects, {len(expected)} chunks) in {seconds:.1f} s")
