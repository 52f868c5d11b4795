"""A local AWS for integration tests: moto in server mode, a bucket whose notifications go to a queue
(optionally with a dead-letter queue), and the part of Lambda's SQS event source mapping that matters.

moto delivers S3 event notifications to SQS for real and applies a queue's redrive policy on receive:
a message received ``maxReceiveCount`` times and still not deleted moves to the dead-letter queue.
"""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
Message = dict[str, Any]


@contextmanager
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def set_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> None:
    """Fake credentials, no user config, S3 at ``url``, a fresh home and the hashing embedder."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_ENDPOINT_URL_S3": url,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "rag-explorer",
        "RAG_EXPLORER_HOME": str(tmp_path / "home"),
        "RAG_EXPLORER_EMBEDDER": "hash:256",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def load_handler(name: str) -> ModuleType:
    """Import functions/<name>/handler.py as a new module: a cold start."""
    path = ROOT / "functions" / name / "handler.py"
    spec = importlib.util.spec_from_file_location(f"_lambda_{name}_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Delivery:
    """What one invocation of the ingest Lambda did with its batch."""

    received: int
    failed: list[str] = field(default_factory=list)


class DocsBucket:
    """A bucket whose object events go to a queue; with ``max_receive_count``, a dead-letter queue too.

    With ``shards`` > 1, the events of keys under ``s<i>/`` go to queue *i* instead (S3 prefix filters):
    moto's receive scans the whole queue, so a thousand events are received much faster from ten
    queues. :meth:`receive` polls them all; the other queue methods use the first.
    """

    def __init__(self, url: str, *, max_receive_count: int | None = None, shards: int = 1) -> None:
        self.s3 = boto3.client("s3", endpoint_url=url, region_name=REGION)
        self.sqs = boto3.client("sqs", endpoint_url=url, region_name=REGION)
        suffix = uuid.uuid4().hex[:10]
        self.bucket = f"docs-{suffix}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.dlq_url: str | None = None
        attributes: dict[str, str] = {}
        if max_receive_count is not None:
            self.dlq_url = self.sqs.create_queue(QueueName=f"ingest-dlq-{suffix}")["QueueUrl"]
            policy = {
                "deadLetterTargetArn": self._arn(self.dlq_url),
                "maxReceiveCount": str(max_receive_count),
            }
            attributes["RedrivePolicy"] = json.dumps(policy)
        self.queue_urls = [
            self.sqs.create_queue(QueueName=f"ingest-{suffix}-{i}", Attributes=attributes)["QueueUrl"]
            for i in range(shards)
        ]
        self.queue_url = self.queue_urls[0]
        self.queue_arn = self._arn(self.queue_url)
        events = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
        configurations: list[dict[str, Any]] = [{"QueueArn": self.queue_arn, "Events": events}]
        if shards > 1:
            configurations = [
                {
                    "QueueArn": self._arn(queue_url),
                    "Events": events,
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": f"s{i}/"}]}},
                }
                for i, queue_url in enumerate(self.queue_urls)
            ]
        self.s3.put_bucket_notification_configuration(
            Bucket=self.bucket, NotificationConfiguration={"QueueConfigurations": configurations}
        )
        for queue_url in self.queue_urls:
            self.drop_test_events(queue_url)

    def _arn(self, queue_url: str) -> str:
        attrs = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    def drop_test_events(self, queue_url: str) -> None:
        for m in self._receive(queue_url):
            if '"s3:TestEvent"' in m["Body"]:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            else:
                self.sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )

    # ------------------------------------------------------------------ objects

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def objects(self) -> dict[str, bytes]:
        """Every object now in the bucket, with its content."""
        found: dict[str, bytes] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                found[item["Key"]] = self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
        return found

    # ------------------------------------------------------------------ queues

    def _receive(self, queue_url: str) -> list[Message]:
        got = self.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30, AttributeNames=["All"]
        )
        return list(got.get("Messages", []))

    def receive(self, expected: int, *, timeout_s: float = 20) -> list[Message]:
        """Exactly ``expected`` messages from the ingest queue(s) (left in flight, not deleted)."""
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while len(messages) < expected and time.monotonic() < deadline:
            for queue_url in self.queue_urls:
                messages.extend(self._receive(queue_url))
        assert len(messages) == expected, f"expected {expected} messages, got {len(messages)}"
        return messages

    def depth(self, queue_url: str | None = None) -> int:
        """Visible plus in-flight messages."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def sqs_event(self, messages: list[Message]) -> dict[str, Any]:
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

    def deliver(self, handler: ModuleType, messages: list[Message], context: Any) -> Delivery:
        """One invocation: the succeeded messages are deleted, the reported failures become visible again
        (as when their visibility timeout expires; SQS counts the next receive)."""
        result = handler.lambda_handler(self.sqs_event(messages), context)
        failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
        for m in messages:
            if m["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return Delivery(received=len(messages), failed=failed)

    def run_event_source(self, handler: ModuleType, context: Any, *, max_rounds: int = 20) -> list[Delivery]:
        """Poll the queue and invoke the handler until a receive finds nothing (failed messages are
        redelivered, and moved to the dead-letter queue by the redrive policy)."""
        deliveries: list[Delivery] = []
        for _ in range(max_rounds):
            messages = self._receive(self.queue_url)
            if not messages:
                return deliveries
            deliveries.append(self.deliver(handler, messages, context))
        raise AssertionError(f"the queue did not drain in {max_rounds} rounds")

    def redrive_dead_letters(self) -> int:
        """Move every dead-lettered message back to the ingest queue; returns how many.

        SQS's own redrive is ``start_message_move_task``, which moto does not implement: this is what
        it does, message by message (receive from the DLQ, send the same body, delete from the DLQ).
        """
        assert self.dlq_url is not None
        moved = 0
        while messages := self._receive(self.dlq_url):
            for m in messages:
                self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=m["Body"])
                self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=m["ReceiptHandle"])
                moved += 1
        return moved
