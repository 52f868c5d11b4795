"""Schemathesis against the OpenAPI document that `rag-explorer serve` serves: every operation, every check.

Two servers, each a real `rag-explorer serve` subprocess on 127.0.0.1 over a small Chroma index (hashing
embedder): one open, one with API keys (the key goes in every generated request; without it, 403).

Schemathesis runs as `st run --checks all` would (its engine, through the Python API): the examples and
coverage phases (boundary values, wrong types, wrong content types, undeclared methods, missing bodies),
then Hypothesis-generated requests, positive and negative, for every operation. Every response goes
through all of schemathesis' checks: no 5xx, documented status codes, content types, headers and
response schemas, invalid data refused, valid data accepted, 405 with Allow for undeclared methods. The
stateful phase does not apply: the API has no resources, so no operation's output feeds another.

Bounded: ``MAX_EXAMPLES`` generated cases per operation on top of the coverage cases, no deadline, a
fixed seed (``RAG_EXPLORER_FUZZ_SEED`` to vary it), a 30 s timeout per request; both servers together take
about 30 s. (A schemathesis ``max-time`` would not bound it: with one, the engine fuzzes until it runs out.)
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from local_cli.main import cli
from shared.models import ErrorResponse
from tests.integration.test_api_keys import serve_logged

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.engine import Status, events  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_EXAMPLES = 50
SEED = int(os.environ.get("RAG_EXPLORER_FUZZ_SEED", "20261124"))
API_KEY = "fuzz-key-0123456789abcdef"
DOCS = {
    "keys.md": "# API keys\n\n## Rotating keys\n\nTo rotate your API key, open the console and choose "
    "Regenerate key. The old key stops working one hour later.\n",
    "billing.md": "---\ntags: [billing]\n---\n# Billing\n\nInvoices are emailed to the account owner on "
    "the first day of every month. Refunds take five business days.\n",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("fuzz")
    docs = base / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    env = {"RAG_EXPLORER_HOME": str(base / "home"), "RAG_EXPLORER_EMBEDDER": "hash:256"}
    result = CliRunner().invoke(cli, ["ingest", str(docs)], env=env)
    assert result.exit_code == 0, result.output
    return env


@pytest.fixture(scope="module")
def open_url(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("open") / "serve.log"
    with serve_logged(env, log) as (url, _):
        yield url
    assert_clean_log(log)


@pytest.fixture(scope="module")
def keyed_url(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("keyed") / "serve.log"
    # a rate limit well above what the fuzzer sends: 429 has its own tests (test_api_keys.py)
    keyed = {**env, "RAG_EXPLORER_SERVE_API_KEYS": f"other-key-xyz,{API_KEY}"}
    with serve_logged(keyed, log, "--rate-limit", "10000/10000") as (url, _):
        yield url
    assert_clean_log(log)


def assert_clean_log(log: Path) -> None:
    """No traceback, no error, no 5xx, a request id on every line and the key nowhere."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    assert lines and lines[-1] == "stopped", lines[-3:]
    requests = lines[1:-1]
    assert requests
    assert not [line for line in requests if "request_id=" not in line]
    assert not [line for line in requests if "Traceback" in line or line.startswith(("ERROR", "CRITICAL"))]
    assert not [line for line in requests if re.search(r'" 5\d\d ', line)]
    assert API_KEY not in log.read_text(encoding="utf-8", errors="replace")


def fuzz(url: str, headers: dict[str, str] | None = None) -> None:
    """Run schemathesis' engine against ``url``; fail with every finding (and how to reproduce it)."""
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": headers or {},
            "checks": {"enabled": True},  # --checks all
            "generation": {"max-examples": MAX_EXAMPLES, "mode": "all", "database": "none"},
            "request-timeout": 30,
        }
    )
    schema = schemathesis.openapi.from_url(url + "/openapi.json", config=config, headers=headers or {})
    findings: list[str] = []
    requests = 0
    operations: set[str] = set()
    stop_reason = None
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            requests += len(event.recorder.interactions)
            if event.label:
                operations.add(event.label)
            for nodes in event.recorder.checks.values():
                for node in nodes:
                    if node.status == Status.FAILURE and node.failure_info is not None:
                        failure = node.failure_info.failure
                        findings.append(
                            f"{event.label}: {node.name}: {failure.title}: {failure.message}\n"
                            f"    {node.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError):
            findings.append(f"{event.label}: error: {event.value!r}")
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished):
            stop_reason = event.stop_reason
            findings.extend(f"after run: {f.title}: {f.message}" for f in event.failures)
    assert not findings, f"{len(findings)} findings (seed {SEED}):\n" + "\n".join(sorted(set(findings)))
    assert stop_reason is not None and stop_reason.value == "completed", stop_reason
    assert {"POST /query", "POST /search", "GET /health", "GET /health/detailed"} <= operations, operations
    assert requests >= 100, requests  # it really ran


def test_open_api_conforms_to_its_openapi_document(open_url: str) -> None:
    fuzz(open_url)


def test_keyed_api_conforms_to_its_openapi_document(keyed_url: str) -> None:
    fuzz(keyed_url, {"x-api-key": API_KEY})


def _request(url: str, method: str, headers: dict[str, str], body: bytes | None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_every_documented_operation_is_403_without_the_key(keyed_url: str, open_url: str) -> None:
    spec = json.loads(urllib.request.urlopen(open_url + "/openapi.json", timeout=30).read())
    operations = [(m.upper(), p) for p, item in spec["paths"].items() for m in item]
    assert len(operations) >= 4
    for method, path in [*operations, ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/nope")]:
        body = b'{"question": "How do I rotate my API key?", "query": "keys"}' if method == "POST" else None
        # (whitespace around a header value is not part of the value, RFC 9110 5.5: h11 strips it)
        for headers in ({}, {"x-api-key": "wrong"}, {"x-api-key": API_KEY + "x"}, {"X-Api-Key": ""}):
            status, payload = _request(
                keyed_url + path, method, {**headers, "Content-Type": "application/json"}, body
            )
            if (method, path) == ("GET", "/health"):
                assert status == 200, payload
                continue
            assert status == 403, (method, path, headers, payload)
            error = ErrorResponse.model_validate(payload)
            assert (error.error, error.message, error.details) == ("forbidden", "Forbidden", [])
            assert error.request_id and error.timestamp.endswith("Z")
    status, _ = _request(keyed_url + "/health/detailed", "GET", {"x-api-key": API_KEY}, None)
    assert status == 200


def test_the_documents_match_the_running_service(open_url: str) -> None:
    spec = json.loads(urllib.request.urlopen(open_url + "/openapi.json", timeout=30).read())
    question = spec["components"]["schemas"]["QueryRequest"]["properties"]["question"]
    assert question["maxLength"] == 2000 and question["pattern"] == r"\S"  # the default max_question_chars
    assert spec["components"]["securitySchemes"]["api_key"]["name"] == "x-api-key"
    query = spec["paths"]["/query"]["post"]
    assert {"403", "429"} <= set(query["responses"]) and {"api_key": []} in query["security"]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_docs_page_stays_html(open_url: str) -> None:
    # /docs (Swagger UI) and /openapi.json are not operations of the document, so the fuzzer skips them
    with urllib.request.urlopen(open_url + "/docs", timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("text/html")
        assert resp.headers["x-request-id"]


# --------------------------------------------------------------------------- the findings, pinned

FINDINGS = [
    # (what schemathesis found, method, path, content type, raw body, expected status, error code)
    (
        "body not UTF-8: was 500",
        "POST",
        "/query",
        "application/json",
        b"\xd4\x9f\x8c\xa0y",
        400,
        "malformed_json",
    ),
    (
        "multipart without boundary: was 500",
        "POST",
        "/search",
        "multipart/form-data",
        b'{"query": "x"}',
        415,
        "unsupported_media_type",
    ),
    ("TRACE: was 501", "TRACE", "/health", None, None, 405, "method_not_allowed"),
    (
        "false as a number: was accepted",
        "POST",
        "/query",
        "application/json",
        b'{"question": "keys?", "confidence_threshold": false}',
        422,
        "validation_error",
    ),
    (
        '"0.5" as a number: was accepted',
        "POST",
        "/query",
        "application/json",
        b'{"question": "keys?", "confidence_threshold": "0.5"}',
        422,
        "validation_error",
    ),
    (
        '"3" as an integer: was accepted',
        "POST",
        "/search",
        "application/json",
        b'{"query": "keys", "k": "3"}',
        422,
        "validation_error",
    ),
    (
        "true as an integer: was accepted",
        "POST",
        "/search",
        "application/json",
        b'{"query": "keys", "k": true}',
        422,
        "validation_error",
    ),
    (
        "NaN is not JSON: was accepted",
        "POST",
        "/query",
        "application/json",
        b'{"question": "keys?", "confidence_threshold": NaN}',
        400,
        "malformed_json",
    ),
    (
        "1.0 is a JSON Schema integer: was 422",
        "POST",
        "/search",
        "application/json",
        b'{"query": "keys", "k": 1.0}',
        200,
        None,
    ),
    (
        "blank text: refused, now documented by a pattern",
        "POST",
        "/search",
        "application/json",
        b'{"query": " \\t "}',
        422,
        "validation_error",
    ),
    (
        "the configured length limit is the documented maxLength: was 422 for schema-valid text",
        "POST",
        "/query",
        "application/json",
        json.dumps({"question": "x" * 2000}).encode(),
        200,
        None,
    ),
    (
        "one over it",
        "POST",
        "/query",
        "application/json",
        json.dumps({"question": "x" * 2001}).encode(),
        422,
        "validation_error",
    ),
]


@pytest.mark.parametrize(("finding", "method", "path", "ctype", "body", "status", "code"), FINDINGS)
def test_finding_stays_fixed(
    open_url: str,
    finding: str,
    method: str,
    path: str,
    ctype: str | None,
    body: bytes | None,
    status: int,
    code: str | None,
) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    req = urllib.request.Request(open_url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            got, payload, rid = resp.status, json.loads(resp.read()), resp.headers["x-request-id"]
    except urllib.error.HTTPError as exc:
        got, payload, rid = exc.code, json.loads(exc.read()), exc.headers["x-request-id"]
    assert got == status, (finding, payload)
    if code is not None:
        error = ErrorResponse.model_validate(payload)
        assert error.error == code and error.request_id == rid, finding
