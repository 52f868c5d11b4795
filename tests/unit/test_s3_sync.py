"""S3 -> index reconciliation with a fake S3 client, the in-memory store and the hashing embedder."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from botocore.exceptions import ClientError

from shared.adapters.s3_sync import NotAnS3EventError, S3Sync, parse_message
from shared.chunking import embedding_text
from shared.embeddings.hashing import HashingEmbedder
from shared.errors import StoreUnavailableError
from shared.service import RagService
from shared.settings import Settings
from shared.stores.memory import MemoryStore

EVENTS = Path(__file__).resolve().parent.parent / "events"
BUCKET = "docs"
GUIDE = b"# Guide\n\n## Install\n\nRun the installer and accept the licence agreement.\n"
GUIDE_V2 = b"# Guide\n\n## Install\n\nDownload the package, then run the installer as administrator.\n"


def client_error(code: str, status: int, op: str = "GetObject") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, op
    )


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_status: int | None = None
        self.after_get: Callable[[], None] | None = None

    def put(self, key: str, data: bytes) -> None:
        self.objects[(BUCKET, key)] = data

    def _etag(self, data: bytes) -> str:
        return '"' + hashlib.md5(data).hexdigest() + '"'

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.calls.append(("get", Key))
        if self.fail_status:
            raise client_error("InternalError", self.fail_status)
        if (Bucket, Key) not in self.objects:
            raise client_error("NoSuchKey", 404)
        data = self.objects[(Bucket, Key)]
        if self.after_get:
            hook, self.after_get = self.after_get, None
            hook()
        return {"Body": io.BytesIO(data), "ContentLength": len(data), "ETag": self._etag(data)}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.calls.append(("head", Key))
        if (Bucket, Key) not in self.objects:
            raise client_error("404", 404, "HeadObject")
        return {"ETag": self._etag(self.objects[(Bucket, Key)])}


class FlakyStore(MemoryStore):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.down = False

    def upsert(self, chunks: Any, embeddings: Any) -> None:
        if self.down:
            raise StoreUnavailableError("cluster unreachable")
        super().upsert(chunks, embeddings)


class RecordingMetrics:
    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        self.totals[name] = self.totals.get(name, 0) + value

    def milliseconds(self, name: str, value: float) -> None:
        pass


def message(key: str, event: str = "ObjectCreated:Put", bucket: str = BUCKET) -> str:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event,
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key)}},
    }
    return json.dumps({"Records": [record]})


@pytest.fixture
def s3() -> FakeS3:
    return FakeS3()


@pytest.fixture
def store() -> FlakyStore:
    return FlakyStore(dimension=256, lexical_text=embedding_text)


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


@pytest.fixture
def sync(s3: FakeS3, store: FlakyStore, metrics: RecordingMetrics) -> S3Sync:
    service = RagService(
        Settings(embedder="hash:256", max_file_mb=0.01), embedder=HashingEmbedder(256), store=store
    )
    return S3Sync(service, s3, metrics=metrics)


def sources(store: MemoryStore) -> set[str]:
    return set(store.source_hashes())


# --------------------------------------------------------------------------- messages


def test_parse_fixture_event_decodes_keys() -> None:
    event = json.loads((EVENTS / "sqs_s3_event.json").read_text(encoding="utf-8"))
    [ref] = parse_message(event["Records"][0]["body"])
    assert (ref.bucket, ref.key, ref.event_name) == (
        "rag-explorer-docs",
        "handbook/getting started.md",
        "ObjectCreated:Put",
    )


def test_parse_special_keys_test_event_and_sns() -> None:
    [ref] = parse_message(message("a b/ü+x%.md"))
    assert ref.key == "a b/ü+x%.md"
    assert parse_message(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})) == []
    wrapped = json.dumps({"Type": "Notification", "Message": message("k.md")})
    assert parse_message(wrapped)[0].key == "k.md"


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '{"hello": 1}', '{"Records": [{"s3": {}}]}'])
def test_not_an_s3_event(body: str) -> None:
    with pytest.raises(NotAnS3EventError):
        parse_message(body)


def test_rejected_message_is_acknowledged(sync: S3Sync, metrics: RecordingMetrics) -> None:
    assert sync.handle_message("{not json", message_id="m1") == []
    assert metrics.totals == {"MessagesRejected": 1}


# --------------------------------------------------------------------------- reconcile


def test_create_duplicate_update_delete(
    sync: S3Sync, s3: FakeS3, store: FlakyStore, metrics: RecordingMetrics
) -> None:
    s3.put("guide.md", GUIDE)
    [first] = sync.handle_message(message("guide.md"))
    assert first.action == "indexed" and first.chunks > 0
    assert sources(store) == {"s3://docs/guide.md"}
    chunks = store.count_chunks()
    [again] = sync.handle_message(message("guide.md"))  # duplicate delivery
    assert again.action == "unchanged" and store.count_chunks() == chunks
    s3.put("guide.md", GUIDE_V2)
    [updated] = sync.handle_message(message("guide.md"))
    assert updated.action == "indexed"
    assert all("administrator" in c.text for c in store._chunks.values() if "Install" in c.heading_path)
    del s3.objects[(BUCKET, "guide.md")]
    [removed] = sync.handle_message(message("guide.md", "ObjectRemoved:Delete"))
    assert removed.action == "removed" and removed.chunks > 0
    assert store.count_chunks() == 0
    assert metrics.totals["DocumentsIndexed"] == 2 and metrics.totals["DocumentsRemoved"] == 1
    assert metrics.totals["ChunksIndexed"] >= chunks


def test_order_does_not_matter(sync: S3Sync, s3: FakeS3, store: FlakyStore) -> None:
    # the object was created then deleted; the delete event arrives first, the stale create after it
    assert sync.handle_message(message("gone.md", "ObjectRemoved:Delete"))[0].action == "absent"
    assert sync.handle_message(message("gone.md"))[0].action == "absent"
    assert store.count_chunks() == 0
    # created again: even the old delete event, delivered late, indexes what is there now
    s3.put("gone.md", GUIDE)
    assert sync.handle_message(message("gone.md", "ObjectRemoved:Delete"))[0].action == "indexed"
    assert sources(store) == {"s3://docs/gone.md"}


def test_unparseable_document_is_acknowledged_and_old_version_dropped(
    sync: S3Sync, s3: FakeS3, store: FlakyStore, metrics: RecordingMetrics
) -> None:
    s3.put("doc.md", GUIDE)
    sync.handle_message(message("doc.md"))
    s3.put("doc.md", b"\x00\x01\x02 binary \x00" * 10)
    [result] = sync.handle_message(message("doc.md"))  # does not raise: retrying cannot help
    assert result.action == "failed" and result.reason
    assert store.count_chunks() == 0
    assert metrics.totals["DocumentsFailed"] == 1


def test_unsupported_and_too_large_are_skipped(sync: S3Sync, s3: FakeS3, metrics: RecordingMetrics) -> None:
    s3.put("logo.png", b"\x89PNG")
    assert sync.handle_message(message("logo.png"))[0].action == "skipped"
    assert ("get", "logo.png") not in s3.calls  # not even downloaded
    s3.put("huge.md", b"# Huge\n\n" + b"word " * 5000)  # > max_file_mb=0.01
    [big] = sync.handle_message(message("huge.md"))
    assert big.action == "skipped" and "too large" in (big.reason or "")
    assert metrics.totals["DocumentsSkipped"] == 2


def test_other_event_types_are_ignored(sync: S3Sync, s3: FakeS3) -> None:
    s3.put("guide.md", GUIDE)
    assert sync.handle_message(message("guide.md", "ObjectTagging:Put")) == []
    assert s3.calls == []


def test_s3_server_error_raises_for_retry(sync: S3Sync, s3: FakeS3) -> None:
    s3.put("guide.md", GUIDE)
    s3.fail_status = 503
    with pytest.raises(ClientError):
        sync.handle_message(message("guide.md"))


def test_store_error_raises_for_retry_and_nothing_is_lost(
    sync: S3Sync, s3: FakeS3, store: FlakyStore
) -> None:
    s3.put("guide.md", GUIDE)
    store.down = True
    with pytest.raises(StoreUnavailableError):
        sync.handle_message(message("guide.md"))
    store.down = False
    assert sync.handle_message(message("guide.md"))[0].action == "indexed"  # the retry
    assert sources(store) == {"s3://docs/guide.md"}


def test_object_changed_while_indexing_is_reconciled_again(
    sync: S3Sync, s3: FakeS3, store: FlakyStore
) -> None:
    s3.put("guide.md", GUIDE)
    s3.after_get = lambda: s3.put("guide.md", GUIDE_V2)  # a newer upload lands mid-flight
    [result] = sync.handle_message(message("guide.md"))
    assert result.action == "indexed"
    texts = " ".join(c.text for c in store._chunks.values())
    assert "administrator" in texts and "licence" not in texts


def test_object_deleted_while_indexing_leaves_nothing(sync: S3Sync, s3: FakeS3, store: FlakyStore) -> None:
    s3.put("guide.md", GUIDE)
    s3.after_get = lambda: s3.objects.pop((BUCKET, "guide.md"))
    # indexed from the bytes already read, then found gone by the re-check and removed again
    assert sync.handle_message(message("guide.md"))[0].action == "removed"
    assert store.count_chunks() == 0


def test_jsonl_records_follow_their_object(sync: S3Sync, s3: FakeS3, store: FlakyStore) -> None:
    lines = [
        {"_id": "d1", "title": "One", "text": "Alpha beta gamma."},
        {"_id": "d2", "text": "Delta epsilon."},
    ]
    s3.put("corpus.jsonl", "\n".join(json.dumps(x) for x in lines).encode())
    sync.handle_message(message("corpus.jsonl"))
    assert sources(store) == {"s3://docs/corpus.jsonl#d1", "s3://docs/corpus.jsonl#d2"}
    s3.put("corpus.jsonl", json.dumps(lines[0]).encode())  # d2 dropped from the file
    sync.handle_message(message("corpus.jsonl"))
    assert sources(store) == {"s3://docs/corpus.jsonl#d1"}
    del s3.objects[(BUCKET, "corpus.jsonl")]
    sync.handle_message(message("corpus.jsonl", "ObjectRemoved:Delete"))
    assert sources(store) == set()


def test_title_falls_back_to_the_key_name(sync: S3Sync, s3: FakeS3, store: FlakyStore) -> None:
    s3.put("notes/release notes.txt", b"")  # empty: a LoaderError, acknowledged
    assert sync.handle_message(message("notes/release notes.txt"))[0].action == "failed"
    s3.put("notes/plain.md", b"No heading here, just a sentence about the installer.")
    sync.handle_message(message("notes/plain.md"))
    assert {c.title for c in store._chunks.values()} == {"plain"}  # not the temporary file's name


class ShrinkingContext:
    """A Lambda context whose remaining time drops by ``step_ms`` each time it is asked."""

    aws_request_id = "00000000-0000-4000-8000-000000000000"

    def __init__(self, start_ms: int, step_ms: int) -> None:
        self.left, self.step = start_ms, step_ms

    def get_remaining_time_in_millis(self) -> int:
        left = self.left
        self.left -= self.step
        return left


def test_records_are_started_only_while_the_invocation_has_time(
    sync: S3Sync, s3: FakeS3, store: FlakyStore, metrics: RecordingMetrics
) -> None:
    """Each record may need loader_timeout_s + 30 s; the rest of the batch is deferred untouched."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    for i in range(4):
        s3.put(f"doc{i}.md", GUIDE + f"\nPage {i}.\n".encode())
    event = {
        "Records": [
            {"messageId": f"m{i}", "body": message(f"doc{i}.md"), "attributes": {}, "eventSource": "aws:sqs"}
            for i in range(4)
        ]
    }
    needed_ms = int((sync.service.settings.loader_timeout_s + 30) * 1000)
    context = ShrinkingContext(start_ms=needed_ms + 60_000, step_ms=40_000)  # room for two records
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    result = process_partial_response(
        event=event, record_handler=sync.handle_record, processor=processor, context=context
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]}
    assert sources(store) == {"s3://docs/doc0.md", "s3://docs/doc1.md"}
    assert not any(key in ("doc2.md", "doc3.md") for _, key in s3.calls)  # deferred: no work at all
    assert metrics.totals["RecordsDeferred"] == 2
