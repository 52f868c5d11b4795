"""`rag-explorer serve` with a site (publishable key) beside secret keys, over real HTTP: CORS on answers
and on the gateway's own errors, preflights without a key, the publishable key's routes, collection and
per-address limit, feedback stored in ``<home>/interactions.sqlite3``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.interactions_sqlite import SqliteInteractionStore
from tests.integration.test_api_keys import call, make_index
from tests.servers import serve

pytestmark = pytest.mark.integration

SECRET = "sk-test-Aa0123456789"
PK = "pk_test_help_000001"
ORIGIN = "https://help.example.com"


@pytest.fixture(scope="module")
def site_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    base = tmp_path_factory.mktemp("sites")
    env = make_index(base)
    env["RAG_EXPLORER_SITES"] = json.dumps([{"name": "help", "origins": [ORIGIN], "key": PK}])
    env["RAG_EXPLORER_COLLECTIONS"] = json.dumps({"default": {"handoff": "mailto:support@example.com"}})
    env["RAG_EXPLORER_SERVE_API_KEYS"] = SECRET
    with serve(env, "--address-rate-limit", "2/4", "--workers", "1") as (url, _):
        yield url, Path(env["RAG_EXPLORER_HOME"])


def ask(
    url: str, headers: dict[str, str], question: str = "How do I rotate my API key?"
) -> tuple[int, dict[str, str], dict]:  # type: ignore[type-arg]
    return call(url, "POST", "/query", {"x-api-key": PK, **headers}, {"question": question})


def test_publishable_key_from_its_origin_gets_cors_and_feedback_is_stored(
    site_server: tuple[str, Path],
) -> None:
    url, home = site_server
    status, headers, body = ask(url, {"Origin": ORIGIN, "X-Forwarded-For": "ignored"})
    assert status == 200, body
    assert headers["access-control-allow-origin"] == ORIGIN and headers["vary"] == "Origin"
    assert body["decision"] == "answer" and body["handoff"]["kind"] == "mailto"
    status, headers, fb = call(
        url,
        "POST",
        "/feedback",
        {"x-api-key": PK, "Origin": ORIGIN},
        {"interaction_id": body["interaction_id"], "helpful": True},
    )
    assert status == 200 and fb["helpful"] is True
    assert headers["access-control-allow-origin"] == ORIGIN
    stored = SqliteInteractionStore(home / "interactions.sqlite3").get(body["interaction_id"])
    assert stored is not None and stored.helpful is True and stored.site == "help"


def test_preflight_needs_no_key_and_answers_listed_origins_only(site_server: tuple[str, Path]) -> None:
    url, _ = site_server
    request = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key",
    }
    status, headers, _ = call(url, "OPTIONS", "/query", {"Origin": ORIGIN, **request})
    assert status == 204 and headers["access-control-allow-origin"] == ORIGIN
    status, headers, body = call(url, "OPTIONS", "/feedback", {"Origin": "https://evil.example", **request})
    assert status == 403 and body["error"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in headers


def test_publishable_key_limits(site_server: tuple[str, Path]) -> None:
    url, _ = site_server
    status, headers, body = ask(url, {"Origin": "https://evil.example"})
    assert status == 403 and body["error"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in headers
    status, _, body = call(url, "POST", "/search", {"x-api-key": PK}, {"query": "rotate"})
    assert status == 403 and body["error"] == "forbidden"
    status, _, body = call(url, "POST", "/search", {"x-api-key": SECRET}, {"query": "rotate"})
    assert status == 200 and body["hits"]
    status, _, _ = call(url, "POST", "/query", {"x-api-key": "pk_test_unknown_0001"}, {"question": "x"})
    assert status == 403
    statuses = []
    for _ in range(8):  # 2/s burst 4 from this address: the budget runs out well within 8 calls
        status, headers, body = ask(url, {"Origin": ORIGIN})
        statuses.append(status)
        if status == 429:
            break
    assert statuses[-1] == 429, statuses
    assert int(headers["retry-after"]) >= 1 and "from your address" in body["message"]
    assert headers["access-control-allow-origin"] == ORIGIN  # the widget can read why
    assert "Retry-After" in headers["access-control-expose-headers"]  # ... and how long to wait
