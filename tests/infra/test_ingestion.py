"""S3 -> SQS -> ingest function (stateless stack)."""

from __future__ import annotations

from typing import Any

import pytest

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


def test_bucket_notifications_send_created_and_removed_to_the_queue(stage: Synthesized) -> None:
    queue_id, _ = one(stage, "AWS::SQS::Queue", "IngestionQueue")
    (notifications,) = stage.resources(stage.stateless, "Custom::S3BucketNotifications").values()
    configs = notifications["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert sorted(c["Events"][0] for c in configs) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    assert all(c["QueueArn"] == {"Fn::GetAtt": [queue_id, "Arn"]} for c in configs)
    # applied to the stateful stack's bucket without replacing other notifications on it
    assert notifications["Properties"]["Managed"] is False


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
