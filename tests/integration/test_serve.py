"""`rag-explorer serve` in a subprocess on a free port, exercised over real HTTP.

The index is built first with `rag-explorer ingest` (hashing embedder, Chroma in a temporary home). The
server is stopped with SIGINT, as Ctrl-C would, and must exit cleanly having logged every request.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from local_cli.main import cli
from shared.models import AskResponse, ErrorResponse, SearchResponse
from tests.servers import serve

ROOT = Path(__file__).resolve().parents[2]

GUIDE = """---
title: Account guide
tags: [security]
---
# Account guide

## Rotating API keys

To rotate your API key, open the console and choose Regenerate key. The old key stops working one hour later.

## Invoices

Invoices are emailed to the account owner on the first day of every month.
"""


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    log: Path
    statuses: list[int] = field(default_factory=list)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        data = body.encode() if isinstance(body, str) else body
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        hdrs.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, raw, got = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, raw, got = exc.code, exc.read(), dict(exc.headers)
        self.statuses.append(status)
        parsed: Any = raw.decode("utf-8")
        if got.get("Content-Type", "").startswith("application/json"):
            parsed = json.loads(parsed)
        return status, got, parsed

    def post(self, path: str, payload: Any) -> tuple[int, dict[str, str], Any]:
        return self.request("POST", path, json.dumps(payload))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("serve")
    docs = base / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text(GUIDE, encoding="utf-8")
    env = {"RAG_EXPLORER_HOME": str(base / "home"), "RAG_EXPLORER_EMBEDDER": "hash:256"}
    result = CliRunner().invoke(cli, ["ingest", str(docs)], env=env)
    assert result.exit_code == 0, result.output
    log = base / "serve.log"
    with serve(env, log_path=log) as (url, process):
        yield Server(url, process, log)


# --------------------------------------------------------------------------- the happy paths


def test_health(server: Server) -> None:
    status, _, body = server.request("GET", "/health")
    assert status == 200 and body["status"] == "ok" and body["version"]
    status, _, body = server.request("GET", "/health/detailed")
    assert status == 200, body
    assert body["store"]["backend"] == "chroma" and body["store"]["documents"] == 1
    assert body["embedder"]["name"] == "hash:256"
    assert body["document_bucket"]["status"] == "not_configured"


def test_query_answers_and_refuses(server: Server) -> None:
    status, headers, body = server.post("/query", {"question": "How do I rotate my API key?"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    answer = AskResponse.model_validate(body)
    assert answer.decision == "answer" and answer.citations[0].source.endswith("guide.md")
    status, _, body = server.post("/query", {"question": "What is the capital of Mongolia?"})
    assert status == 200
    refusal = AskResponse.model_validate(body)
    assert refusal.decision == "refuse" and refusal.escalation and refusal.reasons


def test_search(server: Server) -> None:
    status, _, body = server.post("/search", {"query": "invoices", "k": 2, "filters": {"tags": ["security"]}})
    assert status == 200
    hits = SearchResponse.model_validate(body).hits
    assert hits and "Invoices" in hits[0].text


def test_openapi_document_is_valid(server: Server) -> None:
    status, _, spec = server.request("GET", "/openapi.json")
    assert status == 200
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(spec)
    schemas = spec["components"]["schemas"]
    assert {"QueryRequest", "SearchRequest", "AskResponse", "SearchResponse", "ErrorResponse"} <= set(schemas)
    assert spec["info"]["version"] and {"/query", "/search", "/health", "/health/detailed"} <= set(
        spec["paths"]
    )


def test_docs_page(server: Server) -> None:
    status, headers, body = server.request("GET", "/docs")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "swagger" in body.lower()


# --------------------------------------------------------------------------- errors, never a 5xx


def error_of(status: int, body: Any, expected: int, code: str) -> ErrorResponse:
    assert status == expected, body
    err = ErrorResponse.model_validate(body)
    assert err.error == code and err.request_id and err.timestamp
    return err


def test_unknown_route_and_wrong_method(server: Server) -> None:
    status, _, body = server.request("GET", "/nope")
    error_of(status, body, 404, "not_found")
    status, headers, body = server.request("GET", "/query")
    error_of(status, body, 405, "method_not_allowed")
    assert headers["Allow"] == "OPTIONS, POST"
    status, _, body = server.request("DELETE", "/health")
    error_of(status, body, 405, "method_not_allowed")


def test_validation_errors_list_fields(server: Server) -> None:
    status, _, body = server.post("/query", {"question": "", "max_chunks": 50, "extra": 1})
    err = error_of(status, body, 422, "validation_error")
    assert {tuple(d.loc) for d in err.details} == {
        ("body", "question"),
        ("body", "max_chunks"),
        ("body", "extra"),
    }
    status, _, body = server.post("/search", {"query": "x" * 2001})
    err = error_of(status, body, 422, "validation_error")
    assert err.details[0].type == "string_too_long"


def test_malformed_json_wrong_type_and_big_bodies(server: Server) -> None:
    status, _, body = server.request("POST", "/query", '{"question": ')
    error_of(status, body, 400, "malformed_json")
    status, _, body = server.request(
        "POST", "/query", "question=hi", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    error_of(status, body, 415, "unsupported_media_type")
    status, _, body = server.post("/query", {"question": "a" * 70_000})
    error_of(status, body, 413, "payload_too_large")


def test_body_over_the_gateway_limit_is_refused_unread(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\n\r\n"
        )
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(payload)["error"] == "payload_too_large"
    server.statuses.append(413)


def test_zz_never_a_5xx_and_ctrl_c_stops_cleanly(server: Server) -> None:
    assert server.statuses and all(s < 500 for s in server.statuses), server.statuses
    server.process.send_signal(signal.SIGINT)
    server.process.wait(timeout=30)
    stderr = server.log.read_text()
    assert server.process.returncode == 0, stderr
    assert "RAG Explorer API on http://127.0.0.1:" in stderr
    assert stderr.rstrip().endswith("stopped")
    assert "Traceback" not in stderr
    request_lines = [line for line in stderr.splitlines() if "request_id=" in line]
    assert len(request_lines) >= len(server.statuses)  # one line per request (+ the startup probes)
    assert any('"POST /query" 200' in line for line in request_lines)
    assert any('"GET /nope" 404' in line for line in request_lines)
