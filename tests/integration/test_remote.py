"""Remote mode, the SDK and `eval` over real HTTP: against `rag-explorer serve`, and against a scripted
stub server for the statuses serve does not produce on its own (403, 429)."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner, Result

from local_cli.main import cli
from shared.adapters.client import RemoteClient, RemoteError
from shared.models import AskResponse, SearchResponse
from tests.servers import serve

GUIDE = """# Account guide

## Rotating API keys

To rotate your API key, open the console and choose Regenerate key. The old key stops working one hour later.

## Invoices

Invoices are emailed to the account owner on the first day of every month.
"""


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("remote")
    (base / "docs").mkdir()
    (base / "docs" / "guide.md").write_text(GUIDE, encoding="utf-8")
    env = {"RAG_EXPLORER_HOME": str(base / "home"), "RAG_EXPLORER_EMBEDDER": "hash:256"}
    assert run(env, "ingest", str(base / "docs")).exit_code == 0
    with serve(env) as (url, _):
        yield url


@pytest.fixture
def remote_env(api: str, tmp_path: Path) -> dict[str, str]:
    # an empty local home: every answer must come from the API
    return {
        "RAG_EXPLORER_HOME": str(tmp_path / "empty"),
        "RAG_EXPLORER_ENDPOINT": api,
        "RAG_EXPLORER_EMBEDDER": "hash:256",
    }


# --------------------------------------------------------------------------- SDK against serve


def test_client_query_search_health(api: str) -> None:
    client = RemoteClient(api)
    answer = client.query("How do I rotate my API key?")
    assert isinstance(answer, AskResponse) and answer.decision == "answer"
    assert answer.citations[0].source.endswith("guide.md")
    hits = client.search("invoices", k=1)
    assert isinstance(hits, SearchResponse) and len(hits.hits) == 1
    health = client.health()
    assert health["status"] == "ok" and health["store"]["documents"] == 1


def test_client_feedback_on_an_answer(api: str) -> None:
    client = RemoteClient(api)
    answer = client.query("How do I rotate my API key?")
    assert answer.interaction_id
    rated = client.feedback(answer.interaction_id, helpful=False, comment="Which console?")
    assert rated.helpful is False and rated.comment_saved and rated.handoff is None
    with pytest.raises(RemoteError) as info:
        RemoteClient(api, max_retries=0).feedback("f" * 32, helpful=True)
    assert info.value.status == 404
    with pytest.raises(RemoteError, match="invalid request: comment"):  # checked before sending
        client.feedback(answer.interaction_id, comment="x" * 2001)


def test_client_4xx_carries_the_error_model(api: str) -> None:
    with pytest.raises(RemoteError) as info:
        RemoteClient(api, max_retries=0).query("why? " * 600)  # over the server's max_question_chars
    err = info.value
    assert err.status == 422 and err.error is not None and err.request_id
    assert any(d.loc[-1] == "question" for d in err.error.details) and "question:" in str(err)
    with pytest.raises(RemoteError, match="invalid request: k:"):
        RemoteClient(api).search("x", k=1000)  # checked before sending
    # over the API's hard ceiling: both calls fail before sending, with the same clean error
    for call in (RemoteClient(api).query, RemoteClient(api).search):
        with pytest.raises(
            RemoteError, match=r"invalid request: (question|query): String should have at most"
        ):
            call("x" * 10_001)


def test_unreachable_endpoint() -> None:
    client = RemoteClient("http://127.0.0.1:9", max_retries=1, sleep=lambda _s: None, timeout=2)
    with pytest.raises(RemoteError, match="cannot reach"):
        client.health()
    with pytest.raises(RemoteError, match="http"):
        RemoteClient("ftp://example")


# --------------------------------------------------------------------------- SDK against a scripted stub


class Stub(BaseHTTPRequestHandler):
    script: ClassVar[list[tuple[int, dict[str, str], bytes]]] = []
    seen: ClassVar[list[str | None]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Stub.seen.append(self.headers.get("x-api-key"))
        status, headers, body = Stub.script.pop(0)
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", **headers}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[str]:
    Stub.script, Stub.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def error_body(code: str, message: str) -> bytes:
    return json.dumps(
        {
            "error": code,
            "message": message,
            "details": [],
            "request_id": "req-1",
            "timestamp": "2026-01-01T00:00:00Z",
        }
    ).encode()


ANSWER = (
    AskResponse(question="q", decision="refuse", confidence=0.1, reasons=["r"]).model_dump_json().encode()
)


def test_429_is_retried_after_retry_after_then_succeeds(stub: str) -> None:
    Stub.script = [(429, {"Retry-After": "2"}, error_body("rate_limited", "slow down")), (200, {}, ANSWER)]
    sleeps: list[float] = []
    answer = RemoteClient(stub, api_key="k1", sleep=sleeps.append).query("q")
    assert answer.decision == "refuse" and sleeps == [2.0]
    assert Stub.seen == ["k1", "k1"]


def test_5xx_exhausts_retries_with_backoff(stub: str) -> None:
    Stub.script = [(503, {}, error_body("store_unavailable", "down"))] * 3
    sleeps: list[float] = []
    with pytest.raises(RemoteError, match=r"down \(HTTP 503, request id req-1\)"):
        RemoteClient(stub, max_retries=2, backoff_s=1.0, sleep=sleeps.append).query("q")
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 2.0


def test_403_is_not_retried(stub: str) -> None:
    Stub.script = [(403, {}, error_body("forbidden", "Forbidden: missing or invalid API key"))]
    with pytest.raises(RemoteError) as info:
        RemoteClient(stub, sleep=lambda _s: pytest.fail("must not retry")).query("q")
    assert info.value.status == 403 and info.value.request_id == "req-1"


# --------------------------------------------------------------------------- CLI remote mode


def test_cli_remote_ask_search_status(remote_env: dict[str, str]) -> None:
    r = run(remote_env, "ask", "How do I rotate my API key?", "--json")
    assert r.exit_code == 0, r.output
    assert AskResponse.model_validate_json(r.stdout).decision == "answer"
    r = run(remote_env, "search", "invoices", "-k", "1", "--json")
    assert SearchResponse.model_validate_json(r.stdout).hits[0].source.endswith("guide.md")
    r = run(remote_env, "status")
    assert r.exit_code == 0 and "1 document, 2 chunks" in r.output
    r = run(remote_env, "ingest", ".")
    assert r.exit_code == 1 and "rag-explorer push" in r.output
    for command in ("ask", "search"):  # over the API's ceiling: a clean user error, never a traceback
        r = CliRunner().invoke(cli, [command, "x" * 10_001], env=remote_env)
        assert r.exit_code == 1 and "invalid request" in r.output and r.exception is not None
        assert isinstance(r.exception, SystemExit), r.exception


def test_configure_endpoint_then_use_it(api: str, tmp_path: Path) -> None:
    env = {"RAG_EXPLORER_HOME": str(tmp_path / "home"), "RAG_EXPLORER_EMBEDDER": "hash:256"}
    r = run(env, "configure", "--endpoint", api, "--remote-api-key", "secret")
    assert r.exit_code == 0 and "api_key=***" in r.output and "secret" not in r.output
    settings_file = tmp_path / "home" / "settings.json"
    assert stat.S_IMODE(settings_file.stat().st_mode) == 0o600
    assert json.loads(settings_file.read_text())["endpoint"] == api
    r = run(env, "ask", "How do I rotate my API key?", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["decision"] == "answer"
    assert run(env, "configure", "--set", "chunk_tokens=5").exit_code == 1
    assert run(env, "configure", "--set", "nonsense=1").exit_code == 2


# --------------------------------------------------------------------------- eval


def qa_file(tmp_path: Path) -> Path:
    rows = [
        {"id": "a1", "question": "How do I rotate my API key?", "expected_sources": ["docs/guide.md"]},
        {"id": "a2", "question": "When are invoices emailed?", "expected_sources": ["docs/guide.md"]},
        {
            "id": "o1",
            "question": "What is the boiling point of ethanol?",
            "expected_sources": None,
            "negative": "unrelated",
        },
    ]
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_against_the_api_with_gates(api: str, tmp_path: Path) -> None:
    env = {"RAG_EXPLORER_HOME": str(tmp_path / "h"), "RAG_EXPLORER_EMBEDDER": "hash:256"}
    out = tmp_path / "results.jsonl"
    r = run(env, "eval", str(qa_file(tmp_path)), "--target", api, "--output", str(out), "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["questions"] == 3 and summary["hit@5"] == 1.0 and summary["ndcg@10"] == 1.0
    assert summary["refusal_recall"] == 1.0 and summary["latency_p95_ms"] > 0
    # answers are judged by their first citation, and their confidence against how often they were right
    assert summary["refused_unrelated"] == 1.0 and summary["refused_same_domain"] is None
    answered = [json.loads(x) for x in out.read_text().splitlines() if json.loads(x)["decision"] == "answer"]
    assert answered and all(x["correct"] == x["cited_sources"][0].endswith("docs/guide.md") for x in answered)
    assert summary["citation_accuracy"] == 1.0 and summary["mrr@10"] == 1.0
    assert sum(b["count"] for b in summary["reliability"]) == len(answered) and summary["ece"] is not None
    human = run(env, "eval", str(qa_file(tmp_path)), "--target", api)
    assert "refused_unrelated" in human.output and "reliability (answers)" in human.output
    assert len(out.read_text().splitlines()) == 3
    again = run(env, "eval", str(qa_file(tmp_path)), "--target", api, "--output", str(out), "--json")
    assert json.loads(again.stdout)["questions"] == 3 and len(out.read_text().splitlines()) == 3  # resumed
    gate = run(env, "eval", str(qa_file(tmp_path)), "--target", api, "--min-ndcg", "1.01")
    assert gate.exit_code == 2  # out of range is a usage error
    gate = run(
        env,
        "eval",
        str(qa_file(tmp_path)),
        "--target",
        api,
        "--min-refusal-precision",
        "1",
        "--min-ndcg",
        "0.99",
    )
    assert gate.exit_code == 0
    bad = run(env, "eval", str(qa_file(tmp_path)), "--target", "ftp://x")
    assert bad.exit_code == 2


def test_eval_local_beir_folder(tmp_path: Path) -> None:
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    docs = {
        "d1": "Rotating API keys from the console",
        "d2": "Invoices are emailed monthly",
        "d3": "Cache purge",
    }
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in docs.items())
    )
    (folder / "queries.jsonl").write_text(
        '{"_id": "1", "text": "invoice email"}\n{"_id": "2", "text": "purge cache"}\n'
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td2\t1\n2\td3\t1\n")
    env = {"RAG_EXPLORER_HOME": str(tmp_path / "h"), "RAG_EXPLORER_EMBEDDER": "hash:256"}
    r = run(env, "eval", str(folder), "--json", "--min-ndcg", "0.9")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["ndcg@10"] == 1.0 and summary["answer_rate"] is None
    r = run(env, "eval", str(folder), "--min-hit-rate", "1.0")
    assert r.exit_code == 0 and "ndcg@10" in r.output
