"""``GET /health/detailed``: memory, uptime, index version and counts, the answer cache's configuration, and a
cached reachability check of each LLM provider (an injected probe here; real HTTP in
tests/integration/test_provider_health.py). ``GET /health`` stays trivial."""

from __future__ import annotations

from typing import Any

import pytest

from shared.adapters.health import HealthChecker, process_info
from shared.adapters.http_api import create_app
from shared.adapters.provider_health import ProviderProbe, endpoint_of
from shared.settings import Settings
from tests.unit.test_http_api import OkS3, call, event, make_service


class Probe:
    """Answers for each URL as scripted, and records the URLs asked."""

    def __init__(self, answers: dict[str, tuple[bool, str]] | None = None) -> None:
        self.answers = answers or {}
        self.urls: list[str] = []

    def __call__(self, url: str, timeout_s: float) -> tuple[bool, str]:
        self.urls.append(url)
        return self.answers.get(url, (True, "HTTP 401"))


def checker(service: Any, probe: Probe, clock: list[float] | None = None) -> HealthChecker:
    now = clock or [0.0]
    providers = ProviderProbe(service.settings, probe=probe, clock=lambda: now[0])
    return HealthChecker(service, bucket="docs", s3_client=OkS3(), providers=providers)


def detailed(service: Any, health: HealthChecker, lambda_context: Any) -> tuple[int, dict[str, Any]]:
    app = create_app(service, health=health)
    status, _, body = call(app, event("health_detailed_event.json"), lambda_context)
    return status, body


def test_health_stays_trivial(lambda_context: Any) -> None:
    service = make_service()
    app = create_app(service)
    status, _, body = call(app, event("health_event.json"), lambda_context)
    assert status == 200 and set(body) == {"status", "version", "uptime_s"}


def test_detailed_health_reports_memory_uptime_index_and_cache(lambda_context: Any) -> None:
    service = make_service(answer_cache_entries=50, answer_cache_table="answers")
    status, body = detailed(service, checker(service, Probe()), lambda_context)
    assert status == 200 and body["failing"] == []
    assert body["process"]["rss_mb"] > 1 and body["process"]["peak_rss_mb"] >= body["process"]["rss_mb"] - 1
    assert body["uptime_s"] >= 0
    store = body["store"]
    assert store["documents"] == 2 and store["chunks"] >= 2
    assert store["index_version"] == service.store.index_version()
    assert body["answer_cache"] == {
        "enabled": True,
        "max_entries": 50,
        "max_mb": 8.0,
        "ttl_s": 3600.0,
        "shared_table": "answers",
    }
    assert body["providers"] == [] and body["llm_providers"] == []


def test_the_index_version_in_health_follows_ingest(lambda_context: Any) -> None:
    from shared.models import Document, Section

    service = make_service()
    health = checker(service, Probe())
    _, before = detailed(service, health, lambda_context)
    service.ingestor.index_documents(
        [Document(source="/d/n.md", doc_type="markdown", sections=[Section(text="New.")], content_hash="n")]
    )
    service.store.flush()
    _, after = detailed(service, health, lambda_context)
    assert after["store"]["index_version"] != before["store"]["index_version"]
    assert after["store"]["documents"] == 3


def test_providers_are_checked_once_a_minute_without_a_completion(lambda_context: Any) -> None:
    service = make_service(
        answer_providers=["openai:gpt-4o-mini", "extractive"], openai_base_url="http://llm.internal:8000/v1"
    )
    probe = Probe()
    clock = [1000.0]
    health = checker(service, probe, clock)
    status, body = detailed(service, health, lambda_context)
    assert status == 200
    [check] = body["providers"]
    assert check == {
        **check,
        "provider": "openai:gpt-4o-mini",
        "ok": True,
        "status": "ok",
        "endpoint": "http://llm.internal:8000/v1",
        "detail": "HTTP 401",
        "age_s": 0.0,
    }
    assert probe.urls == ["http://llm.internal:8000/v1/models"]  # the models list: no completion, no key
    clock[0] += 59
    _, body = detailed(service, health, lambda_context)
    assert len(probe.urls) == 1 and body["providers"][0]["age_s"] == 59.0
    clock[0] += 1
    detailed(service, health, lambda_context)
    assert len(probe.urls) == 2


def test_a_provider_down_fails_the_check_only_when_nothing_can_answer_instead(lambda_context: Any) -> None:
    url = "http://llm.internal:8000/v1"
    down = Probe({url + "/models": (False, "unreachable: connection refused")})
    with_floor = make_service(answer_providers=["openai:m", "extractive"], openai_base_url=url)
    status, body = detailed(with_floor, checker(with_floor, down), lambda_context)
    assert status == 200 and body["providers"][0]["status"] == "down"
    assert "connection refused" in body["providers"][0]["detail"]
    only_llm = make_service(answer_providers=["openai:m"], openai_base_url=url)
    status, body = detailed(only_llm, checker(only_llm, down), lambda_context)
    assert status == 503 and body["failing"] == ["llm_providers"]


def test_bedrock_endpoint_comes_from_its_client(lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # as in Lambda: no credential lookup call
        monkeypatch.setenv(name, "testing")
    service = make_service(
        answer_providers=["bedrock:anthropic.claude-3-haiku", "extractive"], aws_region="eu-west-1"
    )
    probe = Probe()
    _, body = detailed(service, checker(service, probe), lambda_context)
    assert body["providers"][0]["endpoint"] == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    assert probe.urls == ["https://bedrock-runtime.eu-west-1.amazonaws.com/models"]


def test_a_provider_without_a_known_endpoint_is_unknown_not_failing() -> None:
    class Opaque:
        name = "newkind:model"

        @property
        def client(self) -> Any:
            raise RuntimeError("needs a key")

    assert endpoint_of(Opaque()) is None
    assert (
        endpoint_of(type("L", (), {"base_url": "https://api.example.com/v1"})())
        == "https://api.example.com/v1"
    )
    probe = ProviderProbe(Settings(answer_providers=["openai:m", "extractive"]), probe=Probe())
    probe._endpoints["openai:m"] = None  # as for a kind the probe cannot place
    [check] = probe.check()
    assert (check.ok, check.status) == (True, "unknown")


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/statm"), reason="Linux only")
def test_process_memory_is_read() -> None:
    info = process_info()
    assert info.rss_mb is not None and 1 < info.rss_mb < 100_000
