"""A scriptable Bedrock Runtime server for boto3 (``endpoint_url``): Converse
(``POST /model/{modelId}/converse``), ConverseStream (``/converse-stream``, answered in the AWS event-stream
binary encoding: :func:`encode_event`) and InvokeModel (``/invoke``) for Titan text embeddings.

Errors follow the restJson protocol: the status code, ``x-amzn-ErrorType: <Code>`` and ``{"message": ...}``.
"""

from __future__ import annotations

import json
import struct
import zlib
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from tests.fakes import FakeServer, Recorded, Reply, fake_vector, pieces, send_bytes, send_json

_STRING = 7  # header value type: string


def _header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack(">B", len(n)) + n + struct.pack(">BH", _STRING, len(v)) + v


def encode_event(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length, CRC32 of those 8 bytes), headers,
    payload, CRC32 of everything before it."""
    raw_headers = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_event(headers, json.dumps(payload).encode())


def exception_event(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_event(headers, json.dumps({"message": message}).encode())


class FakeBedrockServer(FakeServer):
    endpoints = ("chat", "invoke")

    def __init__(self, *, default_answer: str = "INSUFFICIENT_CONTEXT") -> None:
        super().__init__()
        self.default_answer = default_answer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def chat(self, *replies: Reply) -> None:
        self.script("chat", *replies)

    def invoke(self, *replies: Reply) -> None:
        self.script("invoke", *replies)

    def model_ids(self) -> list[str]:
        return [unquote(r.path.split("/")[2]) for r in self.requests if r.path.startswith("/model/")]

    # -------------------------------------------------------------- handling

    def handle(self, request: BaseHTTPRequestHandler, recorded: Recorded) -> None:
        parts = recorded.path.split("?")[0].split("/")  # ["", "model", "<id>", "<operation>"]
        operation = parts[3] if len(parts) == 4 and parts[1] == "model" else ""
        body = recorded.body if isinstance(recorded.body, dict) else {}
        if operation == "converse":
            self._converse(request, body)
        elif operation == "converse-stream":
            self._converse_stream(request, body)
        elif operation == "invoke":
            self._invoke(request, body)
        else:
            self._error(
                request, Reply.fail(404, f"no route {recorded.path}", code="ResourceNotFoundException")
            )

    def _error(self, request: BaseHTTPRequestHandler, reply: Reply) -> None:
        headers = {
            "x-amzn-ErrorType": f"{reply.code or 'InternalServerException'}:http://internal.amazon.com/"
        }
        headers.update(reply.headers)
        send_json(request, reply.status, {"message": reply.error or "error"}, headers=headers)

    def _common(self, request: BaseHTTPRequestHandler, reply: Reply) -> bool:
        if reply.delay_s:
            self.wait(reply.delay_s)
        if reply.raw is not None:
            send_bytes(request, reply.status, reply.raw, headers=reply.headers)
            return True
        if reply.status >= 400:
            self._error(request, reply)
            return True
        return False

    def _converse(self, request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        reply = self.next_reply("chat") or Reply.answer(self.default_answer)
        if self._common(request, reply):
            return
        payload = {
            "output": {"message": {"role": "assistant", "content": [{"text": reply.text or ""}]}},
            "stopReason": reply.finish or "end_turn",
            "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
            "metrics": {"latencyMs": 1},
        }
        send_json(request, 200, payload, headers=reply.headers)

    def _converse_stream(self, request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        reply = self.next_reply("chat") or Reply.answer(self.default_answer)
        if self._common(request, reply):
            return
        events = [event("messageStart", {"role": "assistant"})]
        for piece in pieces(reply.text or "", reply.chunk_chars):
            events.append(event("contentBlockDelta", {"delta": {"text": piece}, "contentBlockIndex": 0}))
        if reply.stream_exception:
            cut = reply.break_after if reply.break_after is not None else len(events)
            events = [*events[: cut + 1], exception_event(reply.stream_exception, "stream failed")]
        else:
            events += [
                event("contentBlockStop", {"contentBlockIndex": 0}),
                event("messageStop", {"stopReason": reply.finish or "end_turn"}),
                event(
                    "metadata",
                    {
                        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                        "metrics": {"latencyMs": 1},
                    },
                ),
            ]
        data = b"".join(events)
        send_bytes(
            request, 200, data, content_type="application/vnd.amazon.eventstream", headers=reply.headers
        )

    def _invoke(self, request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        reply = self.next_reply("invoke") or Reply()
        if self._common(request, reply):
            return
        dimension = int(body.get("dimensions") or 1024)
        text = str(body.get("inputText", ""))
        payload = {"embedding": fake_vector(text, dimension), "inputTextTokenCount": len(text.split())}
        send_json(request, 200, payload, headers=reply.headers)
