"""The HTTP API as one Powertools ``APIGatewayRestResolver``: query, search, health and the OpenAPI docs.

The query Lambda, the health Lambda and ``rag-explorer serve`` all build their app with
:func:`create_app`, so an API Gateway REST proxy event gets the same answer everywhere.

Routes: ``POST /query`` (an :class:`~shared.models.AskResponse`, like ``rag-explorer ask --json``),
``POST /search`` (a :class:`~shared.models.SearchResponse`), ``GET /health``, ``GET /health/detailed``,
``GET /openapi.json`` and ``GET /docs`` (Swagger UI; ``/docs?format=json`` is the spec too).

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

import json
import logging
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import OpenAPI
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import ConfigDict, model_validator

import shared
from shared import models
from shared.errors import RagExplorerError, StoreError, StoreUnavailableError
from shared.health import DetailedHealthResponse, HealthChecker, HealthResponse
from shared.models import (
    AskResponse,
    ErrorResponse,
    FieldError,
    SearchResponse,
)
from shared.observability import LoggerLike, MetricsSink, NullMetrics
from shared.service import InvalidRequestError, RagService

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
API_TITLE = "RAG Explorer API"
API_DESCRIPTION = (
    "Answers questions from your documentation with numbered citations, or refuses with reasons. "
    "Every error has the same body: error, message, details, request_id, timestamp."
)
REQUEST_ID_HEADER = "x-request-id"
QUERY_ROUTES = frozenset({"/query", "/search"})
QUERY_ERRORS = (400, 413, 415, 422, 503, 500)
#: The operations documented with the optional x-api-key scheme and its 403/429. Where keys are enforced,
#: every route but GET /health needs one (shared.api_keys.OPEN_ROUTES); the health routes' documented
#: responses stay 200/503 (tests/unit/test_http_api.py pins them).
KEYED_OPERATIONS = frozenset({("post", "/query"), ("post", "/search")})
API_KEY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "x-api-key",
    "description": "Required where the API is deployed behind API Gateway with API keys, or served with "
    "`rag-explorer serve --api-key-file`; every route but GET /health then needs it.",
}
GATEWAY_RESPONSES: dict[str, Any] = {
    "403": {
        "description": "Missing or wrong x-api-key (where API keys are required)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    },
    "429": {
        "description": "Over the rate limit for this API key; retry after Retry-After seconds",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    },
}
#: The request text fields whose length the running service limits (``max_question_chars``).
TEXT_FIELDS = (("QueryRequest", "question"), ("SearchRequest", "query"))


def _integral_floats(data: Any, fields: tuple[str, ...]) -> Any:
    """JSON Schema counts 1.0 as an integer; strict pydantic does not: accept integral floats there."""
    if isinstance(data, dict):
        for name in fields:
            value = data.get(name)
            if isinstance(value, float) and value.is_integer():
                data = {**data, name: int(value)}
    return data


class QueryRequest(models.QueryRequest):
    """:class:`shared.models.QueryRequest`, validated strictly: JSON types are not coerced.

    Same name, so that the OpenAPI component keeps the model's name.
    """

    model_config = ConfigDict(extra="forbid", strict=True, title="QueryRequest")

    @model_validator(mode="before")
    @classmethod
    def _integers(cls, data: Any) -> Any:
        return _integral_floats(data, ("max_chunks",))


class SearchRequest(models.SearchRequest):
    """:class:`shared.models.SearchRequest`, validated strictly: JSON types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, title="SearchRequest")

    @model_validator(mode="before")
    @classmethod
    def _integers(cls, data: Any) -> Any:
        return _integral_floats(data, ("k",))


class PayloadTooLargeError(Exception):
    """The request body is larger than the API accepts."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the request body is {size} bytes; the limit is {limit}")
        self.size = size
        self.limit = limit


class FieldValidationError(Exception):
    """A field broke a rule that only the running service knows (e.g. the configured question length)."""

    def __init__(self, loc: list[str | int], type_: str, msg: str) -> None:
        super().__init__(msg)
        self.error = FieldError(loc=loc, type=type_, msg=msg)


def _error_responses(*codes: int) -> dict[int, Any]:
    descriptions = {
        400: "Malformed JSON",
        413: "Request body too large",
        415: "Content type is not JSON",
        422: "Invalid request: every invalid field is listed in details",
        503: "The search index is unavailable; retry later",
        500: "Internal error",
    }
    return {
        code: {
            "description": descriptions[code],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorResponse}},
        }
        for code in codes
    }


def _ok(model: type, description: str) -> dict[int, Any]:
    return {200: {"description": description, "content": {content_types.APPLICATION_JSON: {"model": model}}}}


def _not_json(name: str) -> Any:
    """``json.loads`` takes NaN and Infinity; JSON does not."""
    raise json.JSONDecodeError(f"{name} is not a JSON value", name, 0)


def _json_loads(limit: int) -> Any:
    def loads(data: str | bytes | bytearray) -> Any:
        size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
        if size > limit:
            raise PayloadTooLargeError(size, limit)
        return json.loads(data, parse_constant=_not_json)

    return loads


class ApiResolver(APIGatewayRestResolver):
    """The Powertools resolver, with an OpenAPI document that says exactly what the API does.

    * With validation on, Powertools documents a 422 ``HTTPValidationError`` on every route; this API's
      422 (and every other error) is :class:`~shared.models.ErrorResponse`, declared per route instead.
    * The question/query ``maxLength`` is the running service's limit (``text_limit``), and a ``pattern``
      says that a blank text is refused.
    * The optional ``x-api-key`` scheme, with its 403 and 429, on ``POST /query`` and ``POST /search``.
    """

    text_limit: int | None = None

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """The proxy result, with ``x-request-id`` (the id that error bodies and log lines quote)."""
        result = super().resolve(event, context)
        context_ = event.get("requestContext") if isinstance(event, Mapping) else None
        rid = (context_ or {}).get("requestId") or getattr(context, "aws_request_id", None)
        if rid:
            headers = result.get("multiValueHeaders")
            if isinstance(headers, dict):
                headers[REQUEST_ID_HEADER] = [str(rid)]
            else:
                result.setdefault("headers", {})[REQUEST_ID_HEADER] = str(rid)
        return result

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> OpenAPI:
        spec = super().get_openapi_schema(*args, **kwargs)
        data = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        for path, item in data.get("paths", {}).items():
            for method, operation in item.items():
                if not isinstance(operation, dict):
                    continue
                responses = operation.setdefault("responses", {})
                if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                    responses.pop("422")
                if (method, path) in KEYED_OPERATIONS:
                    operation["security"] = [{"api_key": []}, {}]
                    for code, response in GATEWAY_RESPONSES.items():
                        responses.setdefault(code, response)
        components = data.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
            schemas.pop(name, None)
        for model, field in TEXT_FIELDS:
            prop = schemas.get(model, {}).get("properties", {}).get(field)
            if prop is not None:
                if self.text_limit is not None:
                    prop["maxLength"] = min(prop.get("maxLength", self.text_limit), self.text_limit)
                prop["pattern"] = r"\S"  # not blank (the service strips the text)
        components.setdefault("securitySchemes", {})["api_key"] = API_KEY_SCHEME
        return OpenAPI.model_validate(data)


def create_app(
    service: RagService,
    *,
    metrics: MetricsSink | None = None,
    health: HealthChecker | None = None,
    logger: LoggerLike | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> ApiResolver:
    """Build the resolver. ``service`` is used lazily: nothing heavy loads until a route needs it."""
    sink: MetricsSink = metrics or NullMetrics()
    logger_: LoggerLike = logger or log
    checker = health or HealthChecker.from_settings(service)
    app = ApiResolver(enable_validation=True, json_body_deserializer=_json_loads(max_body_bytes))
    app.text_limit = service.settings.max_question_chars
    openapi: dict[str, str] = {}
    routes: dict[str, set[str]] = {}

    def register(method: str, path: str) -> None:
        routes.setdefault(path, set()).add(method)

    # ------------------------------------------------------------------ helpers

    def request_id() -> str | None:
        try:
            rid = app.current_event.request_context.request_id
        except (KeyError, TypeError, AttributeError):
            rid = None
        if not rid:
            rid = getattr(app.lambda_context, "aws_request_id", None)
        return rid

    def error(
        status: int, code: str, message: str, details: list[FieldError] | None = None, **headers: str
    ) -> Response[str]:
        path = app.current_event.path
        if path in QUERY_ROUTES:
            sink.count("QueryFailure", ErrorType=code)
        body = ErrorResponse(
            error=code,
            message=message,
            details=details or [],
            request_id=request_id(),
            timestamp=models.utc_timestamp(),
        )
        return Response(
            status_code=status,
            content_type=content_types.APPLICATION_JSON,
            body=body.model_dump_json(),
            headers=headers or None,
        )

    def log_extra() -> dict[str, object]:
        """Every log record names the request (a Powertools Logger adds it as a key)."""
        return {"request_id": request_id()}

    def check_text(text: str, field: str, what: str) -> None:
        try:
            models.check_request_text(text, what, service.settings.max_question_chars)
        except models.RequestTextError as exc:
            kind = "string_too_short" if exc.kind == "empty" else "string_too_long"
            raise FieldValidationError(["body", field], kind, str(exc)) from None

    def timed_success(started: float) -> None:
        sink.milliseconds("QueryLatency", (time.perf_counter() - started) * 1000)
        sink.count("QuerySuccess")

    # ------------------------------------------------------------------ routes

    @app.post(
        "/query",
        summary="Answer a question with citations, or refuse with reasons",
        description="Returns exactly what `rag-explorer ask --json` prints.",
        responses={
            **_ok(AskResponse, "An answer or a refusal"),
            **_error_responses(*QUERY_ERRORS),
        },
        tags=["query"],
    )
    def query(request: Annotated[QueryRequest, Body()]) -> AskResponse:
        check_text(request.question, "question", "question")
        started = time.perf_counter()
        response = service.ask(
            request.question,
            max_chunks=request.max_chunks,
            confidence_threshold=request.confidence_threshold,
            filters=request.filters,
        )
        timed_success(started)
        return response

    register("POST", "/query")

    @app.post(
        "/search",
        summary="The chunks that best match a query (hybrid: embeddings + BM25)",
        description="Returns exactly what `rag-explorer search --json` prints.",
        responses={
            **_ok(SearchResponse, "The hits, best first"),
            **_error_responses(*QUERY_ERRORS),
        },
        tags=["query"],
    )
    def search(request: Annotated[SearchRequest, Body()]) -> SearchResponse:
        check_text(request.query, "query", "query")
        started = time.perf_counter()
        response = service.search(request.query, k=request.k, filters=request.filters)
        timed_success(started)
        return response

    register("POST", "/search")

    @app.get(
        "/health",
        summary="Liveness: the function answers (no dependency is called)",
        responses={**_ok(HealthResponse, "The function is up")},
        tags=["health"],
    )
    def health_live() -> HealthResponse:
        return checker.liveness()

    register("GET", "/health")

    @app.get(
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
        report = checker.detailed()
        status = HTTPStatus.OK if report.status == "ok" else HTTPStatus.SERVICE_UNAVAILABLE
        if report.failing:
            logger_.warning("detailed health check failed: %s", ", ".join(report.failing), extra=log_extra())
        return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=report)

    register("GET", "/health/detailed")

    @app.get("/openapi.json", summary="This API's OpenAPI document", include_in_schema=False)
    def openapi_json() -> Response[str]:
        if "spec" not in openapi:
            openapi["spec"] = app.get_openapi_json_schema(
                title=API_TITLE, version=shared.__version__, description=API_DESCRIPTION
            )
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi["spec"])

    register("GET", "/openapi.json")

    app.enable_swagger(path="/docs", title=API_TITLE, version=shared.__version__, description=API_DESCRIPTION)
    register("GET", "/docs")

    # ------------------------------------------------------------------ errors

    @app.not_found
    def not_found(_exc: NotFoundError) -> Response[str]:
        path = app.current_event.path
        allowed = routes.get(path)
        if allowed:
            methods = ", ".join(sorted(allowed))
            return error(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"{app.current_event.http_method} is not allowed on {path}; use {methods}",
                Allow=methods,
            )
        return error(HTTPStatus.NOT_FOUND, "not_found", f"no route {path}; see /docs for the API")

    def body_size() -> int:
        raw = app.current_event.body or ""
        return len(raw) * 3 // 4 if app.current_event.is_base64_encoded else len(raw.encode("utf-8"))

    def wrong_body() -> Response[str] | None:
        """413 or 415 for a body that is too large or not JSON (whatever the parser made of it)."""
        size = body_size()
        if size > max_body_bytes:
            return too_large(PayloadTooLargeError(size, max_body_bytes))
        content_type = (app.current_event.headers.get("content-type") or "").strip().lower()
        if content_type and not content_type.startswith(content_types.APPLICATION_JSON):
            return unsupported_type(None)
        return None

    @app.exception_handler(RequestValidationError)
    def invalid_request(exc: RequestValidationError) -> Response[str]:
        problem = wrong_body()
        if problem is not None:
            return problem
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            problem = next(e for e in errors if e.get("type") == "json_invalid")
            detail = (problem.get("ctx") or {}).get("error", "invalid JSON")
            return error(
                HTTPStatus.BAD_REQUEST, "malformed_json", f"the request body is not valid JSON: {detail}"
            )
        details = [
            FieldError(
                loc=[p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
                type=str(e.get("type", "invalid")),
                msg=str(e.get("msg", "invalid value")),
            )
            for e in errors
        ]
        fields = ", ".join(".".join(str(p) for p in d.loc[1:] or d.loc) for d in details)
        return error(
            HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", f"invalid request: {fields}", details
        )

    @app.exception_handler(UnicodeDecodeError)
    def not_utf8(_exc: UnicodeDecodeError) -> Response[str]:
        problem = wrong_body()
        if problem is not None:
            return problem
        return error(HTTPStatus.BAD_REQUEST, "malformed_json", "the request body is not UTF-8 encoded JSON")

    @app.exception_handler(FieldValidationError)
    def invalid_field(exc: FieldValidationError) -> Response[str]:
        return error(HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", exc.error.msg, [exc.error])

    @app.exception_handler(InvalidRequestError)
    def invalid_input(exc: InvalidRequestError) -> Response[str]:
        return error(HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", str(exc))

    @app.exception_handler(PayloadTooLargeError)
    def too_large(exc: PayloadTooLargeError) -> Response[str]:
        return error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large", str(exc))

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_type(_exc: RequestUnsupportedContentType | None) -> Response[str]:
        if body_size() > max_body_bytes:
            return too_large(PayloadTooLargeError(body_size(), max_body_bytes))
        return error(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        )

    @app.exception_handler(StoreError)
    def store_down(exc: StoreError) -> Response[str]:
        logger_.error("store error: %s", exc, exc_info=exc, extra=log_extra())
        code = "store_unavailable" if isinstance(exc, StoreUnavailableError) else "store_error"
        return error(
            HTTPStatus.SERVICE_UNAVAILABLE, code, "the search index is unavailable right now; retry later"
        )

    @app.exception_handler(ServiceError)
    def service_error(exc: ServiceError) -> Response[str]:
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        return error(exc.status_code, code, exc.msg if isinstance(exc.msg, str) else json.dumps(exc.msg))

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response[str]:
        problem = wrong_body()
        if problem is not None:  # the framework failed parsing a body that is not JSON (multipart, ...)
            return problem
        kind = "configuration or model error" if isinstance(exc, RagExplorerError) else "unexpected error"
        logger_.error(
            "%s while handling %s %s",
            kind,
            app.current_event.http_method,
            app.current_event.path,
            exc_info=exc,
            extra=log_extra(),
        )
        return error(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "internal_error",
            f"internal error; quote request id {request_id()} when reporting it",
        )

    return app
