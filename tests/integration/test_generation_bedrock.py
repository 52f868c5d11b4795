"""BedrockChat through real boto3 against a local server speaking the Converse JSON protocol."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import unquote

import boto3
import pytest
from botocore.config import Config

from shared.generation.base import ChatMessage, LLMError
from shared.generation.bedrock_chat import BedrockChat

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


class Converse(BaseHTTPRequestHandler):
    script: ClassVar[list[tuple[int, dict[str, Any]]]] = []
    seen: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        Converse.seen.append((unquote(self.path), body))
        status, payload = Converse.script.pop(0)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if status >= 400:
            self.send_header("x-amzn-ErrorType", payload["__type"])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[BedrockChat]:
    for var, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(var, value)
    Converse.script, Converse.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Converse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    yield BedrockChat(MODEL, client=client)
    server.shutdown()


MESSAGES = [ChatMessage("system", "rules"), ChatMessage("user", "question")]


def test_converse_request_and_answer(bedrock: BedrockChat) -> None:
    Converse.script = [
        (
            200,
            {
                "output": {"message": {"role": "assistant", "content": [{"text": "Answer [1]."}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                "metrics": {"latencyMs": 1},
            },
        )
    ]
    assert bedrock.complete(MESSAGES, max_tokens=64) == "Answer [1]."
    path, body = Converse.seen[0]
    assert path == f"/model/{MODEL}/converse"
    assert body["system"] == [{"text": "rules"}] and body["messages"] == [
        {"role": "user", "content": [{"text": "question"}]}
    ]
    assert body["inferenceConfig"] == {"maxTokens": 64, "temperature": 0}


@pytest.mark.parametrize(
    ("status", "error_type", "kind", "retryable"),
    [
        (429, "ThrottlingException", "rate_limit", True),
        (403, "AccessDeniedException", "auth", False),
        (400, "ValidationException", "bad_request", False),
        (503, "ServiceUnavailableException", "server", True),
    ],
)
def test_errors_are_classified(
    bedrock: BedrockChat, status: int, error_type: str, kind: str, retryable: bool
) -> None:
    Converse.script = [(status, {"__type": error_type, "message": "scripted"})]
    with pytest.raises(LLMError) as info:
        bedrock.complete(MESSAGES)
    assert info.value.kind == kind and info.value.retryable is retryable and info.value.status == status
