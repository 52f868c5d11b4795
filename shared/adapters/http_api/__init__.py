"""The HTTP API as one Powertools ``APIGatewayRestResolver``: query, search, health and the OpenAPI docs.

The package: :func:`create_app` wires one :class:`~shared.adapters.http_api.context.ApiContext` (the service,
metrics, health checker and logger) into a ``Router`` per route group (``query_routes``, ``health_routes``),
the error handlers (``errors``) and the OpenAPI adjustments (``spec.ApiResolver``); request models and
limits are in ``requests``.

The query Lambda, the health Lambda and ``rag-explorer serve`` all build their app with
:func:`create_app`, so an API Gateway REST proxy event gets the same answer everywhere.

Routes: ``POST /query`` (an :class:`~shared.models.AskResponse`, like ``rag-explorer ask --json``),
``POST /search`` (a :class:`~shared.models.SearchResponse`), ``POST /feedback`` and the CORS preflights
(``feedback_routes``), ``GET /analytics/summary`` and ``GET /analytics/gaps`` (``analytics_routes``),
``GET /health``, ``GET /health/detailed``, ``GET /openapi.json`` and ``GET /docs`` (Swagger UI;
``/docs?format=json`` is the spec too). Publishable keys reach only the widget's routes (``access``).

Every error has the body :class:`~shared.models.ErrorResponse`: malformed JSON (or not UTF-8) 400,
unknown route 404, wrong method 405, body over 64 KiB 413, content type other than JSON 415, invalid
fields 422 (each field listed), store unavailable 503, anything unexpected 500 (logged with its traceback
and the request id, never sent). Request bodies are validated strictly: a JSON value of the wrong type is
422, never coerced (``"0.5"`` or ``true`` is not a number).

The OpenAPI document matches what the API does (checked by ``tests/integration/test_api_fuzz.py`` with
schemathesis): the question/query length limit is the configured one, a blank text is refused by a
pattern, and the ``x-api-key`` scheme with 403 and 429 is documented on the query routes (optional:
required where API Gateway or ``rag-explorer serve --api-key-file`` enforces keys).
"""

from __future__ import annotations

import logging

from aws_lambda_powertools.event_handler import Response, content_types

import shared
from shared.adapters.health import HealthChecker
from shared.adapters.http_api.access import Access
from shared.adapters.http_api.analytics_routes import analytics_router
from shared.adapters.http_api.context import ApiContext
from shared.adapters.http_api.errors import register_error_handlers
from shared.adapters.http_api.feedback_routes import feedback_router
from shared.adapters.http_api.health_routes import health_router
from shared.adapters.http_api.query_routes import query_router
from shared.adapters.http_api.requests import MAX_BODY_BYTES, json_loads
from shared.adapters.http_api.spec import API_DESCRIPTION, API_TITLE, ApiResolver
from shared.adapters.http_api.widget_routes import widget_router
from shared.observability import LoggerLike, MetricsSink, NullMetrics
from shared.service import RagService
from shared.support import SupportDesk

__all__ = ["MAX_BODY_BYTES", "ApiResolver", "create_app"]

log = logging.getLogger("shared.adapters.http_api")


def create_app(
    service: RagService,
    *,
    metrics: MetricsSink | None = None,
    health: HealthChecker | None = None,
    logger: LoggerLike | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    desk: SupportDesk | None = None,
) -> ApiResolver:
    """Build the resolver. ``service`` is used lazily: nothing heavy loads until a route needs it."""
    app = ApiResolver(enable_validation=True, json_body_deserializer=json_loads(max_body_bytes))
    app.text_limit = service.settings.max_question_chars
    app.access = Access(service.settings.sites)
    if desk is None:
        from shared.adapters.support import make_desk

        desk = make_desk(service.settings)
    ctx = ApiContext(
        app=app,
        service=service,
        sink=metrics or NullMetrics(),
        checker=health or HealthChecker.from_settings(service),
        logger=logger or log,
        max_body_bytes=max_body_bytes,
        desk=desk,
        access=app.access,
    )
    app.use(middlewares=[ctx.enforce_access])
    app.include_router(query_router(ctx))
    app.include_router(feedback_router(ctx))
    app.include_router(health_router(ctx))
    app.include_router(widget_router(ctx))
    app.include_router(analytics_router(ctx))
    spec: dict[str, str] = {}

    @app.get("/openapi.json", summary="This API's OpenAPI document", include_in_schema=False)
    def openapi_json() -> Response[str]:
        if "spec" not in spec:
            spec["spec"] = app.get_openapi_json_schema(
                title=API_TITLE, version=shared.__version__, description=API_DESCRIPTION
            )
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=spec["spec"])

    app.enable_swagger(path="/docs", title=API_TITLE, version=shared.__version__, description=API_DESCRIPTION)
    ctx.register("GET", "/openapi.json", "/docs")
    register_error_handlers(ctx)
    return app
