"""The LLM provider reachability check over real HTTP: the fake OpenAI-compatible server is asked for its
models list, never for a completion and never with the key; a closed port is down; results are reused."""

from __future__ import annotations

import pytest

from shared.adapters.provider_health import ProviderProbe, http_probe
from shared.settings import Settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.servers import free_port

pytestmark = pytest.mark.integration


def test_a_reachable_provider_is_asked_for_its_models_only() -> None:
    with FakeOpenAIServer() as server:
        settings = Settings(
            answer_providers=["openai:gpt-4o-mini", "extractive"],
            openai_base_url=server.base_url,
            openai_api_key="sk-secret-never-sent",
        )
        probe = ProviderProbe(settings)
        [check] = probe.check()
        assert (check.ok, check.status, check.endpoint) == (True, "ok", server.base_url)
        assert check.detail == "HTTP 404"  # the fake has no models list: an answer all the same
        [request] = server.requests
        assert request.path == "/v1/models"  # (the fake records every method as POST)
        assert not any("sk-secret" in v for v in request.headers.values())
        assert not server.chat_calls()
        probe.check()  # within a minute: the result is reused
        assert len(server.requests) == 1


def test_an_unreachable_provider_is_down() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    settings = Settings(answer_providers=["openai:m", "extractive"], openai_base_url=url)
    [check] = ProviderProbe(settings).check()
    assert (check.ok, check.status) == (False, "down")
    assert check.detail and check.detail.startswith("unreachable")


def test_a_server_error_is_down_and_other_schemes_are_not_probed() -> None:
    import http.server
    import threading

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        assert http_probe(f"http://127.0.0.1:{httpd.server_address[1]}/v1/models", 2.0) == (False, "HTTP 503")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert http_probe("file:///etc/passwd", 2.0) == (False, "not an http(s) URL")
