"""The local HTTP server behind `rag-explorer serve`: API Gateway in front of the Lambda resolver, in-process.

Each HTTP request becomes an API Gateway REST proxy event (payload version 1.0) and goes to the same
resolver that the query and health Lambdas run (:func:`shared.adapters.http_api.create_app`); the proxy result
becomes the HTTP response. Like one Lambda instance, the resolver handles one request at a time (a lock),
while the threaded server keeps accepting connections.

The server also plays API Gateway's own part (:class:`local_cli.api_keys.Gateway`): with API keys configured,
``x-api-key`` checks (403) and a per-key rate limit (429 with ``Retry-After``), answered before the
resolver runs; without keys the API is open. Every response carries ``x-request-id`` (the id that error
bodies quote), and every log line names it: request lines, and whatever the resolver and the core log
through :mod:`logging` while handling the request (WARNING and above).
"""

from __future__ import annotations

import base64
import contextvars
import logging
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from local_cli.api_keys import HEADER as API_KEY_HEADER
from local_cli.api_keys import Gateway, Rejection

__all__ = ["Gateway", "LocalApiServer", "build_event", "make_server"]

#: API Gateway rejects larger payloads itself; the resolver's own (smaller) limit applies below this.
MAX_GATEWAY_BODY_BYTES = 10 * 1024 * 1024
STAGE = "local"
REQUEST_ID_HEADER = "x-request-id"
#: A connection that sends nothing for this long is closed (a slow client cannot hold a thread forever).
SOCKET_TIMEOUT_S = 60

_METHOD = re.compile(r"[A-Z]{1,32}")
_current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

Resolver = Callable[[dict[str, Any], Any], dict[str, Any]]


class LocalLambdaContext:
    """What the resolver reads of a Lambda context."""

    function_name = "rag-explorer-serve"
    function_version = "$LATEST"
    memory_limit_in_mb = 0
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:rag-explorer-serve"
    log_group_name = "local"
    log_stream_name = "local"

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def request_path(target: str) -> str:
    """The path the resolver routes on, for a request-line target."""
    return unquote(urlsplit(target).path) or "/"


def build_event(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str,
    request_id: str,
) -> dict[str, Any]:
    """An API Gateway REST proxy event for one HTTP request (``target`` is the request-line path)."""
    parts = urlsplit(target)
    path = request_path(target)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    query = parse_qs(parts.query, keep_blank_values=True)
    text: str | None
    encoded = False
    if not body:
        text = None
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
    now = datetime.now(UTC)
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": single.get("Host", "localhost"),
            "httpMethod": method,
            "identity": {"sourceIp": source_ip, "userAgent": single.get("User-Agent")},
            # like a custom domain: the stage is not part of the path, so /docs "Try it out" works here
            "path": path,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourcePath": path,
            "stage": STAGE,
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def _error_body(code: str, message: str, request_id: str) -> bytes:
    from shared.models import ErrorResponse, utc_timestamp

    return (
        ErrorResponse(
            error=code,
            message=message,
            request_id=request_id,
            timestamp=utc_timestamp(),
        )
        .model_dump_json()
        .encode("utf-8")
    )


class _Handler(BaseHTTPRequestHandler):
    server: LocalApiServer
    protocol_version = "HTTP/1.1"
    server_version = "rag-explorer-serve"
    timeout = SOCKET_TIMEOUT_S
    request_id = "-"
    status_sent = 0

    def do_GET(self) -> None:
        self._proxy()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, CONNECT, ...) goes to the resolver too: 405 on a known path, else 404."""
        if name.startswith("do_") and _METHOD.fullmatch(name[3:]):
            return self._proxy
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # one line per request is written by _proxy / send_error instead

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors the HTTP layer finds itself (bad request line, headers too long, unknown method).

        The error model and the request id, like every other error, instead of the stdlib's HTML page.
        """
        self.request_id = str(uuid.uuid4())
        try:
            status = HTTPStatus(code)
        except ValueError:
            status = HTTPStatus.BAD_REQUEST
        self.close_connection = True
        body = _error_body(
            status.phrase.lower().replace(" ", "_").replace("-", "_"),
            message or status.phrase,
            self.request_id,
        )
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.1"  # an unparsable request line still gets a status line
        if not getattr(self, "command", None):
            self.command = ""
        try:
            self._send(status, [("Content-Type", "application/json")], body)
        finally:
            self.server.log(
                f'{self.client_address[0]} "{_printable(getattr(self, "requestline", "") or "-")}" '
                f"{status.value} request_id={self.request_id}"
            )
            self.request_id = "-"

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_sent = status
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", REQUEST_ID_HEADER):
                self.send_header(name, value)
        self.send_header(REQUEST_ID_HEADER, self.request_id)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reject(self, rejection: Rejection) -> None:
        headers = [("Content-Type", "application/json"), *rejection.headers]
        self._send(
            rejection.status, headers, _error_body(rejection.error, rejection.message, self.request_id)
        )

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering an error (the connection is then closed)."""
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                self.close_connection = True
                self._reject(
                    Rejection(HTTPStatus.LENGTH_REQUIRED, "length_required", "send a Content-Length header")
                )
                return None
            return b""
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._reject(Rejection(HTTPStatus.BAD_REQUEST, "bad_request", "bad Content-Length"))
            return None
        if length > MAX_GATEWAY_BODY_BYTES:
            self.close_connection = True
            message = f"the request body is {length} bytes; the limit is {MAX_GATEWAY_BODY_BYTES}"
            self._reject(Rejection(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large", message))
            return None
        return self.rfile.read(length) if length else b""

    def _proxy(self) -> None:
        started = time.perf_counter()
        self.request_id = str(uuid.uuid4())
        self.status_sent = 0
        token = _current_request_id.set(self.request_id)
        key: str | None = None
        try:
            body = self._read_body()
            if body is None:
                return
            admission = self.server.gateway.admit(
                self.command, request_path(self.path), self.headers.get(API_KEY_HEADER)
            )
            key = admission.key
            if admission.rejection is not None:
                self._reject(admission.rejection)
                return
            event = build_event(
                self.command,
                self.path,
                list(self.headers.items()),
                body,
                source_ip=self.client_address[0],
                request_id=self.request_id,
            )
            result = self.server.invoke(event, LocalLambdaContext(self.request_id))
            self._send(*_from_proxy_result(result))
        finally:
            self.server.log(
                f'{self.client_address[0]} "{self.command} {_printable(self.path)}" {self.status_sent} '
                f"{(time.perf_counter() - started) * 1000:.1f}ms"
                + (f" api_key={key}" if key else "")
                + f" request_id={self.request_id}"
            )
            _current_request_id.reset(token)
            self.request_id = "-"


def _printable(text: str) -> str:
    """A request path or line for the log: no control characters (no forged log lines)."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:2048])


class RequestIdLogHandler(logging.Handler):
    """Log records as lines through the server's ``log``, each naming the request being handled."""

    def __init__(self, log: Callable[[str], None], level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            rid = getattr(record, "request_id", None) or _current_request_id.get()
            message = _printable(record.getMessage().replace("\n", " | "))
            self.log(f"{record.levelname} {record.name}: {message} request_id={rid}")
            if record.exc_info:
                for line in "".join(traceback.format_exception(*record.exc_info)).splitlines():
                    self.log(f"  request_id={rid} | {line}")
        except Exception:
            self.handleError(record)


def _from_proxy_result(result: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    status = int(result.get("statusCode", 500))
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, values in (result.get("multiValueHeaders") or {}).items():
        seen.add(name.lower())
        headers.extend((name, str(v)) for v in values)
    for name, value in (result.get("headers") or {}).items():
        if name.lower() not in seen:
            headers.append((name, str(value)))
    raw = result.get("body") or ""
    payload = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    return status, headers, payload


class LocalApiServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # listen backlog: many clients connecting at once are queued, not refused

    def __init__(
        self,
        address: tuple[str, int],
        resolver: Resolver,
        *,
        log: Callable[[str], None],
        gateway: Gateway | None = None,
    ) -> None:
        self.resolver = resolver
        self.log = log
        self.gateway = gateway or Gateway()
        self._lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self._log_handler = RequestIdLogHandler(log)
        logging.getLogger().addHandler(self._log_handler)

    def server_close(self) -> None:
        logging.getLogger().removeHandler(self._log_handler)
        super().server_close()

    @property
    def url(self) -> str:
        host, port = self.server_address[0], self.server_address[1]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection-level failure (e.g. the client went away): one log line, no traceback."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            self.log(f"error serving {client_address[0]}: {exc!r} request_id={_current_request_id.get()}")

    def invoke(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self._lock:  # the resolver keeps the current event in class state: one request at a time
            try:
                return self.resolver(event, context)
            except Exception as exc:  # the resolver maps errors itself; this is a last resort
                request_id = event["requestContext"]["requestId"]
                self.log(f"unhandled error: {exc!r} request_id={request_id}")
                body = _error_body("internal_error", "internal error", request_id)
                return {
                    "statusCode": 500,
                    "headers": {"Content-Type": "application/json"},
                    "body": body.decode(),
                }


def make_server(
    host: str,
    port: int,
    resolver: Resolver,
    *,
    log: Callable[[str], None],
    gateway: Gateway | None = None,
) -> LocalApiServer:
    """Bind (port 0 picks a free port) and return the server; call ``serve_forever()`` to run it.

    ``gateway`` (API keys, rate limit) defaults to an open API. Until ``server_close()``, WARNING and
    higher log records go to ``log`` too, each with the request id of the request being handled.
    """
    return LocalApiServer((host, port), resolver, log=log, gateway=gateway)
