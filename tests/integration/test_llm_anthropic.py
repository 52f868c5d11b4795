"""Anthropic's Messages API over real HTTP: the real ``anthropic`` SDK against a scripted local server that
speaks the protocol (JSON replies, server-sent events, error bodies): requests, streaming, error
classification, retries, and fallback to the next provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.llm.anthropic_provider import AnthropicChat
from shared.llm.base import ChatMessage, LLMError
from shared.llm.resilience import ProviderChain, ResilientLLM, RetryPolicy, reset_breakers
from tests.fakes import Reply
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.integration

MSGS = [ChatMessage("system", "rules"), ChatMessage("user", "question")]
TIMEOUT = 0.3
TEXT = "Open Settings and choose Account [1]. Then click Reset password [1]."


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    reset_breakers()
    yield
    reset_breakers()


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as s:
        yield s


def claude(server: FakeAnthropicServer, model: str = "claude-haiku-4-5") -> AnthropicChat:
    return AnthropicChat(model, base_url=server.base_url, api_key="sk-ant-test", timeout=TIMEOUT)


def test_complete_and_stream_over_http(server: FakeAnthropicServer) -> None:
    server.messages(Reply.answer(TEXT), Reply.answer(TEXT))
    llm = claude(server)
    assert llm.complete(MSGS, max_tokens=50, temperature=0.0) == TEXT
    deltas = list(llm.stream(MSGS, max_tokens=50, temperature=0.0))
    assert len(deltas) > 3 and "".join(deltas) == TEXT
    first, second = server.message_calls()
    assert first.body == {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "system": "rules",  # system messages go to the top-level field, not into the turns
        "messages": [{"role": "user", "content": "question"}],
    }
    assert second.body["stream"] is True
    # the key, as x-api-key or (newer SDKs) a bearer token; never another provider's
    assert "sk-ant-test" in (first.headers.get("x-api-key"), first.headers.get("authorization", "")[7:])
    assert first.headers["anthropic-version"]
    assert first.headers.get("x-stainless-retry-count", "0") == "0"
    assert llm.name == "anthropic:claude-haiku-4-5" and "sk-ant-test" not in repr(llm)


@pytest.mark.parametrize(
    ("reply", "kind", "status", "retry_after"),
    [
        (Reply.fail(429, "Too many requests", headers={"retry-after": "2"}), "rate_limit", 429, 2.0),
        (Reply.fail(529, "Overloaded"), "server", 529, None),
        (Reply.fail(500, "Internal server error"), "server", 500, None),
        (Reply.fail(401, "invalid x-api-key"), "auth", 401, None),
        (Reply.fail(403, "not allowed"), "auth", 403, None),
        (Reply.fail(402, "credit balance too low"), "quota", 402, None),
        (Reply.fail(400, "prompt is too long"), "bad_request", 400, None),
        (Reply.fail(404, "model: claude-nope"), "bad_request", 404, None),
        (Reply.fail(413, "request too large"), "bad_request", 413, None),
        (Reply.malformed(b'{"content": [ {"type": "text", '), "malformed", None, None),
        (Reply.answer("", finish="refusal"), "content_filter", None, None),
        (Reply.slow(2.0), "timeout", None, None),
    ],
)
def test_errors_are_classified(
    server: FakeAnthropicServer, reply: Reply, kind: str, status: int | None, retry_after: float | None
) -> None:
    server.messages(reply)
    with pytest.raises(LLMError) as info:
        claude(server).complete(MSGS)
    assert (info.value.kind, info.value.status, info.value.retry_after) == (kind, status, retry_after)
    assert info.value.provider == "anthropic:claude-haiku-4-5"
    assert len(server.message_calls()) == 1  # the SDK's own retries are off


def test_the_error_message_is_the_servers_not_the_whole_body(server: FakeAnthropicServer) -> None:
    server.messages(Reply.fail(400, "max_tokens: must be positive"))
    with pytest.raises(LLMError) as info:
        claude(server).complete(MSGS)
    assert info.value.message == "max_tokens: must be positive"


def test_stream_errors_are_classified(server: FakeAnthropicServer) -> None:
    server.messages(
        Reply.fail(429, "slow down"),
        Reply.slow(2.0),
        Reply(text=TEXT, break_after=0, stream_exception="overloaded_error", error="Overloaded"),
        Reply(text=TEXT, break_after=3, stream_exception="api_error"),
        Reply(text=TEXT, break_after=2),  # the connection drops mid-answer
        Reply(text=TEXT, finish="refusal"),
    )
    llm = claude(server)
    seen = []
    for _ in range(6):
        got: list[str] = []
        with pytest.raises(LLMError) as info:
            for delta in llm.stream(MSGS):
                got.append(delta)
        seen.append((info.value.kind, len(got)))
    assert seen == [
        ("rate_limit", 0),
        ("timeout", 0),
        ("server", 0),  # an `error` event in a 200 stream: its type decides
        ("server", 3),
        ("connection", 2),
        ("content_filter", len(TEXT) // 7 + 1),
    ]


def test_connection_refused() -> None:
    llm = AnthropicChat("m", base_url="http://127.0.0.1:9", api_key="k", timeout=TIMEOUT)
    with pytest.raises(LLMError) as info:
        llm.complete(MSGS)
    assert info.value.kind == "connection"


def test_overloaded_is_retried_then_answers(server: FakeAnthropicServer) -> None:
    server.messages(
        Reply.fail(529, "Overloaded"),
        Reply(text=TEXT, break_after=0, stream_exception="overloaded_error"),
        Reply.answer(TEXT),
    )
    sleeps: list[float] = []
    llm = ResilientLLM(claude(server), RetryPolicy(max_attempts=3, base_delay=0.01), sleep=sleeps.append)
    assert "".join(llm.stream(MSGS)) == TEXT
    assert len(sleeps) == 2 and len(server.message_calls()) == 3


def test_falls_back_to_an_openai_compatible_provider(server: FakeAnthropicServer) -> None:
    server.messages(Reply.fail(401, "invalid x-api-key"))
    with FakeOpenAIServer() as groq:
        from shared.llm.openai_provider import OpenAIChat

        groq.chat(Reply.answer("from groq"))
        backup = OpenAIChat("llama", base_url=groq.base_url, api_key="gsk", timeout=TIMEOUT, provider="groq")
        chain = ProviderChain([ResilientLLM(claude(server)), ResilientLLM(backup)])
        text, provider, failures = chain.complete(MSGS)
    assert (text, provider) == ("from groq", "groq:llama")
    assert [f.reason for f in failures] == ["anthropic:claude-haiku-4-5 failed: auth (401)"]
