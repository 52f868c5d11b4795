"""A scriptable Anthropic Messages API server: ``POST /v1/messages``, answered with one JSON message, or,
when the request says ``"stream": true``, with server-sent events as Anthropic sends them
(``message_start``, ``content_block_start``, ``ping``, ``content_block_delta`` (``text_delta``) …,
``content_block_stop``, ``message_delta`` with the stop reason, ``message_stop``).

Errors are ``{"type": "error", "error": {"type": "rate_limit_error", "message": ...}}`` with the status;
``Reply(stream_exception="overloaded_error", break_after=n)`` sends an ``error`` event inside a 200
stream after ``n`` deltas (0: before any text), as Anthropic does when it overloads mid-answer.

    with FakeAnthropicServer() as server:
        server.messages(Reply.answer("Use --force [1]."), Reply.fail(529, "Overloaded"))
        AnthropicChat("claude-haiku-4-5", base_url=server.base_url, api_key="test")
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes import FakeServer, Recorded, Reply, pieces, send_bytes, send_json

DEFAULT_ANSWER = "INSUFFICIENT_CONTEXT"
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class FakeAnthropicServer(FakeServer):
    endpoints = ("messages",)

    def __init__(self, *, default_answer: str = DEFAULT_ANSWER) -> None:
        super().__init__()
        self.default_answer = default_answer

    @property
    def base_url(self) -> str:
        """What the SDK takes as ``base_url`` (it appends ``/v1/messages``)."""
        return f"http://127.0.0.1:{self.port}"

    def messages(self, *replies: Reply) -> None:
        self.script("messages", *replies)

    def message_calls(self) -> list[Recorded]:
        return self.calls("/v1/messages")

    # -------------------------------------------------------------- handling

    def handle(self, request: BaseHTTPRequestHandler, recorded: Recorded) -> None:
        if recorded.method != "POST" or recorded.path.split("?")[0] != "/v1/messages":
            self._error(request, 404, "not_found_error", f"no route {recorded.path}", {})
            return
        body = recorded.body if isinstance(recorded.body, dict) else {}
        reply = self.next_reply("messages") or Reply.answer(self.default_answer)
        if reply.delay_s:
            self.wait(reply.delay_s)
        if reply.raw is not None:
            send_bytes(request, reply.status, reply.raw, headers=reply.headers)
        elif reply.status >= 400:
            kind = reply.code or ERROR_TYPES.get(reply.status, "api_error")
            self._error(request, reply.status, kind, reply.error or "error", reply.headers)
        elif body.get("stream"):
            self._stream(request, body, reply)
        else:
            message = self._message(body, reply.text or "", reply.finish)
            send_json(request, 200, message, headers=reply.headers)

    @staticmethod
    def _error(
        request: BaseHTTPRequestHandler, status: int, kind: str, message: str, headers: dict[str, str]
    ) -> None:
        payload = {"type": "error", "error": {"type": kind, "message": message}}
        send_json(request, status, payload, headers={"request-id": "req_fake", **headers})

    @staticmethod
    def _message(body: dict[str, Any], text: str, stop: str | None) -> dict[str, Any]:
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": str(body.get("model", "fake")),
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": stop or "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }

    def _stream(self, request: BaseHTTPRequestHandler, body: dict[str, Any], reply: Reply) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "text/event-stream")
        request.send_header("Transfer-Encoding", "chunked")
        for key, value in reply.headers.items():
            request.send_header(key, value)
        request.end_headers()

        def event(name: str, data: dict[str, Any]) -> None:
            raw = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            request.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            request.wfile.flush()

        start = self._message(body, "", None) | {"content": [], "stop_reason": None}
        event("message_start", {"type": "message_start", "message": start})
        block = {"type": "text", "text": ""}
        event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
        event("ping", {"type": "ping"})
        for i, piece in enumerate(pieces(reply.text or "", reply.chunk_chars)):
            if reply.break_after is not None and i == reply.break_after:
                if reply.stream_exception:
                    error = {"type": reply.stream_exception, "message": reply.error or "mid-stream error"}
                    event("error", {"type": "error", "error": error})
                    request.wfile.write(b"0\r\n\r\n")
                    request.wfile.flush()
                else:  # drop it mid-stream: no terminating chunk
                    request.close_connection = True
                    request.connection.shutdown(2)
                return
            delta = {"type": "text_delta", "text": piece}
            event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        event("content_block_stop", {"type": "content_block_stop", "index": 0})
        stop = {"stop_reason": reply.finish or "end_turn", "stop_sequence": None}
        event("message_delta", {"type": "message_delta", "delta": stop, "usage": {"output_tokens": 9}})
        event("message_stop", {"type": "message_stop"})
        request.wfile.write(b"0\r\n\r\n")
        request.wfile.flush()
