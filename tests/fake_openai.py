"""A scriptable OpenAI-compatible HTTP server on 127.0.0.1 (`/v1/chat/completions`, with and without
`stream`), for tests that drive the real `openai` SDK over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted reply: a chat answer, or an HTTP error / raw body / delay."""

    text: str | None = None
    status: int = 200
    error_code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    delay_s: float = 0.0


@dataclass
class FakeOpenAI:
    url: str
    script: list[Reply] = field(default_factory=list)
    default: Reply | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)

    def next(self) -> Reply:
        if self.script:
            return self.script.pop(0)
        if self.default is not None:
            return self.default
        raise AssertionError("the fake OpenAI server got an unscripted request")


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(
            self, status: int, body: bytes, headers: dict[str, str], ctype: str = "application/json"
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            fake.requests.append(body)
            reply = fake.next()
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.raw is not None:
                self._send(reply.status, reply.raw, reply.headers)
                return
            if reply.status != 200:
                err = {
                    "error": {
                        "message": f"scripted {reply.status}",
                        "type": "error",
                        "code": reply.error_code,
                    }
                }
                self._send(reply.status, json.dumps(err).encode(), reply.headers)
                return
            text = reply.text or ""
            model = body.get("model", "fake")
            if body.get("stream"):
                words = [w + " " for w in text.split(" ")]
                words[-1] = words[-1][:-1]
                events = [
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": model,
                        "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}],
                    }
                    for w in words
                ]
                events.append(
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": model,
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    }
                )
                payload = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
                self._send(200, payload.encode(), reply.headers, "text/event-stream")
                return
            resp = {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
            self._send(200, json.dumps(resp).encode(), reply.headers)

    return Handler


@contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
