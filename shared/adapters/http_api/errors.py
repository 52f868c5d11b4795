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
from shared.errors import ForbiddenError, RagExplorerError, StoreError, StoreUnavailableError
from shared.errors import NotFoundError as MissingError
from shared.models import FieldError
from shared.service import InvalidRequestError


class ErrorHandlers:
    """One method per failure; :func:`register_error_handlers` wires them to the resolver."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def not_found(self, _exc: NotFoundError) -> Response[str]:
        path = self.ctx.app.current_event.path
        allowed = self.ctx.routes.get(path)
        if allowed:
            methods = ", ".join(sorted(allowed))
            return self.ctx.error(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"{self.ctx.app.current_event.http_method} is not allowed on {path}; use {methods}",
                Allow=methods,
            )
        return self.ctx.error(HTTPStatus.NOT_FOUND, "not_found", f"no route {path}; see /docs for the API")

    def wrong_body(self) -> Response[str] | None:
        """413 or 415 for a body that is too large or not JSON (whatever the parser made of it)."""
        size = self.ctx.body_size()
        if size > self.ctx.max_body_bytes:
            return self.too_large(PayloadTooLargeError(size, self.ctx.max_body_bytes))
        content_type = (self.ctx.app.current_event.headers.get("content-type") or "").strip().lower()
        if content_type and not content_type.startswith(content_types.APPLICATION_JSON):
            return self.unsupported_type(None)
        return None

    def invalid_request(self, exc: RequestValidationError) -> Response[str]:
        problem = self.wrong_body()
        if problem is not None:
            return problem
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            problem_ = next(e for e in errors if e.get("type") == "json_invalid")
            detail = (problem_.get("ctx") or {}).get("error", "invalid JSON")
            return self.ctx.error(
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
        return self.ctx.error(
            HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", f"invalid request: {fields}", details
        )

    def not_utf8(self, _exc: UnicodeDecodeError) -> Response[str]:
        problem = self.wrong_body()
        if problem is not None:
            return problem
        return self.ctx.error(
            HTTPStatus.BAD_REQUEST, "malformed_json", "the request body is not UTF-8 encoded JSON"
        )

    def invalid_field(self, exc: FieldValidationError) -> Response[str]:
        return self.ctx.error(HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", exc.error.msg, [exc.error])

    def invalid_input(self, exc: InvalidRequestError) -> Response[str]:
        return self.ctx.error(HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", str(exc))

    def too_large(self, exc: PayloadTooLargeError) -> Response[str]:
        return self.ctx.error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large", str(exc))

    def unsupported_type(self, _exc: RequestUnsupportedContentType | None) -> Response[str]:
        if self.ctx.body_size() > self.ctx.max_body_bytes:
            return self.too_large(PayloadTooLargeError(self.ctx.body_size(), self.ctx.max_body_bytes))
        return self.ctx.error(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        )

    def forbidden(self, exc: ForbiddenError) -> Response[str]:
        return self.ctx.error(HTTPStatus.FORBIDDEN, exc.code, str(exc))

    def missing(self, exc: MissingError) -> Response[str]:
        return self.ctx.error(HTTPStatus.NOT_FOUND, "not_found", str(exc))

    def store_down(self, exc: StoreError) -> Response[str]:
        self.ctx.logger.error("store error: %s", exc, exc_info=exc, extra=self.ctx.log_extra())
        code = "store_unavailable" if isinstance(exc, StoreUnavailableError) else "store_error"
        return self.ctx.error(
            HTTPStatus.SERVICE_UNAVAILABLE, code, "the search index is unavailable right now; retry later"
        )

    def service_error(self, exc: ServiceError) -> Response[str]:
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        return self.ctx.error(
            exc.status_code, code, exc.msg if isinstance(exc.msg, str) else json.dumps(exc.msg)
        )

    def too_deep(self, exc: RecursionError) -> Response[str]:
        """JSON nested so deeply that the parser gives up (``[[[[...`` a thousand deep) is a bad request."""
        try:
            self.ctx.app.current_event.json_body  # noqa: B018 - does the body itself recurse too deeply?
        except RecursionError:
            return self.ctx.error(
                HTTPStatus.BAD_REQUEST, "malformed_json", "the request body is nested too deeply"
            )
        except Exception:
            return self.unexpected(exc)  # the body has another problem; the recursion came from elsewhere
        return self.unexpected(exc)

    def unexpected(self, exc: Exception) -> Response[str]:
        problem = self.wrong_body()
        if problem is not None:  # the framework failed parsing a body that is not JSON (multipart, ...)
            return problem
        kind = "configuration or model error" if isinstance(exc, RagExplorerError) else "unexpected error"
        self.ctx.logger.error(
            "%s while handling %s %s",
            kind,
            self.ctx.app.current_event.http_method,
            self.ctx.app.current_event.path,
            exc_info=exc,
            extra=self.ctx.log_extra(),
        )
        return self.ctx.error(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "internal_error",
            f"internal error; quote request id {self.ctx.request_id()} when reporting it",
        )


def register_error_handlers(ctx: ApiContext) -> None:
    app, handlers = ctx.app, ErrorHandlers(ctx)
    app.not_found(handlers.not_found)
    for exc_type, handler in (
        (RequestValidationError, handlers.invalid_request),
        (UnicodeDecodeError, handlers.not_utf8),
        (FieldValidationError, handlers.invalid_field),
        (InvalidRequestError, handlers.invalid_input),
        (PayloadTooLargeError, handlers.too_large),
        (RequestUnsupportedContentType, handlers.unsupported_type),
        (ForbiddenError, handlers.forbidden),
        (MissingError, handlers.missing),
        (StoreError, handlers.store_down),
        (ServiceError, handlers.service_error),
        (RecursionError, handlers.too_deep),
        (Exception, handlers.unexpected),
    ):
        app.exception_handler(exc_type)(handler)
