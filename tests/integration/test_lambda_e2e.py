"""The Lambda handlers end to end against a real local AWS (moto server): S3 -> SQS -> ingest Lambda ->
Chroma index -> query Lambda behind API Gateway events.

moto delivers the bucket's event notifications to the queue for real; the tests receive those messages
and play the part of the SQS event source mapping (invoke with the batch, delete what succeeded, make
the reported failures visible again). Handler modules are loaded fresh from ``functions/<name>/handler.py``
after the environment is set, as a cold start would.
"""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from shared.errors import StoreUnavailableError
from shared.models import AskResponse, SearchResponse
from shared.service import RagService

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
BAD = ROOT / "tests" / "fixtures" / "bad_inputs"
REGION = "us-east-1"

KEYS_MD = b"""---
title: API keys
tags: [security]
---
# API keys

## Rotating a key

To rotate your API key, open the console and choose Regenerate key. The old key stops working one hour
after you regenerate it, so update your applications within that hour.
"""

INVOICES_TXT = b"""Billing

Invoices are emailed to the account owner on the first day of every month. Past invoices can be
downloaded from the Billing page of the console.
"""


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Aws:
    """A bucket whose notifications go to a queue, plus the event source mapping's part.

    ``route="eventbridge"``: as deployed, the bucket sends its object events to EventBridge and a rule
    with the stack's pattern (:func:`infra.components.ingestion.object_events_pattern`) sends them to the
    queue (moto's EventBridge delivers to SQS targets for real)."""

    def __init__(self, url: str, route: str = "notification") -> None:
        self.s3 = boto3.client("s3", endpoint_url=url, region_name=REGION)
        self.sqs = boto3.client("sqs", endpoint_url=url, region_name=REGION)
        suffix = uuid.uuid4().hex[:10]
        self.bucket = f"docs-{suffix}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.queue_url = self.sqs.create_queue(QueueName=f"ingest-{suffix}")["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        if route == "eventbridge":
            self._route_through_eventbridge(url)
            return
        self.s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": self.queue_arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}
                ]
            },
        )

    def _route_through_eventbridge(self, url: str) -> None:
        from infra.components.ingestion import object_events_pattern

        events = boto3.client("events", endpoint_url=url, region_name=REGION)
        rule = f"objects-{self.bucket}"
        events.put_rule(Name=rule, EventPattern=json.dumps(object_events_pattern(self.bucket)))
        events.put_targets(Rule=rule, Targets=[{"Id": "ingest", "Arn": self.queue_arn}])
        self.s3.put_bucket_notification_configuration(
            Bucket=self.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def receive(self, expected: int, *, include_test_events: bool = False) -> list[dict[str, Any]]:
        """Receive ``expected`` messages (s3:TestEvent ones are acknowledged and left out)."""
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while len(messages) < expected and time.monotonic() < deadline:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30, AttributeNames=["All"]
            ).get("Messages", [])
            for m in got:
                if not include_test_events and '"s3:TestEvent"' in m["Body"]:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
                    continue
                messages.append(m)
        assert len(messages) == expected, f"expected {expected} messages, got {len(messages)}"
        return messages

    def sqs_event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The event Lambda's SQS event source mapping builds from received messages."""
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }

    def deliver(self, handler: ModuleType, messages: list[dict[str, Any]], context: Any) -> dict[str, Any]:
        """Invoke the ingest Lambda like the event source mapping: delete what succeeded, retry the rest."""
        result = handler.lambda_handler(self.sqs_event(messages), context)
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return result

    def queue_is_empty(self) -> bool:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            attrs["ApproximateNumberOfMessages"] == "0"
            and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
        )


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Aws:
    return make_aws(moto_url, monkeypatch, tmp_path)


@pytest.fixture
def eventbridge_aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Aws:
    """S3 -> EventBridge -> SQS, as the stacks deploy it."""
    return make_aws(moto_url, monkeypatch, tmp_path, route="eventbridge")


def make_aws(
    moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, route: str = "notification"
) -> Aws:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_ENDPOINT_URL_S3": moto_url,  # honoured by boto3 itself: the handler has no test hook
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "rag-explorer",
        "RAG_EXPLORER_HOME": str(tmp_path / "home"),
        "RAG_EXPLORER_EMBEDDER": "hash:256",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    env = Aws(moto_url, route)
    monkeypatch.setenv("RAG_EXPLORER_DOCUMENT_BUCKET", env.bucket)
    return env


def load_handler(name: str) -> ModuleType:
    """Import functions/<name>/handler.py as a new module: a cold start."""
    path = ROOT / "functions" / name / "handler.py"
    spec = importlib.util.spec_from_file_location(f"_lambda_{name}_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def api_event(template: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    event = json.loads((EVENTS / template).read_text(encoding="utf-8"))
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def sources(ingest: ModuleType) -> dict[str, int]:
    store = ingest.service.store
    return {s: len(store.chunk_ids_for_source(s)) for s in store.source_hashes()}


# --------------------------------------------------------------------------- the main flow


def test_upload_ingest_query_delete(
    aws: Aws, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.put("account/api keys.md", KEYS_MD)  # a space: S3 sends it URL-encoded ("api+keys.md")
    aws.put("billing/invoices.txt", INVOICES_TXT)
    messages = aws.receive(2)
    ingest = load_handler("ingest")
    assert aws.deliver(ingest, messages, lambda_context) == {"batchItemFailures": []}
    keys_source = f"s3://{aws.bucket}/account/api keys.md"
    indexed = sources(ingest)
    assert set(indexed) == {keys_source, f"s3://{aws.bucket}/billing/invoices.txt"}
    assert all(n > 0 for n in indexed.values())
    assert aws.queue_is_empty()
    out = capsys.readouterr().out
    assert '"ChunksIndexed"' in out and '"RagExplorer"' in out  # EMF metrics on stdout

    query = load_handler("query")  # a fresh instance reads the index the ingest Lambda wrote
    result = query.lambda_handler(
        api_event("query_event.json", {"question": "How do I rotate my API key?"}), lambda_context
    )
    assert result["statusCode"] == 200
    answer = AskResponse.model_validate_json(result["body"])
    assert answer.decision == "answer"
    assert answer.citations and answer.citations[0].source == keys_source
    assert "[1]" in (answer.answer or "")

    result = query.lambda_handler(
        api_event("search_event.json", {"query": "invoices", "k": 1}), lambda_context
    )
    assert result["statusCode"] == 200
    hits = SearchResponse.model_validate_json(result["body"]).hits
    assert [h.source for h in hits] == [f"s3://{aws.bucket}/billing/invoices.txt"]

    health = load_handler("health")
    result = health.lambda_handler(api_event("health_event.json"), lambda_context)
    assert result["statusCode"] == 200
    result = health.lambda_handler(api_event("health_detailed_event.json"), lambda_context)
    report = json.loads(result["body"])
    assert result["statusCode"] == 200, report
    assert report["document_bucket"]["status"] == "ok" and report["document_bucket"]["bucket"] == aws.bucket
    assert report["store"]["documents"] == 2

    aws.delete("account/api keys.md")
    assert aws.deliver(ingest, aws.receive(1), lambda_context) == {"batchItemFailures": []}
    assert keys_source not in sources(ingest)
    query = load_handler("query")
    result = query.lambda_handler(
        api_event("search_event.json", {"query": "rotate API key", "k": 10}), lambda_context
    )
    assert keys_source not in {h["source"] for h in json.loads(result["body"])["hits"]}


def test_health_detailed_reports_a_missing_bucket(
    aws: Aws, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_EXPLORER_DOCUMENT_BUCKET", "no-such-bucket-here")
    health = load_handler("health")
    result = health.lambda_handler(api_event("health_detailed_event.json"), lambda_context)
    report = json.loads(result["body"])
    assert result["statusCode"] == 503
    assert report["failing"] == ["document_bucket"]
    assert report["store"]["ok"] and report["embedder"]["ok"]


def test_fixture_event_with_an_encoded_key(aws: Aws, lambda_context: Any) -> None:
    event = json.loads((EVENTS / "sqs_s3_event.json").read_text(encoding="utf-8"))
    bucket = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["bucket"]["name"]
    if bucket not in {b["Name"] for b in aws.s3.list_buckets()["Buckets"]}:
        aws.s3.create_bucket(Bucket=bucket)
    aws.s3.put_object(Bucket=bucket, Key="handbook/getting started.md", Body=KEYS_MD)  # "getting+started"
    ingest = load_handler("ingest")
    assert ingest.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert f"s3://{bucket}/handbook/getting started.md" in sources(ingest)


# --------------------------------------------------------------------------- delivery guarantees


def test_duplicate_delivery_adds_nothing(aws: Aws, lambda_context: Any) -> None:
    aws.put("guide.md", KEYS_MD)
    [message] = aws.receive(1)
    ingest = load_handler("ingest")
    result = ingest.lambda_handler(aws.sqs_event([message, message]), lambda_context)  # twice in a batch
    assert result == {"batchItemFailures": []}
    first = sources(ingest)
    assert ingest.lambda_handler(aws.sqs_event([message]), lambda_context) == {"batchItemFailures": []}
    assert sources(ingest) == first  # same chunks, none duplicated
    store = ingest.service.store
    assert store.count_chunks() == sum(first.values())


def test_reordered_create_and_delete_end_with_the_bucket_state(aws: Aws, lambda_context: Any) -> None:
    aws.put("faq.md", KEYS_MD)
    aws.delete("faq.md")
    created, deleted = aws.receive(2)
    assert "ObjectCreated" in created["Body"] and "ObjectRemoved" in deleted["Body"]
    ingest = load_handler("ingest")
    source = f"s3://{aws.bucket}/faq.md"

    ingest.lambda_handler(aws.sqs_event([deleted]), lambda_context)  # delete first...
    ingest.lambda_handler(aws.sqs_event([created]), lambda_context)  # ...then the stale create
    assert source not in sources(ingest)
    ingest.lambda_handler(aws.sqs_event([created, deleted]), lambda_context)  # in order, same batch
    assert source not in sources(ingest)

    aws.put("faq.md", KEYS_MD)  # recreated: even an old event now indexes it
    recreated = aws.receive(1)
    ingest.lambda_handler(aws.sqs_event([deleted]), lambda_context)
    assert sources(ingest).get(source, 0) > 0
    ingest.lambda_handler(aws.sqs_event(recreated), lambda_context)
    assert sources(ingest).get(source, 0) > 0


def test_poisoned_messages_are_acknowledged(
    aws: Aws, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.put("good.md", KEYS_MD)
    aws.put("broken.md", (BAD / "binary.md").read_bytes())
    aws.put("scan.pdf", (BAD / "not_a_pdf.pdf").read_bytes())
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody="{this is not json")
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps({"hello": "world"}))
    messages = aws.receive(5)
    ingest = load_handler("ingest")
    capsys.readouterr()
    # nothing here can succeed on a retry: every message is acknowledged, none is dead-lettered
    assert aws.deliver(ingest, messages, lambda_context) == {"batchItemFailures": []}
    assert set(sources(ingest)) == {f"s3://{aws.bucket}/good.md"}
    assert aws.queue_is_empty()
    out = capsys.readouterr().out
    emf = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
    totals: dict[str, float] = {}
    for blob in emf:
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + (
                    sum(value) if isinstance(value, list) else value
                )
    assert totals["DocumentsFailed"] == 2 and totals["MessagesRejected"] == 2
    assert totals["DocumentsIndexed"] == 1


class FlakyStore:
    """Delegates to the real store but is 'unreachable' for one source."""

    def __init__(self, inner: Any, failing_source: str) -> None:
        self.inner = inner
        self.failing_source = failing_source

    def upsert(self, chunks: Any, embeddings: Any) -> None:
        if any(c.source == self.failing_source for c in chunks):
            raise StoreUnavailableError("OpenSearch cluster unreachable (simulated)")
        self.inner.upsert(chunks, embeddings)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_store_failure_mid_batch_retries_exactly_the_failed_record(aws: Aws, lambda_context: Any) -> None:
    for name in ("a.md", "b.md", "c.md"):
        aws.put(name, KEYS_MD.replace(b"API keys", f"API keys {name}".encode()))
    messages = aws.receive(3)
    ingest = load_handler("ingest")
    real = ingest.sync.service
    failing = f"s3://{aws.bucket}/b.md"
    ingest.sync.service = RagService(
        real.settings, embedder=real.embedder, store=FlakyStore(real.store, failing_source=failing)
    )
    result = aws.deliver(ingest, messages, lambda_context)
    failed_id = next(m["MessageId"] for m in messages if "b.md" in m["Body"])
    assert result == {"batchItemFailures": [{"itemIdentifier": failed_id}]}
    assert set(sources(ingest)) == {f"s3://{aws.bucket}/a.md", f"s3://{aws.bucket}/c.md"}

    ingest.sync.service = real  # the cluster is back; SQS redelivers the failed message
    [retried] = aws.receive(1)
    assert retried["MessageId"] == failed_id and retried["Attributes"]["ApproximateReceiveCount"] == "2"
    assert aws.deliver(ingest, [retried], lambda_context) == {"batchItemFailures": []}
    assert set(sources(ingest)) == {f"s3://{aws.bucket}/{n}" for n in ("a.md", "b.md", "c.md")}
    assert aws.queue_is_empty()


# --------------------------------------------------------------------------- S3 -> EventBridge -> SQS


def test_through_eventbridge_upload_ingest_query_delete(eventbridge_aws: Aws, lambda_context: Any) -> None:
    """The deployed route: the bucket's events reach the queue through an EventBridge rule with the
    stack's pattern, and the ingest function reconciles them as it does notifications."""
    aws = eventbridge_aws
    aws.put("account/api keys.md", KEYS_MD)
    aws.put("billing/invoices.txt", INVOICES_TXT)
    messages = aws.receive(2)
    assert all(json.loads(m["Body"])["detail-type"] == "Object Created" for m in messages)
    ingest = load_handler("ingest")
    assert aws.deliver(ingest, messages, lambda_context) == {"batchItemFailures": []}
    keys_source = f"s3://{aws.bucket}/account/api keys.md"
    assert set(sources(ingest)) == {keys_source, f"s3://{aws.bucket}/billing/invoices.txt"}
    query = load_handler("query")
    result = query.lambda_handler(
        api_event("query_event.json", {"question": "How do I rotate my API key?"}), lambda_context
    )
    assert AskResponse.model_validate_json(result["body"]).citations[0].source == keys_source

    aws.delete("account/api keys.md")
    [deleted] = aws.receive(1)
    assert json.loads(deleted["Body"])["detail-type"] == "Object Deleted"
    assert aws.deliver(ingest, [deleted], lambda_context) == {"batchItemFailures": []}
    assert keys_source not in sources(ingest)
    assert aws.queue_is_empty()


def test_through_eventbridge_other_buckets_events_never_reach_the_queue(
    eventbridge_aws: Aws, lambda_context: Any
) -> None:
    other = f"other-{uuid.uuid4().hex[:10]}"
    eventbridge_aws.s3.create_bucket(Bucket=other)
    eventbridge_aws.s3.put_bucket_notification_configuration(
        Bucket=other, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    eventbridge_aws.s3.put_object(Bucket=other, Key="x.md", Body=KEYS_MD)
    eventbridge_aws.put("mine.md", KEYS_MD)
    [message] = eventbridge_aws.receive(1)
    assert json.loads(message["Body"])["detail"]["object"]["key"] == "mine.md"


def test_through_eventbridge_duplicates_and_reordering(eventbridge_aws: Aws, lambda_context: Any) -> None:
    aws = eventbridge_aws
    aws.put("faq.md", KEYS_MD)
    aws.delete("faq.md")
    created, deleted = aws.receive(2)
    ingest = load_handler("ingest")
    source = f"s3://{aws.bucket}/faq.md"
    ingest.lambda_handler(aws.sqs_event([deleted]), lambda_context)  # delete first...
    ingest.lambda_handler(aws.sqs_event([created, created]), lambda_context)  # ...then a stale create, twice
    assert source not in sources(ingest)

    aws.put("faq.md", KEYS_MD)  # recreated: even the old events now index it, once
    [recreated] = aws.receive(1)
    ingest.lambda_handler(aws.sqs_event([deleted, recreated, recreated]), lambda_context)
    indexed = sources(ingest)
    assert indexed.get(source, 0) > 0
    assert ingest.service.store.count_chunks() == sum(indexed.values())


def test_fixture_eventbridge_batch_with_encoded_keys(aws: Aws, lambda_context: Any) -> None:
    """tests/events/sqs_eventbridge_s3_event.json: a create of an existing object (encoded key
    "getting+started.md") and a delete of a missing one, in one batch."""
    event = json.loads((EVENTS / "sqs_eventbridge_s3_event.json").read_text(encoding="utf-8"))
    bucket = json.loads(event["Records"][0]["body"])["detail"]["bucket"]["name"]
    if bucket not in {b["Name"] for b in aws.s3.list_buckets()["Buckets"]}:
        aws.s3.create_bucket(Bucket=bucket)
    aws.s3.put_object(Bucket=bucket, Key="handbook/getting started.md", Body=KEYS_MD)
    ingest = load_handler("ingest")
    assert ingest.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert f"s3://{bucket}/handbook/getting started.md" in sources(ingest)
    assert f"s3://{bucket}/handbook/old page.md" not in sources(ingest)


# --------------------------------------------------------------------------- the real model


@pytest.mark.slow
def test_end_to_end_with_minilm(aws: Aws, lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_EXPLORER_EMBEDDER")  # the default: local:all-MiniLM-L6-v2
    aws.put("account/keys.md", KEYS_MD)
    aws.put("billing/invoices.txt", INVOICES_TXT)
    ingest = load_handler("ingest")
    assert aws.deliver(ingest, aws.receive(2), lambda_context) == {"batchItemFailures": []}
    assert ingest.service.embedder.name == "local:all-MiniLM-L6-v2"
    query = load_handler("query")
    result = query.lambda_handler(
        api_event("query_event.json", {"question": "When do old API keys stop working?"}), lambda_context
    )
    answer = AskResponse.model_validate_json(result["body"])
    assert answer.decision == "answer", answer.reasons
    assert answer.citations[0].source == f"s3://{aws.bucket}/account/keys.md"
    result = query.lambda_handler(
        api_event("query_event.json", {"question": "What is the boiling point of tungsten?"}), lambda_context
    )
    assert AskResponse.model_validate_json(result["body"]).decision == "refuse"
