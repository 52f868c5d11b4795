"""S3 -> EventBridge -> SQS -> ingest Lambda: the queue and its dead-letter queue, the rule that sends the
document bucket's object events to the queue, the function."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.function import AppFunction
from infra.components.network import VpcPlacement
from infra.config import FunctionsConfig

#: the EventBridge detail types of S3 the ingest function reconciles (shared/adapters/s3_sync.py)
OBJECT_EVENTS = ("Object Created", "Object Deleted")


def object_events_pattern(bucket_name: str) -> dict[str, Any]:
    """The rule's event pattern: the bucket's created and deleted objects (the end-to-end test puts the
    same pattern on moto's EventBridge)."""
    return {
        "source": ["aws.s3"],
        "detail-type": list(OBJECT_EVENTS),
        "detail": {"bucket": {"name": [bucket_name]}},
    }


class Ingestion(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        document_bucket_name: str,
        code: lambda_.Code,
        environment: Mapping[str, str],
        config: FunctionsConfig,
        log_retention: logs.RetentionDays,
        placement: VpcPlacement | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._queues(config)
        self._object_events(document_bucket_name)

        self.function = AppFunction(
            self,
            "Function",
            code=code,
            handler="handler.lambda_handler",
            description="RAG Explorer ingest: keeps the OpenSearch index equal to the document bucket",
            memory_size=config.ingest_memory_mb,
            timeout=config.ingest_timeout,
            environment=environment,
            log_retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
            placement=placement,
        )
        self.function.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=config.ingest_batch_size,
                max_batching_window=config.ingest_batching_window,
                report_batch_item_failures=True,
                # at most this many batches index at once, so that OpenSearch is not flooded. The poller
                # itself holds back: a burst waits in the queue instead of being throttled (reserved
                # concurrency would throttle, and each throttled receive counts towards the DLQ)
                max_concurrency=config.ingest_max_concurrency,
            )
        )

    def _queues(self, config: FunctionsConfig) -> None:
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS guidance: at least six times the function timeout, so retries do not overlap a run
            visibility_timeout=Duration.seconds(config.ingest_timeout.to_seconds() * 6),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=config.ingest_max_receive_count
            ),
        )

    def _object_events(self, document_bucket_name: str) -> None:
        # The bucket (stateful stack) sends its object events to EventBridge; this rule (stateless) sends
        # the created and deleted ones of that bucket to the queue, so the stateful stack never depends on
        # the queue. EventBridge retries a failed delivery for 24 hours, then puts the event in the
        # dead-letter queue, where a redrive brings it to the ingest queue like any other message.
        self.object_events_rule = events.Rule(
            self,
            "ObjectEvents",
            description="RAG Explorer: the document bucket's created and deleted objects -> ingest queue",
            event_pattern=self._pattern(object_events_pattern(document_bucket_name)),
            targets=[targets.SqsQueue(self.queue, dead_letter_queue=self.dead_letter_queue)],
        )

    @staticmethod
    def _pattern(pattern: dict[str, Any]) -> events.EventPattern:
        return events.EventPattern(
            source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
        )
