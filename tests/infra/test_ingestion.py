"""S3 -> SQS -> ingest function (stateless stack)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.components.ingestion import OBJECT_EVENTS
from infra.config import FunctionsConfig, stage_config
from tests.infra.conftest import Synthesized


def one(stage: Synthesized, resource_type: str, prefix: str) -> tuple[str, dict[str, Any]]:
    found = [
        (k, v) for k, v in stage.resources(stage.stateless, resource_type).items() if k.startswith(prefix)
    ]
    assert len(found) == 1, found
    return found[0]


def test_queue_has_a_dead_letter_queue_and_is_encrypted(stage: Synthesized) -> None:
    _, queue = one(stage, "AWS::SQS::Queue", "IngestionQueue")
    dlq_id, dlq = one(stage, "AWS::SQS::Queue", "IngestionDeadLetterQueue")
    props = queue["Properties"]
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": 5,
    }
    assert props["SqsManagedSseEnabled"] is True and dlq["Properties"]["SqsManagedSseEnabled"] is True
    assert props["VisibilityTimeout"] == 6 * 300  # six times the function timeout
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_both_queues_deny_plain_http(stage: Synthesized) -> None:
    policies = stage.resources(stage.stateless, "AWS::SQS::QueuePolicy").values()
    denied = [
        p
        for p in policies
        if any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
    ]
    assert len(denied) == 2


def test_object_events_go_through_eventbridge_to_the_queue(stage: Synthesized) -> None:
    """The bucket (stateful) sends its events to EventBridge natively; a rule (stateless) sends the
    bucket's created and deleted objects to the queue, undeliverable ones to the dead-letter queue. No
    bucket notification custom resource anywhere ("Configurations overlap" on updates)."""
    (bucket,) = [
        b for k, b in stage.resources(stage.stateful, "AWS::S3::Bucket").items() if k == "DocumentBucket"
    ]
    assert bucket["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    for template in (stage.stateful, stage.stateless):
        assert not stage.resources(template, "Custom::S3BucketNotifications")
    queue_id, _ = one(stage, "AWS::SQS::Queue", "IngestionQueue")
    dlq_id, _ = one(stage, "AWS::SQS::Queue", "IngestionDeadLetterQueue")
    rule_id, rule = one(stage, "AWS::Events::Rule", "IngestionObjectEvents")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == list(OBJECT_EVENTS) == ["Object Created", "Object Deleted"]
    (bucket_name,) = pattern["detail"]["bucket"]["name"]
    assert "DocumentBucket" in json.dumps(bucket_name)  # the stateful stack's bucket only
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    # EventBridge may send to both queues, from this rule only
    for policy in stage.resources(stage.stateless, "AWS::SQS::QueuePolicy").values():
        (allow,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}


def test_ingest_function_reads_the_queue_in_batches_with_partial_failures(stage: Synthesized) -> None:
    function_id, function = one(stage, "AWS::Lambda::Function", "IngestionFunction")
    props = function["Properties"]
    assert props["Runtime"] == "python3.12" and props["Architectures"] == ["arm64"]
    assert props["Handler"] == "handler.lambda_handler"
    # no reserved concurrency: the SQS poller would be throttled and count the throttles as receives
    assert "ReservedConcurrentExecutions" not in props
    assert props["Timeout"] == 300 and props["TracingConfig"] == {"Mode": "Active"}
    (mapping,) = stage.resources(stage.stateless, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionName"] == {"Ref": function_id}
    assert mapping["Properties"]["BatchSize"] == 5
    assert mapping["Properties"]["MaximumBatchingWindowInSeconds"] == 10
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_ingest_reads_documents_and_lists_the_bucket(stage: Synthesized) -> None:
    _, policy = one(stage, "AWS::IAM::Policy", "IngestionFunctionRoleDefaultPolicy")
    actions = [s["Action"] for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    assert "s3:GetObject" in actions and "s3:ListBucket" in actions
    assert not any(a in ("s3:PutObject", "s3:DeleteObject", "s3:*") for a in actions)


def test_the_event_source_bounds_concurrency_so_a_burst_waits_in_the_queue(stage: Synthesized) -> None:
    """The synthesized mapping caps the batches in flight (2 dev, 4 prod): the poller receives no more
    than that many, so nothing is throttled and no receive is spent on a throttle."""
    (mapping,) = stage.resources(stage.stateless, "AWS::Lambda::EventSourceMapping").values()
    expected = stage_config(stage.stage).functions.ingest_max_concurrency
    assert expected == (2 if stage.stage == "dev" else 4)
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": expected}


@pytest.mark.parametrize("value", [1, 1001])
def test_max_concurrency_outside_what_lambda_accepts_fails_synth(value: int) -> None:
    with pytest.raises(ValueError, match="between 2 and 1000"):
        FunctionsConfig(ingest_max_concurrency=value)
