"""S3 object events that an EventBridge rule sends to the ingest queue (the deployed route), read like S3
notifications: the fixture tests/events/sqs_eventbridge_s3_event.json is a real-shaped SQS batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.s3_sync import NotAnS3EventError, ObjectRef, parse_message

EVENT = Path(__file__).resolve().parents[1] / "events" / "sqs_eventbridge_s3_event.json"


def bodies() -> list[str]:
    return [r["body"] for r in json.loads(EVENT.read_text(encoding="utf-8"))["Records"]]


def event(detail_type: str, reason: str, key: str = "a.md", **detail: Any) -> str:
    return json.dumps(
        {
            "version": "0",
            "detail-type": detail_type,
            "source": "aws.s3",
            "detail": {"bucket": {"name": "b"}, "object": {"key": key}, "reason": reason, **detail},
        }
    )


def test_created_and_deleted_read_as_notification_event_names_with_decoded_keys() -> None:
    created, deleted = bodies()
    assert parse_message(created) == [
        ObjectRef("rag-explorer-docs", "handbook/getting started.md", "ObjectCreated:PutObject")
    ]
    assert parse_message(deleted) == [
        ObjectRef("rag-explorer-docs", "handbook/old page.md", "ObjectRemoved:DeleteObject")
    ]


def test_a_lifecycle_expiration_is_reconciled_like_a_notification_one() -> None:
    [ref] = parse_message(event("Object Deleted", "Lifecycle Expiration", key="x%2By+z.md"))
    assert ref == ObjectRef("b", "x+y z.md", "LifecycleExpiration:LifecycleExpiration")


def test_other_detail_types_keep_their_name_and_are_ignored_by_the_handler() -> None:
    [ref] = parse_message(event("Object Tags Added", "PutObjectTagging"))
    assert ref.event_name == "Object Tags Added"
    assert not ref.event_name.startswith(("ObjectCreated:", "ObjectRemoved:", "LifecycleExpiration:"))


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"source": "aws.s3", "detail-type": "Object Created"}),
        json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}}}),
        json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": "x"}),
    ],
)
def test_a_malformed_eventbridge_event_is_not_an_s3_event(body: str) -> None:
    with pytest.raises(NotAnS3EventError):
        parse_message(body)


def test_an_event_of_another_source_is_still_rejected() -> None:
    with pytest.raises(NotAnS3EventError):
        parse_message(json.dumps({"source": "aws.ec2", "detail-type": "EC2 Instance State-change"}))
