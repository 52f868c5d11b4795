"""`rag-explorer serve` under load and abuse, over real HTTP: worker processes, a bounded queue, checks
made from the headers before a body byte is read, and no process left behind.

The workers are made busy honestly: answers come from an OpenAI-compatible LLM (a local fake server,
``tests.fakes.openai_server``) whose chat endpoint holds every call until the test opens its gate. The
fake server counts the calls it received, which is how many queries a worker really computed.
Nothing here asserts on wall-clock time: counts, statuses and bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from local_cli.main import cli
from shared.models import ErrorResponse
from tests.fakes.openai_server import FakeOpenAIServer
from tests.servers import ROOT, free_port, serve

pytestmark = pytest.mark.integration

KEY = "capacity-key-0123456789"
GUIDE = "# Keys\n\nTo rotate your API key, open the console and choose Regenerate key.\n"
QUESTION = "How do I rotate my API key?"
TEN_MIB = 10 * 1024 * 1024
UPLOAD = "POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


class GatedOpenAIServer(FakeOpenAIServer):
    """Chat calls wait until the gate is open (at most a minute); every call is recorded on arrival."""

    def __init__(self) -> None:
        super().__init__(default_answer="Open the console and choose Regenerate key [1].")
        self.gate = threading.Event()
        self.gate.set()

    def _chat(self, request: Any, body: dict[str, Any]) -> None:
        self.gate.wait(60)
        super()._chat(request, body)

    @contextlib.contextmanager
    def closed(self) -> Iterator[None]:
        self.gate.clear()
        try:
            yield
        finally:
            self.gate.set()

    def computed(self) -> int:
        return len(self.chat_calls())


@pytest.fixture(scope="module")
def llm() -> Iterator[GatedOpenAIServer]:
    with GatedOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, llm: GatedOpenAIServer) -> dict[str, str]:
    base = tmp_path_factory.mktemp("capacity")
    docs = base / "docs"
    docs.mkdir()
    (docs / "keys.md").write_text(GUIDE, encoding="utf-8")
    env = {"RAG_EXPLORER_HOME": str(base / "home"), "RAG_EXPLORER_EMBEDDER": "hash:256"}
    result = CliRunner().invoke(cli, ["ingest", str(docs)], env=env)
    assert result.exit_code == 0, result.output
    return {
        **env,
        "RAG_EXPLORER_ANSWER_PROVIDERS": "openai:gpt-test,extractive",
        "RAG_EXPLORER_OPENAI_BASE_URL": llm.base_url,
        "RAG_EXPLORER_OPENAI_API_KEY": "sk-test",
        "RAG_EXPLORER_CONFIDENCE_THRESHOLD": "0",  # every question reaches the LLM
        "RAG_EXPLORER_LLM_MAX_ATTEMPTS": "1",
        "RAG_EXPLORER_LLM_TIMEOUT_S": "90",
        "RAG_EXPLORER_ANSWER_CACHE": "false",  # the same question, computed each time: capacity is measured
    }


# --------------------------------------------------------------------------- helpers


def wait_for(condition: Callable[[], bool], what: str, limit_s: float = 60) -> None:
    """Poll ``condition`` (a bound on how long to wait for a state, not a timing assertion)."""
    end = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def call(url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    """(status, headers with lower-case names, parsed JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url + path, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=90) as resp:
            status, raw, got = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        status, raw, got = exc.code, exc.read(), exc.headers
    return status, {k.lower(): v for k, v in got.items()}, json.loads(raw) if raw else None


def query_bytes(text: str = QUESTION, headers: str = "") -> bytes:
    body = json.dumps({"question": text}).encode()
    return (
        f"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        if not chunk:
            break
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def raw_exchange(url: str, data: bytes) -> tuple[int, dict[str, str], Any]:
    with socket.create_connection(address(url), timeout=30) as sock:
        sock.sendall(data)
        status, headers, body = read_response(sock)
    return status, headers, json.loads(body) if body else None


def error_of(status: int, headers: dict[str, str], body: Any, expected: int, code: str) -> ErrorResponse:
    assert status == expected, body
    err = ErrorResponse.model_validate(body)
    assert err.error == code and err.request_id == headers["x-request-id"], (err, headers)
    return err


class Pending:
    """A request sent from a thread; ``result`` is (status, headers, body) once answered."""

    def __init__(self, url: str, path: str = "/query", body: Any = None) -> None:
        self.result: Any = None
        payload = body if body is not None else {"question": QUESTION}
        self.thread = threading.Thread(target=self._run, args=(url, path, payload), daemon=True)
        self.thread.start()

    def _run(self, url: str, path: str, body: Any) -> None:
        self.result = call(url, "POST", path, body)

    def join(self) -> Any:
        self.thread.join(120)
        assert not self.thread.is_alive()
        return self.result


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --------------------------------------------------------------------------- health and the queue


def test_health_answers_while_every_worker_is_busy(
    env: dict[str, str], llm: GatedOpenAIServer, tmp_path: Path
) -> None:
    with (
        llm.closed(),
        serve(env, "--workers", "1", "--max-pending", "8", log_path=tmp_path / "log") as (
            url,
            _,
        ),
    ):
        before = llm.computed()
        pending = [Pending(url) for _ in range(3)]
        wait_for(lambda: llm.computed() == before + 1, "the worker is inside an LLM call")
        for _ in range(5):
            status, headers, body = call(url, "GET", "/health")
            assert status == 200 and body["status"] == "ok" and headers["x-request-id"]
        assert llm.computed() == before + 1  # the one worker is still held
        assert all(p.result is None for p in pending)  # and no query has been answered
        llm.gate.set()
        assert [p.join()[0] for p in pending] == [200, 200, 200]
        assert llm.computed() == before + 3


def test_over_max_pending_is_503_at_once(env: dict[str, str], llm: GatedOpenAIServer, tmp_path: Path) -> None:
    with (
        llm.closed(),
        serve(env, "--workers", "1", "--max-pending", "1", log_path=tmp_path / "log") as (
            url,
            _,
        ),
    ):
        before = llm.computed()
        held = Pending(url)
        wait_for(lambda: llm.computed() == before + 1, "the worker is inside an LLM call")
        for path, body in (("/query", {"question": QUESTION}), ("/search", {"query": "rotate"})):
            status, headers, payload = call(url, "POST", path, body)
            err = error_of(status, headers, payload, 503, "service_unavailable")
            assert headers["retry-after"] == "1" and "retry" in err.message and err.timestamp
        assert call(url, "GET", "/health")[0] == 200
        llm.gate.set()
        assert held.join()[0] == 200
        assert call(url, "POST", "/search", {"query": "rotate"})[0] == 200  # room again
    assert llm.computed() == before + 1


def test_requests_abandoned_in_the_queue_are_not_computed(
    env: dict[str, str], llm: GatedOpenAIServer, tmp_path: Path
) -> None:
    k = 4
    log = tmp_path / "serve.log"
    with llm.closed(), serve(env, "--workers", "1", "--max-pending", str(k + 1), log_path=log) as (url, _):
        before = llm.computed()
        held = Pending(url)
        wait_for(lambda: llm.computed() == before + 1, "the worker is inside an LLM call")
        abandoned = []
        for n in range(k):
            sock = socket.create_connection(address(url), timeout=30)
            sock.sendall(query_bytes(f"{QUESTION} ({n})"))
            abandoned.append(sock)
        while True:  # the queue is full (k waiting) once a further request is refused at once
            probe = socket.create_connection(address(url), timeout=5)
            probe.sendall(query_bytes("probe"))
            try:
                status = read_response(probe)[0]
            except TimeoutError:  # admitted: it waits in the queue too, and is abandoned with the rest
                abandoned.append(probe)
                assert len(abandoned) < k + 5
                continue
            probe.close()
            assert status == 503
            break
        for sock in abandoned:
            sock.close()
        marker = "client gone while queued: not computed"
        wait_for(lambda: log.read_text().count(marker) == k, f"{k} log lines '{marker}'")
        llm.gate.set()
        assert held.join()[0] == 200
        assert call(url, "POST", "/query", {"question": QUESTION})[0] == 200  # the worker goes on
    assert llm.computed() == before + 2  # the held request and the last one: none of the k abandoned
    lines = [line for line in log.read_text().splitlines() if marker in line]
    assert all('"POST /query" 499' in line and "request_id=" in line for line in lines)


# --------------------------------------------------------------------------- checks before the body


@pytest.fixture(scope="module")
def keyed(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    log = tmp_path_factory.mktemp("keyed") / "serve.log"
    with serve({**env, "RAG_EXPLORER_SERVE_API_KEYS": KEY}, "--workers", "1", log_path=log) as (url, process):
        yield url, process.pid, log


def upload(url: str, head: bytes, total: int, chunked: bool = False) -> tuple[int, dict[str, str], Any, int]:
    """Send ``head`` then up to ``total`` body bytes, stopping as soon as the response arrives (or the
    server closes); returns the response and how many body bytes were sent."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)  # no racing ahead through big buffers
    sock.settimeout(30)
    sock.connect(address(url))
    piece = b"x" * 65536
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    sent = 0
    with sock:
        sock.sendall(head)
        with contextlib.suppress(OSError):
            while sent < total:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(frame)
                sent += len(piece)
        status, headers, body = read_response(sock)
    return status, headers, json.loads(body), sent


def test_a_keyless_10_mib_upload_is_refused_unread(keyed: tuple[str, int, Path]) -> None:
    url, pid, _ = keyed
    assert call(url, "POST", "/search", {"query": "rotate"}, {"x-api-key": KEY})[0] == 200  # warm
    rss_before = rss_kb(pid)
    for _ in range(20):
        declared = f"{UPLOAD}Content-Length: {TEN_MIB}\r\n\r\n"
        status, headers, body, sent = upload(url, declared.encode(), TEN_MIB)
        error_of(status, headers, body, 413, "payload_too_large")
        assert sent < TEN_MIB // 2, sent
        chunked = f"{UPLOAD}Transfer-Encoding: chunked\r\n\r\n"
        status, headers, body, sent = upload(url, chunked.encode(), TEN_MIB, chunked=True)
        error_of(status, headers, body, 403, "forbidden")
        assert sent < TEN_MIB // 2, sent
    assert rss_kb(pid) - rss_before < 8 * 1024  # 40 uploads of 10 MiB: a few MB at most


def test_a_chunked_body_is_read_only_up_to_the_limit(keyed: tuple[str, int, Path]) -> None:
    url, _, _ = keyed
    head = (
        f"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nx-api-key: {KEY}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    status, headers, body, sent = upload(url, head.encode(), TEN_MIB, chunked=True)
    err = error_of(status, headers, body, 413, "payload_too_large")
    assert "65536" in err.message and sent < TEN_MIB // 2
    assert headers["connection"] == "close"


def test_ambiguous_framing_is_400_and_multipart_is_415(keyed: tuple[str, int, Path]) -> None:
    url, _, log = keyed
    key = f"x-api-key: {KEY}\r\n"
    conflicting = (
        f"POST /query HTTP/1.1\r\nHost: x\r\n{key}Content-Type: application/json\r\n"
        "Content-Length: 20\r\nContent-Length: 21\r\n\r\n" + '{"question": "keys"}'
    ).encode()
    status, headers, body = raw_exchange(url, conflicting)
    err = error_of(status, headers, body, 400, "bad_request")
    assert "Content-Length" in err.message
    both = (
        f"POST /query HTTP/1.1\r\nHost: x\r\n{key}Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nContent-Length: 20\r\n\r\n" + '14\r\n{"question": "keys"}\r\n0\r\n\r\n'
    ).encode()
    status, headers, body = raw_exchange(url, both)
    err = error_of(status, headers, body, 400, "bad_request")
    assert "Transfer-Encoding" in err.message
    # multipart: refused from the headers; the body (never sent here) is not waited for
    multipart = (
        f"POST /search HTTP/1.1\r\nHost: x\r\n{key}Content-Type: multipart/form-data; boundary=b\r\n"
        "Content-Length: 60000\r\n\r\n"
    ).encode()
    status, headers, body = raw_exchange(url, multipart)
    error_of(status, headers, body, 415, "unsupported_media_type")
    assert headers["connection"] == "close"
    text = logged(log, "conflicting Content-Length headers", '"POST /search" 415')
    assert "conflicting Content-Length headers" in text and '"POST /search" 415' in text


def logged(log: Path, *needles: str) -> str:
    """The server's log once it holds every needle (it writes a request's line after the response),
    waiting a bounded number of short sleeps; the caller asserts on what it got."""
    text = log.read_text()
    for _ in range(200):
        if all(n in text for n in needles):
            break
        time.sleep(0.025)
        text = log.read_text()
    return text


# --------------------------------------------------------------------------- no process left behind


def start_serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], str, list[int]]:
    """`serve --workers 2`, its URL and its worker processes (its children)."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAG_EXPLORER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "local_cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env={**clean, "PYTHONUNBUFFERED": "1", **env},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, log.read_text()
        with contextlib.suppress(OSError):
            return call(url, "GET", "/health")[0] == 200
        return False

    wait_for(up, "serve answers /health")
    assert call(url, "POST", "/search", {"query": "rotate"})[0] == 200
    kids = children(process.pid)
    assert len(kids) >= 2, kids  # two workers (and multiprocessing's resource tracker)
    return process, url, kids


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_no_process_outlives_the_server(env: dict[str, str], tmp_path: Path, sig: signal.Signals) -> None:
    log = tmp_path / "serve.log"
    process, _, kids = start_serve(env, log)
    try:
        process.send_signal(sig)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if sig != signal.SIGKILL:  # a clean stop
        assert process.returncode == 0, log.read_text()
        assert log.read_text().rstrip().endswith("stopped")
        assert "Traceback" not in log.read_text()
    wait_for(lambda: not any(alive(pid) for pid in kids), f"the workers {kids} exit", limit_s=30)
