"""What every route and error handler of the API shares: the service, metrics, health checker and logger
(injected by :func:`shared.adapters.http_api.create_app`), and the request helpers built on them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from aws_lambda_powertools.event_handler import Response, content_types

from shared import models
from shared.adapters.http_api.requests import FieldValidationError
from shared.adapters.http_api.spec import QUERY_ROUTES
from shared.models import ErrorResponse, FieldError

if TYPE_CHECKING:
    from shared.adapters.health import HealthChecker
    from shared.adapters.http_api.access import Access
    from shared.adapters.http_api.spec import ApiResolver
    from shared.models import SearchFilter
    from shared.observability import LoggerLike, MetricsSink
    from shared.service import RagService
    from shared.sites import Site
    from shared.support import SupportDesk


T = TypeVar("T")


@dataclass
class ApiContext:
    app: ApiResolver
    service: RagService
    sink: MetricsSink
    checker: HealthChecker
    logger: LoggerLike
    max_body_bytes: int
    desk: SupportDesk
    access: Access
    #: path -> methods, for the 405 that names the allowed methods
    routes: dict[str, set[str]] = field(default_factory=dict)

    def register(self, method: str, *paths: str) -> None:
        for path in paths:
            self.routes.setdefault(path, set()).add(method)

    def request_id(self) -> str | None:
        app = self.app
        try:
            rid = app.current_event.request_context.request_id
        except (KeyError, TypeError, AttributeError):
            rid = None
        if not rid:
            rid = getattr(app.lambda_context, "aws_request_id", None)
        return rid

    def site(self) -> Site | None:
        """The site whose publishable key this request carries (None: a secret key or no key)."""
        return self.access.site(self.app.current_event.raw_event)

    def scope(self, filters: SearchFilter | None) -> SearchFilter | None:
        """The request's filters, held to a publishable key's collection."""
        return self.access.scope(self.app.current_event.raw_event, filters)

    def enforce_access(
        self, app: ApiResolver, next_middleware: Callable[[ApiResolver], Response[str]]
    ) -> Response[str]:
        """Global middleware: a publishable key outside its routes or origins is refused (403)."""
        event = app.current_event
        refusal = self.access.refusal(event.raw_event, event.http_method.upper(), event.path)
        if refusal is not None:
            return self.error(403, refusal.code, str(refusal))
        return next_middleware(app)

    def log_extra(self) -> dict[str, object]:
        """Every log record names the request (a Powertools Logger adds it as a key)."""
        return {"request_id": self.request_id()}

    def error(
        self, status: int, code: str, message: str, details: list[FieldError] | None = None, **headers: str
    ) -> Response[str]:
        """The error model, with the request id. On the query routes, a failure of ours (5xx) counts as
        ``QueryFailure`` and a request refused as invalid (4xx) as ``QueryRejected``, both by kind: alarms
        watch the first only."""
        if self.app.current_event.path in QUERY_ROUTES:
            self.sink.count("QueryFailure" if status >= 500 else "QueryRejected", ErrorType=code)
        body = ErrorResponse(
            error=code,
            message=message,
            details=details or [],
            request_id=self.request_id(),
            timestamp=models.utc_timestamp(),
        )
        return Response(
            status_code=status,
            content_type=content_types.APPLICATION_JSON,
            body=body.model_dump_json(),
            headers=headers or None,
        )

    def check_text(self, text: str, field_name: str) -> None:
        """:func:`shared.models.check_request_text` with the running service's limit, as a 422 field error."""
        try:
            models.check_request_text(text, field_name, self.service.settings.max_question_chars)
        except models.RequestTextError as exc:
            kind = "string_too_short" if exc.kind == "empty" else "string_too_long"
            raise FieldValidationError(["body", field_name], kind, str(exc)) from None

    def run_query(self, text: str, field_name: str, call: Callable[[], T]) -> T:
        """A query route's work: the text checked, the call timed, its latency and success counted."""
        self.check_text(text, field_name)
        started = time.perf_counter()
        result = call()
        self.sink.milliseconds("QueryLatency", (time.perf_counter() - started) * 1000)
        self.sink.count("QuerySuccess")
        return result

    def body_size(self) -> int:
        event = self.app.current_event
        raw = event.body or ""
        return len(raw) * 3 // 4 if event.is_base64_encoded else len(raw.encode("utf-8"))
