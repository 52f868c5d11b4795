"""S3 -> SQS -> ingest Lambda: the queue and its dead-letter queue, the bucket notifications, the function."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.function import AppFunction
from infra.components.network import VpcPlacement
from infra.config import FunctionsConfig
from infra.nag import acknowledge

# CDK's singleton that applies bucket notifications (one per stack)
NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


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
        self._bucket_notifications(document_bucket_name)

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

    def _bucket_notifications(self, document_bucket_name: str) -> None:
        # The bucket lives in the stateful stack. Notifications configured on an imported reference are
        # applied by a custom resource in *this* stack (merging with any others), so that the stateful
        # stack never depends on the queue.
        bucket = s3.Bucket.from_bucket_name(self, "DocumentBucket", document_bucket_name)
        destination = s3n.SqsDestination(self.queue)
        bucket.add_event_notification(s3.EventType.OBJECT_CREATED, destination)
        bucket.add_event_notification(s3.EventType.OBJECT_REMOVED, destination)
        handler = Stack.of(self).node.try_find_child(NOTIFICATIONS_HANDLER_ID)
        if handler is not None:
            acknowledge(
                handler,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                "CDK's bucket notifications handler logs with the AWS basic execution policy.",
            )
