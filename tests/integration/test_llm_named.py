"""Named providers over real HTTP: each OpenAI-compatible name (Groq, Mistral, Google, Ollama, a vLLM of
your own) reaches its own URL with its own key, through the real ``openai`` SDK against the OpenAI fake;
Anthropic through the Messages fake. Fallback across them, one circuit breaker per provider, the service
end to end, and the CLI (`configure --provider`, `configure --api-key`, `providers`)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from local_cli.main import cli
from shared.embeddings.hashing import HashingEmbedder
from shared.errors import RagExplorerError
from shared.llm.base import ChatMessage
from shared.llm.factory import ProviderAccess, make_chain
from shared.llm.providers import KNOWN_PROVIDERS
from shared.llm.resilience import RetryPolicy, breaker_for, reset_breakers
from shared.models import Document, Section
from shared.service import RagService
from shared.settings import Settings
from shared.stores.memory import MemoryStore
from tests.fakes import Reply
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.integration

MSGS = [ChatMessage("system", "rules"), ChatMessage("user", "question")]
TIMEOUT = 0.3
COMPATIBLE = ("groq", "mistral", "google", "ollama")
KEY_VARS = [v for p in KNOWN_PROVIDERS.values() for v in p.key_envs] + [
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
]
DOC = "To rotate your API key, open the console and choose Regenerate key."
ANSWER = "To rotate your API key, open the console and choose Regenerate key [1]."


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    reset_breakers()
    yield
    reset_breakers()


@pytest.fixture
def servers() -> Iterator[dict[str, FakeOpenAIServer]]:
    started = {name: FakeOpenAIServer().start() for name in COMPATIBLE}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture
def claude() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as s:
        yield s


def test_each_name_sends_its_own_key_to_its_own_url(servers: dict[str, FakeOpenAIServer]) -> None:
    env = {
        "GROQ_API_KEY": "gsk-groq",
        "MISTRAL_API_KEY": "mk-mistral",
        "GEMINI_API_KEY": "g-gemini",
        "OPENAI_API_KEY": "sk-openai-must-stay-home",
    }
    access = ProviderAccess(base_urls={n: s.base_url for n, s in servers.items()}, env=env)
    specs = ["groq:llama-3.3-70b-versatile", "mistral:mistral-small-latest", "google:gemini-2.5-flash"]
    specs.append("ollama:llama3.1")
    for spec in specs:
        name = spec.split(":")[0]
        servers[name].chat(Reply.answer(f"hello from {name}"))
        chain = make_chain([spec], access=access, timeout_s=TIMEOUT)
        assert chain.complete(MSGS)[:2] == (f"hello from {name}", spec)
    auth = {n: s.chat_calls()[0].headers["authorization"] for n, s in servers.items()}
    assert auth == {
        "groq": "Bearer gsk-groq",
        "mistral": "Bearer mk-mistral",
        "google": "Bearer g-gemini",
        "ollama": "Bearer not-needed",  # a local server: no key, and never OpenAI's
    }
    assert [s.chat_calls()[0].body["model"] for s in servers.values()] == [s.split(":", 1)[1] for s in specs]


def test_fallback_across_named_providers_and_a_breaker_each(
    servers: dict[str, FakeOpenAIServer], claude: FakeAnthropicServer
) -> None:
    clock = FakeClock()
    anthropic_name = "anthropic:claude-haiku-4-5"
    breaker_for(anthropic_name, failure_threshold=2, cooldown_s=30, clock=clock)
    access = ProviderAccess(
        base_urls={"anthropic": claude.base_url, "groq": servers["groq"].base_url},
        api_keys={"anthropic": "sk-ant", "groq": "gsk"},
        env={},
    )
    chain = make_chain(
        [anthropic_name, "groq:llama-3.3-70b-versatile"],
        access=access,
        timeout_s=TIMEOUT,
        retry=RetryPolicy(max_attempts=1),
        failure_threshold=2,
    )
    claude.messages(Reply.fail(529, "Overloaded"), Reply.fail(500, "oops"))
    servers["groq"].chat(*[Reply.answer("from groq")] * 3)
    reasons = []
    for _ in range(3):
        text, provider, failures = chain.complete(MSGS)
        assert (text, provider) == ("from groq", "groq:llama-3.3-70b-versatile")
        reasons.append([f.reason for f in failures])
    assert reasons == [
        [f"{anthropic_name} failed: server (529)"],
        [f"{anthropic_name} failed: server (500)"],
        [f"{anthropic_name} failed: circuit_open"],  # skipped without a request
    ]
    assert len(claude.message_calls()) == 2
    assert breaker_for(anthropic_name).state == "open"
    assert breaker_for("groq:llama-3.3-70b-versatile").state == "closed"  # one breaker per provider
    clock.now = 31.0  # after the cool-down one probe goes out; its success closes the breaker
    claude.messages(Reply.answer("Claude is back."))
    deltas = list(chain.stream(MSGS))
    assert "".join(deltas) == "Claude is back." and breaker_for(anthropic_name).state == "closed"


def test_every_provider_failing_ends_with_all_their_reasons(
    servers: dict[str, FakeOpenAIServer], claude: FakeAnthropicServer
) -> None:
    access = ProviderAccess(
        base_urls={"anthropic": claude.base_url, "ollama": servers["ollama"].base_url}, env={}
    )
    chain = make_chain(
        ["anthropic:claude-haiku-4-5", "ollama:llama3.1"], access=access, retry=RetryPolicy(max_attempts=1)
    )
    claude.messages(Reply.fail(401, "invalid x-api-key"))
    servers["ollama"].chat(Reply.fail(404, "model 'llama3.1' not found, try pulling it first"))
    with pytest.raises(RagExplorerError) as raised:
        chain.complete(MSGS)
    assert str(raised.value) == (
        "every LLM provider failed: anthropic:claude-haiku-4-5 failed: auth (401); "
        "ollama:llama3.1 failed: bad_request (404)"
    )


def test_the_service_answers_through_the_chain_groq_ollama_extractive(
    tmp_path: Path, servers: dict[str, FakeOpenAIServer]
) -> None:
    emb = HashingEmbedder()
    settings = Settings(
        home=tmp_path,
        answer_providers=["groq:llama-3.3-70b-versatile", "ollama:llama3.1", "extractive"],
        llm_base_urls={"groq": servers["groq"].base_url, "ollama": servers["ollama"].base_url},
        llm_api_keys={"groq": "gsk-settings"},
        llm_max_attempts=1,
        llm_timeout_s=TIMEOUT,
        confidence_threshold=0.0,
    )
    service = RagService(settings, embedder=emb, store=MemoryStore(dimension=emb.dimension))
    sections = [Section(text=DOC)]
    doc = Document(
        source="/d/keys.md", title="Keys", doc_type="markdown", sections=sections, content_hash="h"
    )
    service.ingestor.index_documents([doc])
    service.store.flush()
    servers["groq"].chat(Reply.fail(503, "over capacity"), Reply.fail(503, "over capacity"))
    servers["ollama"].chat(Reply.answer(ANSWER), Reply.fail(500, "out of memory"))
    first = service.ask("How do I rotate my API key?")
    assert (first.provider, first.decision, first.answer) == ("ollama:llama3.1", "answer", ANSWER)
    assert "groq:llama-3.3-70b-versatile failed: server (503)" in first.reasons
    assert servers["groq"].chat_calls()[0].headers["authorization"] == "Bearer gsk-settings"
    second = service.ask("How can I rotate an API key?")
    assert second.provider == "extractive" and second.decision == "answer"
    assert "ollama:llama3.1 failed: server (500)" in second.reasons


# --------------------------------------------------------------------------- the CLI


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    full = {"RAG_EXPLORER_HOME": str(home), "RAG_EXPLORER_EMBEDDER": "hash:256", **(env or {})}
    return CliRunner().invoke(cli, list(args), env=full, catch_exceptions=False)


def test_configure_provider_writes_a_working_chain(
    tmp_path: Path, servers: dict[str, FakeOpenAIServer]
) -> None:
    home = tmp_path / "home"
    ollama = servers["ollama"]
    r = run(home, "configure", "--provider", "ollama", "--base-url", ollama.base_url)
    assert r.exit_code == 0, r.output
    assert "answer_providers=ollama:llama3.1,extractive" in r.output
    saved = json.loads((home / "settings.json").read_text())
    assert saved["answer_providers"] == ["ollama:llama3.1", "extractive"]
    assert saved["llm_base_urls"] == {"ollama": ollama.base_url}
    ollama.chat(Reply.answer("OK"))
    r = run(home, "providers", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["providers"]
    assert [(row["provider"], row["ok"]) for row in rows] == [("ollama:llama3.1", True), ("extractive", True)]
    assert ollama.chat_calls()[0].body["model"] == "llama3.1"


def test_configure_api_key_per_provider_is_private_and_masked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = run(
        home,
        "configure",
        "--provider",
        "groq",
        "--api-key",
        "groq",
        "gsk-live-5150",
        "--api-key",
        "openai",
        "sk-live-77",
    )
    assert r.exit_code == 0, r.output
    assert "gsk-live-5150" not in r.output and "sk-live-77" not in r.output
    assert "llm_api_keys.groq=***" in r.output and "openai_api_key=***" in r.output
    path = home / "settings.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["llm_api_keys"] == {"groq": "gsk-live-5150"} and saved["openai_api_key"] == "sk-live-77"
    assert saved["answer_providers"] == ["groq:llama-3.3-70b-versatile", "extractive"]
    r = run(home, "configure", "--api-key", "mistral", "mk-1", "--json")
    assert json.loads(r.stdout)["updated"] == {"llm_api_keys.mistral": "***"}
    assert json.loads(path.read_text())["llm_api_keys"] == {"groq": "gsk-live-5150", "mistral": "mk-1"}


def test_configure_says_what_a_provider_still_needs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = run(home, "configure", "--provider", "mistral")
    assert r.exit_code == 0 and "no API key for mistral: set MISTRAL_API_KEY" in r.output
    r = run(home, "providers")  # no request goes out without a key
    assert "FAIL mistral:mistral-small-latest: auth: no API key for mistral" in r.output
    bad = run(home, "configure", "--provider", "azure")
    assert (
        bad.exit_code == 2 and "known ones are openai, anthropic, google, groq, mistral, ollama" in bad.output
    )
    assert run(home, "configure", "--provider", "vllm").exit_code == 2  # a name of your own needs --base-url
    r = run(home, "configure", "--provider", "vllm", "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert (
        r.exit_code == 0
        and json.loads((home / "settings.json").read_text())["answer_providers"][0] == "vllm:m"
    )
    assert run(home, "configure", "--api-key", "bedrock", "x").exit_code == 2
    old = run(home, "configure", "--endpoint", "http://x", "--api-key", "k")  # the remote key was renamed
    assert old.exit_code == 2 and "--api-key" in old.output
