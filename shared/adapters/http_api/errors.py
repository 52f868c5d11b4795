"""Every failure as the error model: 400, 404, 405, 413, 415, 422, 503 and 500 (logged, never sent)."""

from __future__ import annotations

import json
from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from shared.adapters.http_api.context import ApiContext
from shared.adapters.http_api.requests import FieldValidationError, PayloadTooLargeError
from shared.errors import RagExplorerError, StoreError, StoreUnavailableError
from shared.models import FieldError
from shared.service import InvalidRequestError


def register_error_handlers(ctx: ApiContext) -> None:
    app, error = ctx.app, ctx.error

    @app.not_found
    def not_found(_exc: NotFoundError) -> Response[str]:
        path = app.current_event.path
        allowed = ctx.routes.get(path)
        if allowed:
            methods = ", ".join(sorted(allowed))
            return error(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"{app.current_event.http_method} is not allowed on {path}; use {methods}",
                Allow=methods,
            )
        return error(HTTPStatus.NOT_FOUND, "not_found", f"no route {path}; see /docs for the API")

    def wrong_body() -> Response[str] | None:
        """413 or 415 for a body that is too large or not JSON (whatever the parser made of it)."""
        size = ctx.body_size()
        if size > ctx.max_body_bytes:
            return too_large(PayloadTooLargeError(size, ctx.max_body_bytes))
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
            problem_ = next(e for e in errors if e.get("type") == "json_invalid")
            detail = (problem_.get("ctx") or {}).get("error", "invalid JSON")
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
        if ctx.body_size() > ctx.max_body_bytes:
            return too_large(PayloadTooLargeError(ctx.body_size(), ctx.max_body_bytes))
        return error(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        )

    @app.exception_handler(StoreError)
    def store_down(exc: StoreError) -> Response[str]:
        ctx.logger.error("store error: %s", exc, exc_info=exc, extra=ctx.log_extra())
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
        ctx.logger.error(
            "%s while handling %s %s",
            kind,
            app.current_event.http_method,
            app.current_event.path,
            exc_info=exc,
            extra=ctx.log_extra(),
        )
        return error(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "internal_error",
            f"internal error; quote request id {ctx.request_id()} when reporting it",
        )
