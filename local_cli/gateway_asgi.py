"""API Gateway's part of `rag-explorer serve`, as a plain ASGI app run by uvicorn (no web framework).

See :mod:`local_cli.server` for how a request flows. :class:`GatewayApp` screens each request from its
headers (framing 400, size 413, key 403, rate 429, route 404/405, multipart 415) before reading the body,
answers ``GET /health`` and the 404/405s with the server process's own resolver, and sends everything
else to the :class:`~local_cli.worker_pool.WorkerPool`. :class:`GatewayProtocol` is uvicorn's h11
protocol with three changes: a request h11 cannot parse gets the error model and a request id (not
uvicorn's plain-text 400), a connection that never sends a request is closed after the keep-alive
timeout like an idle one, and TCP_NODELAY is set (asyncio skips it on the socket we bind ourselves).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from local_cli.api_keys import HEADER as API_KEY_HEADER
from local_cli.api_keys import Gateway, Rejection, is_open_route
from local_cli.server import (
    LocalLambdaContext,
    _current_request_id,
    _error_body,
    _from_proxy_result,
    _printable,
    build_event,
    internal_error_result,
    request_path,
)
from local_cli.worker_pool import DEADLINE_S, Outcome, WorkerPool
from shared.adapters.http_api import MAX_BODY_BYTES

if TYPE_CHECKING:
    from local_cli.server import ServeOptions

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: Headers the server sets itself; the resolver's are dropped.
_OWN_HEADERS = frozenset({"content-length", "connection", "transfer-encoding", "x-request-id"})
#: The client closed the connection before it had its answer (nginx's code; only in the log).
CLIENT_GONE = 499
UNSUPPORTED = Rejection(
    415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json"
)
BUSY = Rejection(
    503,
    "service_unavailable",
    "the server is busy: too many requests are queued or running; retry after 1 s",
    (("Retry-After", "1"),),
)
STOPPING = Rejection(
    503, "service_unavailable", "the server is shutting down; retry later", (("Retry-After", "1"),)
)
#: What the client is told when its request was not answered by a worker.
REJECTIONS: dict[Outcome, Rejection] = {
    "busy": BUSY,
    "stopping": STOPPING,
    "timeout": Rejection(
        504, "gateway_timeout", f"the request took longer than {DEADLINE_S:g} s; retry later"
    ),
    "crashed": Rejection(502, "bad_gateway", "the worker process handling the request stopped; retry"),
}
#: What the log says when the client left first (nobody to answer).
GONE_NOTES: dict[Outcome, str] = {
    "gone_queued": " client gone while queued: not computed",
    "gone_running": " client gone while computing",
}


class ClientGone(Exception):
    """The client disconnected before its request was read."""


@dataclass
class Request:
    """One HTTP request as the gateway sees it, and what became of it (for the log line)."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    client: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: int = 0
    key: str | None = None
    note: str = ""

    @classmethod
    def from_scope(cls, scope: Scope) -> Request:
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        query = scope.get("query_string") or b""
        target = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        client = scope.get("client")
        return cls(scope["method"], target, headers, client[0] if client else "-")

    @property
    def path(self) -> str:
        return request_path(self.target)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def has_body(self) -> bool:
        length = self.header("content-length")
        return self.header("transfer-encoding") is not None or (length is not None and int(length) > 0)

    def event(self, body: bytes) -> dict[str, Any]:
        return build_event(
            self.method, self.target, self.headers, body, source_ip=self.client, request_id=self.id
        )


def framing_problem(request: Request, limit: int) -> Rejection | None:
    """What h11 lets through but API Gateway would not: both framings at once, or too large a body."""
    length = request.header("content-length")
    if length is not None and request.header("transfer-encoding") is not None:
        message = "send either Content-Length or Transfer-Encoding: chunked, not both"
        return Rejection(400, "bad_request", message)
    if length is not None and int(length) > limit:  # h11 has checked that it is a number
        return Rejection(
            413, "payload_too_large", f"the request body is {int(length)} bytes; the limit is {limit}"
        )
    return None


def route_table(resolver: Any) -> Callable[[str, str], bool]:
    """Whether the resolver has a route for (method, path), from its own route table."""
    routes = [*getattr(resolver, "_static_routes", ()), *getattr(resolver, "_dynamic_routes", ())]
    if not routes:  # another Powertools layout: let the resolver itself say 404/405, after the body
        return lambda method, path: True
    pairs = [(route.method, route.rule) for route in routes]
    return lambda method, path: any(m == method.upper() and rule.match(path) for m, rule in pairs)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it is longer than ``limit`` (the rest is not read)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


class GatewayApp:
    """The ASGI app (see the module doc); ``resolver`` answers in the server process."""

    def __init__(
        self,
        *,
        gateway: Gateway,
        resolver: Any,
        pool: WorkerPool,
        log: Callable[[str], None],
        max_body_bytes: int = MAX_BODY_BYTES,
        demo_page: Callable[[], str] | None = None,
    ) -> None:
        self.demo_page = demo_page
        self.gateway = gateway
        self.resolver = resolver
        self.pool = pool
        self.log = log
        self.max_body_bytes = max_body_bytes
        self.routable = route_table(resolver)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan, no websockets (uvicorn is configured without them)
        request = Request.from_scope(scope)
        token = _current_request_id.set(request.id)
        started = time.perf_counter()
        try:
            await self._handle(request, receive, send)
        except ClientGone:
            request.status, request.note = CLIENT_GONE, " client gone while sending"
        except asyncio.CancelledError:  # the server stopped waiting (shutdown timeout)
            if not request.status:
                await self._reject(request, send, STOPPING, close=True)
        except Exception as exc:
            logging.getLogger("local_cli.server").error("unhandled error: %r", exc, exc_info=exc)
            if not request.status:
                await self._answer(request, send, internal_error_result(request.id))
        finally:
            self.log(
                f'{request.client} "{request.method} {_printable(request.target)}" {request.status} '
                f"{(time.perf_counter() - started) * 1000:.1f}ms{request.note}"
                + (f" api_key={request.key}" if request.key else "")
                + f" request_id={request.id}"
            )
            _current_request_id.reset(token)

    async def _handle(self, request: Request, receive: Receive, send: Send) -> None:
        problem = framing_problem(request, self.max_body_bytes)
        if problem is None:
            admission = self.gateway.admit(
                request.method, request.path, request.header(API_KEY_HEADER), request.client
            )
            request.key, problem = admission.key, admission.rejection
        if problem is not None:
            return await self._reject(request, send, problem, close=request.has_body())
        if request.method == "GET" and request.path == "/" and self.demo_page is not None:
            page = self.demo_page().encode("utf-8")
            headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
            return await self._send(request, send, 200, headers, page, False)
        if not self.routable(request.method, request.path):  # 404/405, as the resolver says them
            result = self._resolve_here(request.event(b""))
            return await self._answer(request, send, result, close=request.has_body())
        content_type = (request.header("content-type") or "").strip().lower()
        if request.has_body() and content_type.startswith("multipart/"):
            return await self._reject(request, send, UNSUPPORTED, close=True)
        body = await read_body(receive, self.max_body_bytes)
        if body is None:
            message = f"the request body is over the limit of {self.max_body_bytes} bytes"
            return await self._reject(request, send, Rejection(413, "payload_too_large", message), close=True)
        event = request.event(body)
        if is_open_route(request.method, request.path):
            return await self._answer(request, send, self._resolve_here(event))
        await self._pooled(request, receive, send, event)

    def _resolve_here(self, event: dict[str, Any]) -> dict[str, Any]:
        request_id = str(event["requestContext"]["requestId"])
        try:
            result: dict[str, Any] = self.resolver.resolve(event, LocalLambdaContext(request_id))
            return result
        except Exception as exc:  # the resolver maps errors itself; this is a last resort
            logging.getLogger("local_cli.server").error("unhandled error: %r", exc)
            return internal_error_result(request_id)

    async def _pooled(self, request: Request, receive: Receive, send: Send, event: dict[str, Any]) -> None:
        gone = asyncio.ensure_future(receive())  # completes with http.disconnect if the client leaves
        try:
            outcome, result = await self.pool.dispatch(event, time.time() + DEADLINE_S, gone)
        finally:
            gone.cancel()
        if result is not None:
            return await self._answer(request, send, result)
        if outcome in GONE_NOTES:
            request.status, request.note = CLIENT_GONE, GONE_NOTES[outcome]
            return None
        await self._reject(request, send, REJECTIONS[outcome])

    async def _reject(self, request: Request, send: Send, rejection: Rejection, close: bool = False) -> None:
        cors = self.gateway.cors_headers(request.header("origin"))
        headers = [("Content-Type", "application/json"), *rejection.headers, *cors]
        body = _error_body(rejection.error, rejection.message, request.id)
        await self._send(request, send, rejection.status, headers, body, close)

    async def _answer(
        self, request: Request, send: Send, result: dict[str, Any], close: bool = False
    ) -> None:
        await self._send(request, send, *_from_proxy_result(result), close)

    async def _send(
        self,
        request: Request,
        send: Send,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        close: bool,
    ) -> None:
        """The response; ``close`` when the request's body was not read (the connection cannot be reused)."""
        request.status = status
        out = [
            (name.encode("latin-1"), value.encode("latin-1", "replace"))  # h11 keeps the case
            for name, value in headers
            if name.lower() not in _OWN_HEADERS
        ]
        out += [(b"Content-Length", str(len(body)).encode()), (b"x-request-id", request.id.encode())]
        if close:
            out.append((b"connection", b"close"))  # as uvicorn spells it: never twice
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})


class GatewayProtocol(H11Protocol):
    """uvicorn's h11 protocol; see the module doc for the three changes."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # asyncio sets it only on sockets whose proto says TCP; ours (create_server) says 0. Without
            # it, a response's second write waits for the client's delayed ACK (40 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def send_400_response(self, msg: str) -> None:
        exc = sys.exc_info()[1]  # uvicorn calls this while handling h11's RemoteProtocolError
        detail = _printable(str(exc) if isinstance(exc, h11.RemoteProtocolError) else msg)
        request_id = str(uuid.uuid4())
        body = _error_body("bad_request", f"malformed HTTP request: {detail}", request_id)
        headers = [
            *self.server_state.default_headers,
            (b"Content-Type", b"application/json"),
            (b"Content-Length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            (b"Connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()
        client = self.client[0] if self.client else "-"
        app = self.config.app
        if isinstance(app, GatewayApp):
            app.log(f'{client} "-" 400 malformed HTTP request: {detail} request_id={request_id}')


def _not_uvicorns_400(record: logging.LogRecord) -> bool:
    return record.getMessage() != "Invalid HTTP request received."  # GatewayProtocol logs its own line


class _Server(uvicorn.Server):
    """uvicorn's server; on shutdown, queued requests are answered 503 at once instead of waiting."""

    def __init__(self, config: uvicorn.Config, pool: WorkerPool) -> None:
        super().__init__(config)
        self.pool = pool

    async def shutdown(self, sockets: Any = None) -> None:
        self.pool.stopping.set()
        await super().shutdown(sockets)


def uvicorn_server(app: GatewayApp, pool: WorkerPool, options: ServeOptions) -> uvicorn.Server:
    """uvicorn configured for ``serve``: h11 with :class:`GatewayProtocol`, our log lines only."""
    error_log = logging.getLogger("uvicorn.error")
    if _not_uvicorns_400 not in error_log.filters:
        error_log.addFilter(_not_uvicorns_400)
    config = uvicorn.Config(
        app,
        http=GatewayProtocol,
        loop="asyncio",
        ws="none",
        lifespan="off",
        interface="asgi3",
        log_config=None,
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # we are the gateway: the client address is the socket's
        server_header=False,
        headers=[("server", "rag-explorer-serve")],
        limit_concurrency=max(options.max_connections, options.max_pending + 64),
        timeout_keep_alive=int(options.keep_alive_s),
        timeout_graceful_shutdown=int(options.shutdown_s),
        h11_max_incomplete_event_size=options.max_header_bytes,
    )
    return _Server(config, pool)
