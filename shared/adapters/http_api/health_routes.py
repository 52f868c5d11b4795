"""``GET /health`` (liveness: nothing is called) and ``GET /health/detailed`` (store, embedder, bucket)."""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from shared.adapters.health import DetailedHealthResponse, HealthResponse
from shared.adapters.http_api.context import ApiContext
from shared.adapters.http_api.spec import ok_response


def health_router(ctx: ApiContext) -> Router:
    router = Router()

    @router.get(
        "/health",
        summary="Liveness: the function answers (no dependency is called)",
        responses={**ok_response(HealthResponse, "The function is up")},
        tags=["health"],
    )
    def health_live() -> HealthResponse:
        return ctx.checker.liveness()

    @router.get(
        "/health/detailed",
        summary="Readiness: store, embedder and document bucket",
        responses={
            200: {
                "description": "Every dependency is reachable",
                "content": {content_types.APPLICATION_JSON: {"model": DetailedHealthResponse}},
            },
            503: {
                "description": "A dependency is down; `failing` names it",
                "content": {content_types.APPLICATION_JSON: {"model": DetailedHealthResponse}},
            },
        },
        tags=["health"],
    )
    def health_detailed() -> Response[DetailedHealthResponse]:
        report = ctx.checker.detailed()
        status = HTTPStatus.OK if report.status == "ok" else HTTPStatus.SERVICE_UNAVAILABLE
        if report.failing:
            ctx.logger.warning(
                "detailed health check failed: %s", ", ".join(report.failing), extra=ctx.log_extra()
            )
        return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=report)

    ctx.register("GET", "/health", "/health/detailed")
    return router
