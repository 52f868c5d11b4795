"""Ingest Lambda (SQS event source; each message body is an S3 object event that an EventBridge rule sent,
S3 -> EventBridge -> SQS -> Lambda, or an S3 event notification, the earlier S3 -> SQS route).

Each S3 record makes the index match the object's current state (:class:`shared.adapters.s3_sync.S3Sync`): an
existing object is indexed (unchanged content is a no-op), a missing one has its chunks deleted. Failed
messages are reported as partial batch failures so that only they are retried (the event source mapping
needs ``ReportBatchItemFailures``). The service and the S3 client are built once per cold start; the S3
endpoint can be overridden with ``AWS_ENDPOINT_URL_S3``.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.adapters.s3_sync import S3Sync
from shared.adapters.telemetry import PowertoolsMetrics, lambda_telemetry
from shared.service import RagService
from shared.settings import load_settings

logger, tracer, metrics = lambda_telemetry()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
service = RagService(load_settings())
s3 = boto3.client("s3")
sync = S3Sync(service, s3, metrics=PowertoolsMetrics(metrics), logger=logger)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=sync.handle_record, processor=processor, context=context
    )
