"""`RemoteClient`: the SDK for a deployed RAG Explorer API (or `rag-explorer serve`).

    from shared.adapters.client import RemoteClient

    client = RemoteClient("https://abc.execute-api.eu-west-1.amazonaws.com/prod", api_key="...")
    answer = client.query("How do I rotate my API key?")      # AskResponse
    hits = client.search("api key rotation", k=10)            # SearchResponse
    client.health()                                           # dict from GET /health/detailed
    client.feedback(answer.interaction_id, helpful=False, comment="...")  # FeedbackResponse

Results are the same pydantic models the CLI prints with ``--json``. Timeouts on every call; 429 and 5xx
are retried with exponential backoff (honouring ``Retry-After``); other 4xx raise :class:`RemoteError`
carrying the server's error model and request id. Only the standard library is used for HTTP.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.analytics import AnalyticsSummary, parse_since
from shared.errors import RagExplorerError
from shared.feedback import FeedbackRequest, FeedbackResponse
from shared.gaps import GapsReport
from shared.models import (
    AskResponse,
    ErrorResponse,
    QueryRequest,
    SearchFilter,
    SearchRequest,
    SearchResponse,
)

M = TypeVar("M", bound=BaseModel)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class RemoteError(RagExplorerError):
    """The API answered with an error (or could not be reached)."""

    def __init__(
        self, message: str, *, status: int | None = None, error: ErrorResponse | None = None
    ) -> None:
        self.status = status
        self.error = error
        self.request_id = error.request_id if error else None
        detail = f" (HTTP {status}" + (f", request id {self.request_id}" if self.request_id else "") + ")"
        super().__init__(message + (detail if status else ""))


class RemoteClient:
    def __init__(
        self,
        endpoint: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise RemoteError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep

    # ------------------------------------------------------------------ API

    def query(
        self,
        question: str,
        *,
        max_chunks: int | None = None,
        confidence_threshold: float | None = None,
        filters: SearchFilter | None = None,
    ) -> AskResponse:
        body = _request(
            QueryRequest,
            question=question,
            max_chunks=max_chunks,
            confidence_threshold=confidence_threshold,
            filters=filters,
        )
        return self._call("POST", "/query", AskResponse, body)

    ask = query  # the local service's name for the same call, so either can stand behind the CLI

    def search(
        self, query: str, *, k: int | None = None, filters: SearchFilter | None = None
    ) -> SearchResponse:
        return self._call(
            "POST", "/search", SearchResponse, _request(SearchRequest, query=query, k=k, filters=filters)
        )

    def feedback(
        self,
        interaction_id: str,
        *,
        helpful: bool | None = None,
        comment: str | None = None,
        handoff: bool = False,
        contact: str | None = None,
    ) -> FeedbackResponse:
        """Rate an answer (``interaction_id`` from :meth:`query`), comment, or ask for a person."""
        body = _request(
            FeedbackRequest,
            interaction_id=interaction_id,
            helpful=helpful,
            comment=comment,
            handoff=handoff,
            contact=contact,
        )
        return self._call("POST", "/feedback", FeedbackResponse, body)

    def analytics_summary(
        self, *, since: str = "7d", until: str | None = None, collection: str | None = None
    ) -> AnalyticsSummary:
        """``GET /analytics/summary`` (a secret key)."""
        return self._call(
            "GET", _with_query("/analytics/summary", since, until, collection), AnalyticsSummary, None
        )

    def analytics_gaps(
        self, *, since: str = "7d", until: str | None = None, collection: str | None = None
    ) -> GapsReport:
        """``GET /analytics/gaps`` (a secret key)."""
        return self._call("GET", _with_query("/analytics/gaps", since, until, collection), GapsReport, None)

    def health(self, *, detailed: bool = True) -> dict[str, Any]:
        status, data, _ = self._request("GET", "/health/detailed" if detailed else "/health", None)
        if status >= 400 and status != 503:
            raise self._error(status, data)
        return dict(json.loads(data or b"{}"))

    # ------------------------------------------------------------------ plumbing

    def _call(self, method: str, path: str, model: type[M], body: BaseModel | None) -> M:
        payload = body.model_dump_json(exclude_none=True).encode() if body is not None else None
        status, data, _ = self._request(method, path, payload)
        if status >= 400:
            raise self._error(status, data)
        try:
            return model.model_validate_json(data)
        except ValidationError as exc:
            raise RemoteError(
                f"{method} {path}: the response does not match {model.__name__}: {exc}"
            ) from exc

    def _request(self, method: str, path: str, payload: bytes | None) -> tuple[int, bytes, dict[str, str]]:
        headers = {"Accept": "application/json", "User-Agent": "rag-explorer-client"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["x-api-key"] = self.api_key
        attempt = 0
        while True:
            # the scheme was checked in __init__: only http(s) URLs reach urlopen
            req = urllib.request.Request(  # noqa: S310
                self.endpoint + path, data=payload, headers=headers, method=method
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                    return resp.status, resp.read(), dict(resp.headers)
            except urllib.error.HTTPError as exc:
                status, data, resp_headers = exc.code, exc.read(), dict(exc.headers or {})
                if status not in RETRY_STATUSES or attempt >= self.max_retries:
                    return status, data, resp_headers
                delay = self._delay(attempt, resp_headers.get("Retry-After"))
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt >= self.max_retries:
                    reason = getattr(exc, "reason", exc)
                    raise RemoteError(f"cannot reach {self.endpoint}: {reason}") from exc
                delay = self._delay(attempt, None)
            attempt += 1
            self._sleep(delay)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.max_backoff_s, max(0.0, float(retry_after)))
            except ValueError:
                pass
        cap = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        return random.uniform(0, cap)  # noqa: S311 - jitter, not cryptography

    @staticmethod
    def _error(status: int, data: bytes) -> RemoteError:
        try:
            error = ErrorResponse.model_validate_json(data)
        except ValidationError:
            text = data.decode("utf-8", "replace")[:200]
            return RemoteError(f"the API answered HTTP {status}: {text}", status=status)
        message = error.message
        if error.details:
            message += ": " + "; ".join(f"{'.'.join(str(p) for p in d.loc)}: {d.msg}" for d in error.details)
        return RemoteError(message, status=status, error=error)


def _with_query(path: str, since: str, until: str | None, collection: str | None) -> str:
    """The period as the API takes it: RFC 3339 instants (``7d`` is resolved here, now)."""
    values = {
        "since": parse_since(since),
        "until": parse_since(until) if until else None,
        "collection": collection,
    }
    params = {k: v for k, v in values.items() if v}
    return f"{path}?{urllib.parse.urlencode(params)}"


def _request(model: type[M], **values: object) -> M:
    """Validate a request before sending it: a bad one fails here, with the same rules as the server."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise RemoteError(f"invalid request: {problems}") from exc
