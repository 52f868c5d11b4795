"""API keys, the token bucket and the gateway of `rag-explorer serve` (local_cli/api_keys.py), and
the server's request-id logging: no sockets."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from local_cli.api_keys import (
    ApiKeyError,
    Gateway,
    KeyRing,
    RateLimiter,
    TokenBucket,
    parse_env_keys,
    parse_rate_limit,
    read_key_file,
)
from local_cli.server import RequestIdLogHandler, _current_request_id

KEY = "k-0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def key_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "keys.txt"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


# --------------------------------------------------------------------------- key sources


def test_key_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    path = key_file(tmp_path, f"# keys for the demo\n\n  {KEY}  \n#old-key\nsecond-key\n")
    assert read_key_file(path) == [KEY, "second-key"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660])
def test_key_file_accessible_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path, f"{KEY}\n", mode)
    with pytest.raises(ApiKeyError, match="chmod 600") as info:
        read_key_file(path)
    assert KEY not in str(info.value)


def test_key_file_errors_never_show_a_key(tmp_path: Path) -> None:
    with pytest.raises(ApiKeyError, match="does not exist"):
        read_key_file(tmp_path / "missing")
    with pytest.raises(ApiKeyError, match="holds no key"):
        read_key_file(key_file(tmp_path, "# only a comment\n\n"))
    with pytest.raises(ApiKeyError, match="line 2") as info:
        read_key_file(key_file(tmp_path, f"{KEY}\nsecret with spaces\n"))
    assert "secret" not in str(info.value)
    with pytest.raises(ApiKeyError, match="printable ASCII"):
        read_key_file(key_file(tmp_path, "clé-secrète\n"))
    with pytest.raises(ApiKeyError, match="longer than"):
        read_key_file(key_file(tmp_path, "x" * 300 + "\n"))


def test_env_keys() -> None:
    assert parse_env_keys(f" {KEY} ,, other ,") == [KEY, "other"]
    assert parse_env_keys("") == [] and parse_env_keys(None) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20", (20.0, 40)),
        ("20/40", (20.0, 40)),
        ("0.5", (0.5, 1)),
        ("2/1", (2.0, 1)),
        (" 5 / 7 ", (5.0, 7)),
        ("0", None),
        ("0/10", None),
        (None, (20.0, 40)),
    ],
)
def test_parse_rate_limit(text: str | None, expected: tuple[float, int] | None) -> None:
    assert parse_rate_limit(text) == expected


@pytest.mark.parametrize("text", ["fast", "-1", "nan", "inf", "10/0", "10/x", "10/2.5"])
def test_parse_rate_limit_refuses_nonsense(text: str) -> None:
    with pytest.raises(ApiKeyError):
        parse_rate_limit(text)


# --------------------------------------------------------------------------- matching and throttling


def test_key_ring_matches_exact_keys_only() -> None:
    ring = KeyRing([KEY, "second", KEY])
    assert len(ring) == 2
    assert ring.match(KEY) == "#1" and ring.match("second") == "#2"
    for wrong in (None, "", KEY[:-1], KEY + "x", KEY.upper(), " " + KEY, "sécond"):
        assert ring.match(wrong) is None
    with pytest.raises(ApiKeyError):
        KeyRing([])


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0  # one token came back after 1/rate s
    assert bucket.take(0.5) == pytest.approx(0.5)
    assert bucket.take(100.0) == 0.0 and bucket.tokens == pytest.approx(2.0)  # never above the burst


def test_rate_limiter_is_per_key() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 1, clock=clock)
    assert limiter.acquire("#1") == 0.0
    assert limiter.acquire("#1") > 0
    assert limiter.acquire("#2") == 0.0
    clock.now += 1.0
    assert limiter.acquire("#1") == 0.0


# --------------------------------------------------------------------------- the gateway


def test_open_gateway_lets_everything_through() -> None:
    gateway = Gateway.from_options(None, "", "1/1")
    assert gateway.open and gateway.limiter is None
    assert "API open" in gateway.describe()
    for _ in range(5):
        assert gateway.admit("POST", "/query", None).rejection is None


def test_keyed_gateway_403_and_429() -> None:
    clock = Clock()
    gateway = Gateway(KeyRing([KEY, "other"]), RateLimiter(1.0, 2, clock=clock))
    assert gateway.admit("GET", "/health", None).rejection is None  # the only open route
    for method, path in [
        ("POST", "/query"),
        ("GET", "/health/detailed"),
        ("GET", "/docs"),
        ("HEAD", "/health"),
    ]:
        rejection = gateway.admit(method, path, None).rejection
        assert rejection is not None and (rejection.status, rejection.error) == (403, "forbidden")
        assert rejection.message == "Forbidden"
    assert gateway.admit("POST", "/query", "nope").rejection is not None
    first = gateway.admit("POST", "/query", KEY)
    assert first.rejection is None and first.key == "#1"
    assert gateway.admit("POST", "/search", KEY).rejection is None
    limited = gateway.admit("POST", "/search", KEY)
    assert limited.rejection is not None and limited.rejection.status == 429
    assert limited.rejection.error == "too_many_requests" and limited.key == "#1"
    assert dict(limited.rejection.headers) == {"Retry-After": "1"}
    assert gateway.admit("POST", "/search", "other").rejection is None  # its own bucket
    assert gateway.admit("GET", "/health", None).rejection is None  # never throttled
    clock.now += 1.0
    assert gateway.admit("POST", "/search", KEY).rejection is None


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    clock = Clock()
    gateway = Gateway(KeyRing([KEY]), RateLimiter(0.25, 1, clock=clock))
    assert gateway.admit("POST", "/query", KEY).rejection is None
    rejection = gateway.admit("POST", "/query", KEY).rejection
    assert rejection is not None and dict(rejection.headers) == {"Retry-After": "4"}


def test_gateway_from_options_merges_file_and_env(tmp_path: Path) -> None:
    path = key_file(tmp_path, f"{KEY}\n")
    gateway = Gateway.from_options(path, "env-key", "5")
    assert not gateway.open and gateway.keys is not None and len(gateway.keys) == 2
    assert gateway.limiter is not None and (gateway.limiter.rate, gateway.limiter.burst) == (5.0, 10)
    described = gateway.describe()
    assert "2 API keys" in described and "5/s burst 10" in described and KEY not in described
    no_limit = Gateway.from_options(None, "env-key", "0")
    assert no_limit.limiter is None and "no rate limit" in no_limit.describe()
    assert no_limit.admit("POST", "/query", "env-key").rejection is None


# --------------------------------------------------------------------------- request ids in log lines


def test_log_records_name_the_request() -> None:
    lines: list[str] = []
    handler = RequestIdLogHandler(lines.append)
    log = logging.getLogger("test.request_ids")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.info("below the level: dropped")
        log.warning("outside any request")
        token = _current_request_id.set("rid-1")
        try:
            log.warning("store slow:\nretrying")
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                log.exception("failed")
        finally:
            _current_request_id.reset(token)
        log.error("explicit", extra={"request_id": "rid-2"})
    finally:
        log.removeHandler(handler)
    assert lines[0] == "WARNING test.request_ids: outside any request request_id=-"
    assert lines[1] == "WARNING test.request_ids: store slow: | retrying request_id=rid-1"
    assert lines[2].startswith("ERROR test.request_ids: failed request_id=rid-1")
    assert any("RuntimeError: boom" in line for line in lines[3:-1])
    assert all("request_id=" in line for line in lines)
    assert lines[-1] == "ERROR test.request_ids: explicit request_id=rid-2"


def test_resolver_results_and_powertools_logs_carry_the_request_id(
    capsys: pytest.CaptureFixture[str], lambda_context: Any
) -> None:
    from aws_lambda_powertools import Logger

    from shared.adapters.http_api import create_app
    from tests.unit.test_http_api import BrokenStore, event, make_service

    app = create_app(make_service(BrokenStore), logger=Logger(service="test"))
    result = app.resolve(event("query_event.json"), lambda_context)
    assert result["statusCode"] == 500
    rid = json.loads(result["body"])["request_id"]
    assert result["multiValueHeaders"]["x-request-id"] == [rid]
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [r["request_id"] for r in records if r["level"] == "ERROR"] == [rid]
    ok = app.resolve(event("health_event.json"), lambda_context)
    assert ok["statusCode"] == 200 and ok["multiValueHeaders"]["x-request-id"]
