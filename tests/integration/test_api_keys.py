"""`rag-explorer serve` with API keys, over real HTTP: 403 without a key, 429 over the rate limit, request
ids in every response and every log line, key files that others can read refused, keys never logged."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from local_cli.main import cli
from shared.models import ErrorResponse
from tests.servers import serve

pytestmark = pytest.mark.integration

KEY = "test-key-Aa0123456789"
OTHER_KEY = "second-key-Zz9876543210"
GUIDE = "# Keys\n\nTo rotate your API key, open the console and choose Regenerate key.\n"


def serve_logged(env: dict[str, str], log: Path, *args: str) -> AbstractContextManager[tuple[str, Any]]:
    """`rag-explorer serve` with its output in ``log``."""
    return serve(env, *args, log_path=log)


def make_index(base: Path) -> dict[str, str]:
    docs = base / "docs"
    docs.mkdir()
    (docs / "keys.md").write_text(GUIDE, encoding="utf-8")
    env = {"RAG_EXPLORER_HOME": str(base / "home"), "RAG_EXPLORER_EMBEDDER": "hash:256"}
    result = CliRunner().invoke(cli, ["ingest", str(docs)], env=env)
    assert result.exit_code == 0, result.output
    return env


def call(
    url: str, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", **(headers or {})} if data is not None else headers or {}
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        got = {k.lower(): v for k, v in resp.getheaders()}
        is_json = raw and got.get("content-type", "").startswith("application/json")
        payload = json.loads(raw) if is_json else raw
        return resp.status, got, payload
    finally:
        conn.close()


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("keys")
    return base, make_index(base)


@pytest.fixture(scope="module")
def key_file(index: tuple[Path, dict[str, str]]) -> Path:
    path = index[0] / "api-keys.txt"
    path.write_text(f"# local keys\n\n{KEY}\n  {OTHER_KEY}  \n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def keyed(index: tuple[Path, dict[str, str]], key_file: Path) -> Iterator[tuple[str, Path]]:
    base, env = index
    log = base / "keyed.log"
    with serve_logged(env, log, "--api-key-file", str(key_file), "--rate-limit", "2/3") as (url, _):
        yield url, log


def test_startup_line_names_keys_and_limit(keyed: tuple[str, Path]) -> None:
    _, log = keyed
    first = log.read_text().splitlines()[0]
    assert "2 API keys: x-api-key required except GET /health" in first
    assert "rate limit 2/s burst 3 per key" in first


def test_health_is_open_and_everything_else_needs_the_key(keyed: tuple[str, Path]) -> None:
    url, _ = keyed
    status, headers, _ = call(url, "GET", "/health")
    assert status == 200 and headers["x-request-id"]
    for method, path, body_ in [
        ("POST", "/query", {"question": "How do I rotate my API key?"}),
        ("POST", "/search", {"query": "rotate"}),
        ("GET", "/health/detailed", None),
        ("GET", "/openapi.json", None),
        ("GET", "/nope", None),
        ("HEAD", "/health", None),
    ]:
        for headers_ in ({}, {"x-api-key": "wrong"}, {"x-api-key": KEY[:-1]}, {"x-api-key": ""}):
            status, got, payload = call(url, method, path, headers_, body_)
            assert status == 403, (method, path, headers_)
            assert got["x-request-id"]
            if method != "HEAD":
                err = ErrorResponse.model_validate(payload)
                assert (err.error, err.message, err.details) == ("forbidden", "Forbidden", [])
                assert err.request_id == got["x-request-id"]


def test_the_right_key_goes_through_whatever_the_header_case(keyed: tuple[str, Path]) -> None:
    url, _ = keyed
    time.sleep(1.5)  # refill the buckets
    status, got, body = call(
        url, "POST", "/query", {"X-API-Key": KEY}, {"question": "How do I rotate my key?"}
    )
    assert status == 200 and body["decision"] in ("answer", "refuse") and got["x-request-id"]
    status, _, body = call(url, "GET", "/health/detailed", {"x-api-key": OTHER_KEY})
    assert status == 200 and body["store"]["documents"] == 1


def test_rate_limit_is_per_key_with_retry_after(keyed: tuple[str, Path]) -> None:
    url, _ = keyed
    time.sleep(1.6)  # full buckets (burst 3)
    statuses = [call(url, "POST", "/search", {"x-api-key": KEY}, {"query": "rotate"})[0] for _ in range(3)]
    assert statuses == [200, 200, 200]
    status, got, body = call(url, "POST", "/search", {"x-api-key": KEY}, {"query": "rotate"})
    assert status == 429
    assert int(got["retry-after"]) >= 1
    err = ErrorResponse.model_validate(body)
    assert err.error == "too_many_requests" and err.request_id == got["x-request-id"]
    assert "retry after" in err.message
    # the other key has its own bucket; /health has none
    assert call(url, "POST", "/search", {"x-api-key": OTHER_KEY}, {"query": "rotate"})[0] == 200
    assert all(call(url, "GET", "/health")[0] == 200 for _ in range(10))
    time.sleep(1.1)
    assert call(url, "POST", "/search", {"x-api-key": KEY}, {"query": "rotate"})[0] == 200


def test_gateway_errors_carry_the_request_id(keyed: tuple[str, Path]) -> None:
    url, _ = keyed
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
        raw = b""
        while not raw.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    rid = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"x-request-id")
    )
    assert json.loads(payload)["request_id"] == rid.decode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):  # the server closes the connection after a bad request
            raw += chunk
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0]
    assert json.loads(payload)["request_id"]
    status, got, body = call(url, "TRACE", "/health", {"x-api-key": KEY})
    assert status in (405, 429) and body["request_id"] == got["x-request-id"]


def test_zz_every_log_line_has_a_request_id_and_no_key(keyed: tuple[str, Path]) -> None:
    _, log = keyed
    lines = log.read_text().splitlines()
    requests = [line for line in lines[1:] if line != "stopped"]
    assert len(requests) > 20
    assert all("request_id=" in line for line in requests), [ln for ln in requests if "request_id=" not in ln]
    text = log.read_text()
    assert KEY not in text and OTHER_KEY not in text and KEY[:-1] not in text
    assert '"POST /search" 429' in text and "api_key=#1" in text


# --------------------------------------------------------------------------- key sources and key files


def run_serve(env: dict[str, str], *args: str) -> tuple[int, str]:
    """`serve` that must fail before listening: its exit code and output."""
    result = CliRunner().invoke(cli, ["serve", "--port", "0", *args], env=env)
    return result.exit_code, result.output


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(f"{KEY}\n", encoding="utf-8")
    path.chmod(0o644)
    code, output = run_serve({"RAG_EXPLORER_EMBEDDER": "hash:256"}, "--api-key-file", str(path))
    assert code == 1
    assert f"chmod 600 {path}" in output and KEY not in output
    path.chmod(0o640)
    code, output = run_serve({"RAG_EXPLORER_EMBEDDER": "hash:256", "RAG_EXPLORER_API_KEY_FILE": str(path)})
    assert code == 1 and "chmod 600" in output


def test_bad_key_files_and_rate_limits(tmp_path: Path) -> None:
    env = {"RAG_EXPLORER_EMBEDDER": "hash:256"}
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n", encoding="utf-8")
    empty.chmod(0o600)
    code, output = run_serve(env, "--api-key-file", str(empty))
    assert code == 1 and "holds no key" in output
    code, output = run_serve(env, "--api-key-file", str(tmp_path / "missing.txt"))
    assert code == 1 and "does not exist" in output
    code, output = run_serve({**env, "RAG_EXPLORER_SERVE_API_KEYS": KEY}, "--rate-limit", "fast")
    assert code == 1 and "RATE or RATE/BURST" in output


def test_keys_from_the_environment(tmp_path: Path) -> None:
    env = make_index(tmp_path)
    log = tmp_path / "env.log"
    with serve_logged({**env, "RAG_EXPLORER_SERVE_API_KEYS": f" {KEY} ,, "}, log) as (url, _):
        assert call(url, "POST", "/search", {}, {"query": "rotate"})[0] == 403
        assert call(url, "POST", "/search", {"x-api-key": KEY}, {"query": "rotate"})[0] == 200
    assert "1 API key: x-api-key required" in log.read_text() and KEY not in log.read_text()


def test_without_keys_the_api_is_open(tmp_path: Path) -> None:
    env = make_index(tmp_path)
    log = tmp_path / "open.log"
    with serve_logged(env, log, "--rate-limit", "1/1") as (url, _):
        statuses = [call(url, "POST", "/search", {}, {"query": "rotate"})[0] for _ in range(5)]
        status, got, _ = call(url, "GET", "/health/detailed")
        assert status == 200 and got["x-request-id"]
    assert statuses == [200] * 5  # no keys: no rate limit either
    assert "API open: no API keys configured" in log.read_text()
