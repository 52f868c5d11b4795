"""Health Lambda (API Gateway REST proxy): GET /health (liveness), GET /health/detailed (readiness), and
the API's description, GET /openapi.json and GET /docs (kept off the 2 GB query function).

It serves the same resolver as the query Lambda (:func:`shared.adapters.http_api.create_app`); API
Gateway sends it only these routes. ``GET /health`` calls no dependency, so it stays cheap:
nothing heavy loads until ``GET /health/detailed`` checks the store, the embedder and the document bucket.
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
service = RagService(load_settings())
app = create_app(service, metrics=PowertoolsMetrics(metrics), logger=logger)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
