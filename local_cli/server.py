"""The local HTTP server behind `rag-explorer serve`: API Gateway in front of the Lambda resolver.

How a request flows:

1. **uvicorn** (:class:`uvicorn.Server`, h11) owns the socket: it parses the request line and headers
   (malformed ones, conflicting ``Content-Length`` headers, ``Transfer-Encoding`` other than chunked:
   400 with the error model), closes connections idle for ``keep_alive_s`` and caps open connections
   plus running requests (``max_connections``; beyond it uvicorn itself answers 503). One event loop,
   no thread per connection.
2. **The gateway** (:class:`local_cli.gateway_asgi.GatewayApp`, a plain ASGI app) decides from the
   headers alone, before reading a byte of the body: ``Transfer-Encoding`` with ``Content-Length`` 400,
   a declared body over ``MAX_BODY_BYTES`` 413, API key 403 and rate limit 429
   (:class:`local_cli.api_keys.Gateway`), unknown route or method 404/405 (the resolver's own answer,
   from its route table), a ``multipart/*`` body 415. Then it reads the body, at most ``MAX_BODY_BYTES``
   (a longer chunked body: 413), and builds the API Gateway REST proxy event (:func:`build_event`).
3. ``GET /health`` (open, cheap) is answered right there by a resolver in the server process, whose
   store and embedder are never loaded, so it never waits behind queries.
4. Everything else goes to **worker processes** (:class:`local_cli.worker_pool.WorkerPool`), each with
   its own resolver, ``create_app(RagService(settings))``, the same one the query and health Lambdas run.
   At most ``max_pending`` requests are queued or running; beyond that the answer is an immediate 503
   with ``Retry-After: 1``. A request still queued when its client disconnects is dropped, never
   computed; past ``DEADLINE_S`` (API Gateway's 29 s) the answer is 504.
5. The proxy result becomes the HTTP response. Every response carries ``x-request-id`` (the id error
   bodies quote), and every log line names it: one line per request, and whatever the resolver and the
   core log (WARNING and above) in the server or in a worker (:class:`RequestIdLogHandler`).

Ctrl-C (SIGINT) or SIGTERM stops accepting, answers queued requests 503, lets running ones finish (up
to ``shutdown_s``), then stops the workers: no process is left behind.
"""

from __future__ import annotations

import base64
import contextvars
import logging
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from local_cli.api_keys import Gateway
from shared.extras import needs_extra

if TYPE_CHECKING:
    from local_cli.worker_pool import WorkerPool
    from shared.settings import Settings

__all__ = ["Gateway", "LocalApiServer", "ServeOptions", "build_event", "make_server"]

STAGE = "local"
REQUEST_ID_HEADER = "x-request-id"

_current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class LocalLambdaContext:
    """What the resolver reads of a Lambda context; the remaining time counts down to ``deadline``."""

    function_name = "rag-explorer-serve"
    function_version = "$LATEST"
    memory_limit_in_mb = 0
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:rag-explorer-serve"
    log_group_name = "local"
    log_stream_name = "local"

    def __init__(self, request_id: str, deadline: float | None = None) -> None:
        self.aws_request_id = request_id
        self.deadline = deadline if deadline is not None else time.time() + 29.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


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
    lower = {name.lower(): value for name, value in single.items()}
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
            "domainName": lower.get("host", "localhost"),
            "httpMethod": method,
            # as API Gateway does for a keyed method: the key presented (the resolver tells sites by it)
            "identity": {
                "sourceIp": source_ip,
                "userAgent": lower.get("user-agent"),
                "apiKey": lower.get("x-api-key"),
            },
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


def internal_error_result(request_id: str) -> dict[str, Any]:
    """The proxy result of a request that failed outside the resolver's own error handling."""
    body = _error_body("internal_error", f"internal error; quote request id {request_id}", request_id)
    return {"statusCode": 500, "headers": {"Content-Type": "application/json"}, "body": body.decode()}


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


# --------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class ServeOptions:
    """``serve``'s capacity and timeouts (see the module doc)."""

    workers: int = 2
    max_pending: int = 128
    #: uvicorn's ``limit_concurrency`` (connections plus running requests); at least max_pending + 64
    max_connections: int = 1024
    keep_alive_s: float = 5.0
    #: on Ctrl-C: how long running requests may take to finish, then how long the workers may take
    shutdown_s: float = 10.0
    #: request line plus headers (h11's ``max_incomplete_event_size``)
    max_header_bytes: int = 16 * 1024


class _Stop(Exception):
    """SIGTERM, turned into an exception so that the pool is shut down like on Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Stop


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(False)
    return sock


def _raise_fd_limit(needed: int) -> None:
    """Room for ``needed`` open connections, if the hard limit allows."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < needed:
            resource.setrlimit(
                resource.RLIMIT_NOFILE,
                (needed if hard == resource.RLIM_INFINITY else min(needed, hard), hard),
            )
    except (ImportError, ValueError, OSError):
        pass


class LocalApiServer:
    """A bound socket, the worker pool and the gateway app; :meth:`start_workers`, then :meth:`run`."""

    def __init__(
        self,
        sock: socket.socket,
        settings: Settings,
        *,
        log: Callable[[str], None],
        gateway: Gateway,
        options: ServeOptions,
    ) -> None:
        with needs_extra("local", "the local HTTP API"):
            from local_cli.gateway_asgi import GatewayApp
            from local_cli.worker_pool import WorkerPool
            from shared.adapters.http_api import create_app
        from shared.service import RagService

        self.sock = sock
        self.log = log
        self.options = options
        self.pool: WorkerPool = WorkerPool(
            settings, workers=options.workers, max_pending=options.max_pending, log=log
        )
        # GET /health and the 404/405 answers: a resolver here, whose store and embedder stay unloaded
        self.app = GatewayApp(
            gateway=gateway,
            resolver=create_app(RagService(settings)),
            pool=self.pool,
            log=log,
            demo_page=lambda: demo_page_for(settings, self.url),
        )
        self._log_handler = RequestIdLogHandler(log)
        logging.getLogger().addHandler(self._log_handler)

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}"

    def start_workers(self) -> list[str]:
        """Start the worker processes and wait until each has loaded the service; returns warnings
        (e.g. the store is unavailable). Raises :class:`local_cli.worker_pool.WorkerStartError`."""
        return self.pool.start()

    def run(self) -> None:
        """Serve until Ctrl-C or SIGTERM (then return normally)."""
        from local_cli.gateway_asgi import uvicorn_server

        server = uvicorn_server(self.app, self.pool, self.options)
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
        try:
            server.run(sockets=[self.sock])
        except (KeyboardInterrupt, _Stop):
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def close(self) -> None:
        """Stop the workers (see :meth:`WorkerPool.close`), close the socket, detach the log handler."""
        try:
            self.pool.close(timeout=self.options.shutdown_s)
        finally:
            self.sock.close()
            logging.getLogger().removeHandler(self._log_handler)


def demo_page_for(settings: Settings, url: str) -> str:
    """``GET /``: a help page with the widget, using the key of a site that allows this server's origin
    (else the first site's key; else none, for an open server)."""
    from local_cli.demo_page import demo_page_html

    keyed = [s for s in settings.sites if s.key]
    site = next((s for s in keyed if url.lower() in s.origins), keyed[0] if keyed else None)
    return demo_page_html(key=site.key if site else None)


def make_server(
    host: str,
    port: int,
    settings: Settings,
    *,
    log: Callable[[str], None],
    gateway: Gateway | None = None,
    options: ServeOptions | None = None,
) -> LocalApiServer:
    """Bind (port 0 picks a free port; :attr:`LocalApiServer.url` has the real one) and return the
    server; call ``start_workers()`` then ``run()``, and ``close()`` at the end. Raises OSError when the
    address cannot be bound. Until ``close()``, WARNING and higher log records go to ``log`` too."""
    options = options or ServeOptions()
    _raise_fd_limit(options.max_connections + 256)
    sock = _bind(host, port)
    try:
        return LocalApiServer(sock, settings, log=log, gateway=gateway or Gateway(), options=options)
    except BaseException:
        sock.close()
        raise
