"""A scriptable OpenAI-compatible server: ``POST /v1/chat/completions`` (JSON, or SSE when the request says
``"stream": true``: ``data: {chunk}`` lines then ``data: [DONE]``) and ``POST /v1/embeddings``.

    with FakeOpenAIServer() as server:
        server.chat(Reply.answer("Use --force [1]."), Reply.fail(429, headers={"Retry-After": "0"}))
        OpenAIChat("gpt-4o-mini", base_url=server.base_url, api_key="test")
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes import FakeServer, Recorded, Reply, fake_vector, pieces, send_bytes, send_json

DEFAULT_ANSWER = "INSUFFICIENT_CONTEXT"


class FakeOpenAIServer(FakeServer):
    endpoints = ("chat", "embeddings")

    def __init__(self, *, default_answer: str = DEFAULT_ANSWER, embedding_dimension: int = 64) -> None:
        super().__init__()
        self.default_answer = default_answer
        self.embedding_dimension = embedding_dimension

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def chat(self, *replies: Reply) -> None:
        self.script("chat", *replies)

    def embeddings(self, *replies: Reply) -> None:
        self.script("embeddings", *replies)

    def chat_calls(self) -> list[Recorded]:
        return self.calls("/chat/completions")

    # -------------------------------------------------------------- handling

    def handle(self, request: BaseHTTPRequestHandler, recorded: Recorded) -> None:
        if recorded.path.endswith("/chat/completions"):
            self._chat(request, recorded.body if isinstance(recorded.body, dict) else {})
        elif recorded.path.endswith("/embeddings"):
            self._embeddings(request, recorded.body if isinstance(recorded.body, dict) else {})
        else:
            send_json(request, 404, {"error": {"message": f"no route {recorded.path}", "type": "not_found"}})

    def _common(self, request: BaseHTTPRequestHandler, reply: Reply) -> bool:
        """Delay, errors and raw bodies; True when the reply has been sent."""
        if reply.delay_s:
            self.wait(reply.delay_s)
        if reply.raw is not None:
            send_bytes(request, reply.status, reply.raw, headers=reply.headers)
            return True
        if reply.status >= 400:
            error = {"message": reply.error or "error", "type": reply.code or "api_error", "code": reply.code}
            send_json(request, reply.status, {"error": error}, headers=reply.headers)
            return True
        return False

    def _chat(self, request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        reply = self.next_reply("chat") or Reply.answer(self.default_answer)
        if self._common(request, reply):
            return
        model = str(body.get("model", "fake"))
        text = reply.text or ""
        finish = reply.finish or "stop"
        if not body.get("stream"):
            payload = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish,
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
            send_json(request, 200, payload, headers=reply.headers)
            return
        request.send_response(200)
        request.send_header("Content-Type", "text/event-stream")
        request.send_header("Transfer-Encoding", "chunked")
        request.end_headers()

        def event(data: str) -> None:
            raw = f"data: {data}\n\n".encode()
            request.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            request.wfile.flush()

        def chunk(delta: dict[str, Any], finish_reason: str | None) -> str:
            return json.dumps(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                }
            )

        for i, piece in enumerate(pieces(text, reply.chunk_chars)):
            if reply.break_after is not None and i == reply.break_after:
                request.close_connection = True
                request.wfile.flush()
                request.connection.shutdown(2)  # drop it mid-stream: no terminating chunk
                return
            event(chunk({"role": "assistant", "content": piece} if i == 0 else {"content": piece}, None))
        event(chunk({}, finish))
        event("[DONE]")
        request.wfile.write(b"0\r\n\r\n")
        request.wfile.flush()

    def _embeddings(self, request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        reply = self.next_reply("embeddings") or Reply()
        if self._common(request, reply):
            return
        inputs = body.get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        dimension = int(body.get("dimensions") or self.embedding_dimension)
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(str(text), dimension)}
            for i, text in reversed(list(enumerate(inputs)))  # out of order: clients must sort by index
        ]
        payload = {
            "object": "list",
            "data": data,
            "model": body.get("model", "fake"),
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
        send_json(request, 200, payload, headers=reply.headers)
