"""Query Lambda (API Gateway REST proxy): POST /query and POST /search.

The routes, validation and error bodies live in :func:`shared.adapters.http_api.create_app`; this file
only wires Powertools around it. The service is built once per cold start; the embedder and the store
load on the first request that needs them.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.adapters.http_api import create_app
from shared.adapters.telemetry import PowertoolsMetrics, lambda_telemetry
from shared.service import RagService
from shared.settings import load_settings

logger, tracer, metrics = lambda_telemetry()
service = RagService(load_settings(), metrics=PowertoolsMetrics(metrics))
app = create_app(service, metrics=PowertoolsMetrics(metrics), logger=logger)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
