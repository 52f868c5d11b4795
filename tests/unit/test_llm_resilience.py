"""Retry policy math, the circuit breaker state machine, ResilientLLM and ProviderChain (no network)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import cast

import pytest

from shared.llm.base import ERROR_KINDS, ChatMessage, ErrorKind, LLMError, parse_retry_after
from shared.llm.resilience import (
    AllProvidersFailed,
    CircuitBreaker,
    ProviderChain,
    ResilientLLM,
    breaker_for,
    reset_breakers,
)
from shared.remote.retry import RetryPolicy, retry_call
from tests.fakes import ScriptedLLM

MSGS = [ChatMessage("user", "hi")]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def err(
    kind: str, *, provider: str = "p", status: int | None = None, retry_after: float | None = None
) -> LLMError:
    return LLMError(
        cast(ErrorKind, kind), f"{kind} happened", provider=provider, status=status, retry_after=retry_after
    )


def same(exc: Exception) -> LLMError:
    assert isinstance(exc, LLMError)
    return exc


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kind", "retryable"),
    [
        ("rate_limit", True),
        ("server", True),
        ("timeout", True),
        ("connection", True),
        ("malformed", True),
        ("auth", False),
        ("quota", False),
        ("bad_request", False),
        ("content_filter", False),
        ("circuit_open", False),
    ],
)
def test_retryable_kinds(kind: str, retryable: bool) -> None:
    assert kind in ERROR_KINDS
    assert err(kind).retryable is retryable


def test_error_label_and_str() -> None:
    e = err("rate_limit", provider="openai:gpt-4o-mini", status=429)
    assert e.label == "rate_limit (429)"
    assert str(e) == "openai:gpt-4o-mini failed: rate_limit (429): rate_limit happened"
    assert err("timeout").label == "timeout"


def test_parse_retry_after() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after(None) is None


# --------------------------------------------------------------------------- retry policy


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=8, jitter=False)
    assert [policy.backoff(a) for a in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_full_jitter_scales_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=8)
    assert policy.backoff(3, rng=lambda: 0.0) == 0.0
    assert policy.backoff(3, rng=lambda: 0.5) == 1.0
    assert policy.backoff(3, rng=lambda: 0.999) == pytest.approx(1.998)
    assert policy.backoff(9, rng=lambda: 0.5) == 4.0  # half of the 8 s cap
    import random

    rng = random.Random(7)
    for attempt in range(1, 8):
        cap = min(8.0, 0.5 * 2 ** (attempt - 1))
        assert 0.0 <= policy.backoff(attempt, rng=rng.random) <= cap


def test_delay_retries_only_retryable_errors_and_stops_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, jitter=False)
    assert policy.delay(1, err("server")) == 0.5
    assert policy.delay(2, err("timeout")) == 1.0
    assert policy.delay(3, err("server")) is None  # that was the last attempt
    for kind in ("auth", "quota", "bad_request", "content_filter", "circuit_open"):
        assert policy.delay(1, err(kind)) is None


def test_delay_honours_retry_after_but_not_beyond_max_delay() -> None:
    policy = RetryPolicy(max_attempts=3, max_delay=8)
    assert policy.delay(1, err("rate_limit", retry_after=2.5)) == 2.5
    assert policy.delay(1, err("rate_limit", retry_after=0)) == 0
    assert policy.delay(1, err("rate_limit", retry_after=60)) is None  # don't block: next provider


def test_invalid_policies_are_rejected() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)


def test_retry_call_retries_then_raises_the_last_error() -> None:
    sleeps: list[float] = []
    outcomes: list[str | LLMError] = [err("server"), err("server"), "ok"]

    def fn() -> str:
        item = outcomes.pop(0)
        if isinstance(item, LLMError):
            raise item
        return item

    policy = RetryPolicy(max_attempts=3, jitter=False)
    assert retry_call(fn, policy=policy, classify=same, sleep=sleeps.append) == "ok"
    assert sleeps == [0.5, 1.0]
    outcomes[:] = [err("auth")]
    with pytest.raises(LLMError, match="auth"):
        retry_call(fn, policy=policy, classify=same, sleep=sleeps.append)


# --------------------------------------------------------------------------- circuit breaker


def test_breaker_opens_after_consecutive_failures_and_half_opens_after_cooldown() -> None:
    clock = FakeClock()
    b = CircuitBreaker(failure_threshold=3, cooldown_s=30, clock=clock)
    assert b.state == "closed"
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state == "closed"
    b.record_success()  # a success resets the count: failures must be consecutive
    for _ in range(3):
        assert b.allow()
        b.record_failure()
    assert b.state == "open"
    assert not b.allow()
    assert b.retry_in() == 30
    clock.advance(29.9)
    assert not b.allow()
    clock.advance(0.1)
    assert b.state == "half_open"
    assert b.allow()  # the probe
    assert not b.allow()  # only one probe at a time
    b.record_success()
    assert b.state == "closed"
    assert b.failures == 0
    assert b.allow()


def test_failed_probe_reopens_for_another_cooldown() -> None:
    clock = FakeClock()
    b = CircuitBreaker(failure_threshold=1, cooldown_s=10, clock=clock)
    b.record_failure()
    assert b.state == "open"
    clock.advance(10)
    assert b.allow()
    b.record_failure()
    assert b.state == "open"
    assert not b.allow()
    clock.advance(9)
    assert not b.allow()
    clock.advance(1)
    assert b.allow()


def test_request_specific_errors_do_not_count() -> None:
    clock = FakeClock()
    b = CircuitBreaker(failure_threshold=2, cooldown_s=10, clock=clock)
    for _ in range(5):
        b.record(err("bad_request"))
        b.record(err("content_filter"))
    assert b.state == "closed"
    b.record(err("auth"))
    b.record(err("rate_limit"))
    assert b.state == "open"
    clock.advance(10)
    assert b.allow()
    b.record(err("bad_request"))  # the probe's outcome says nothing: the next call may probe again
    assert b.allow()


def test_breaker_is_thread_safe() -> None:
    b = CircuitBreaker(failure_threshold=10_000, cooldown_s=1)

    def hammer() -> None:
        for _ in range(500):
            b.record_failure()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b.failures == 4000
    assert b.state == "closed"


def test_half_open_lets_exactly_one_concurrent_probe_through() -> None:
    clock = FakeClock()
    b = CircuitBreaker(failure_threshold=1, cooldown_s=5, clock=clock)
    b.record_failure()
    clock.advance(5)
    results: list[bool] = []
    lock = threading.Lock()

    def try_it() -> None:
        allowed = b.allow()
        with lock:
            results.append(allowed)

    threads = [threading.Thread(target=try_it) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1


def test_breakers_are_shared_by_name_within_the_process() -> None:
    reset_breakers()
    a = breaker_for("openai:gpt-4o-mini", failure_threshold=2)
    assert breaker_for("openai:gpt-4o-mini") is a
    assert breaker_for("bedrock:x") is not a
    reset_breakers()
    assert breaker_for("openai:gpt-4o-mini") is not a
    reset_breakers()


# --------------------------------------------------------------------------- ResilientLLM


def test_resilient_llm_retries_retryable_errors_with_backoff() -> None:
    inner = ScriptedLLM(
        "p", err("server", status=500), err("rate_limit", status=429, retry_after=1.5), "answer"
    )
    sleeps: list[float] = []
    llm = ResilientLLM(inner, RetryPolicy(max_attempts=3, jitter=False), sleep=sleeps.append)
    assert llm.complete(MSGS) == "answer"
    assert inner.calls == 3
    assert sleeps == [0.5, 1.5]


@pytest.mark.parametrize("kind", ["auth", "quota", "bad_request", "content_filter"])
def test_resilient_llm_does_not_retry_non_retryable_errors(kind: str) -> None:
    inner = ScriptedLLM("p", err(kind))
    sleeps: list[float] = []
    llm = ResilientLLM(inner, RetryPolicy(max_attempts=5), sleep=sleeps.append)
    with pytest.raises(LLMError) as info:
        llm.complete(MSGS)
    assert info.value.kind == kind
    assert inner.calls == 1
    assert sleeps == []


def test_resilient_llm_gives_up_after_max_attempts() -> None:
    inner = ScriptedLLM("p", *[err("timeout")] * 5)
    llm = ResilientLLM(inner, RetryPolicy(max_attempts=3), sleep=lambda s: None)
    with pytest.raises(LLMError, match="timeout"):
        llm.complete(MSGS)
    assert inner.calls == 3


def test_open_breaker_fails_fast_without_calling_the_provider() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=30, clock=clock)
    inner = ScriptedLLM("p", *[err("server")] * 10)
    llm = ResilientLLM(inner, RetryPolicy(max_attempts=5), breaker, sleep=lambda s: None)
    with pytest.raises(LLMError) as info:
        llm.complete(MSGS)
    assert info.value.kind == "server"  # the breaker opened during the retries: stop there
    assert inner.calls == 2
    with pytest.raises(LLMError) as info:
        llm.complete(MSGS)
    assert info.value.kind == "circuit_open"
    assert "next try in 30 s" in info.value.message
    assert inner.calls == 2
    clock.advance(30)
    inner.script = ["recovered"]
    assert llm.complete(MSGS) == "recovered"
    assert breaker.state == "closed"


def test_unexpected_exceptions_become_server_errors() -> None:
    class Broken(ScriptedLLM):
        def complete(
            self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
        ) -> str:
            self.calls += 1
            raise RuntimeError("bug")

    llm = ResilientLLM(Broken("p"), RetryPolicy(max_attempts=1))
    with pytest.raises(LLMError) as info:
        llm.complete(MSGS)
    assert info.value.kind == "server"
    assert "RuntimeError" in info.value.message


def test_stream_retries_only_before_the_first_delta() -> None:
    inner = ScriptedLLM("p", err("server"), "streamed text")
    llm = ResilientLLM(inner, RetryPolicy(max_attempts=3), sleep=lambda s: None)
    assert "".join(llm.stream(MSGS)) == "streamed text"
    assert inner.calls == 2

    class Breaks(ScriptedLLM):
        def stream(
            self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
        ) -> Iterator[str]:
            self.calls += 1
            yield "partial "
            raise err("connection")

    breaking = Breaks("p")
    llm = ResilientLLM(breaking, RetryPolicy(max_attempts=3), sleep=lambda s: None)
    out: list[str] = []
    with pytest.raises(LLMError, match="connection"):
        for delta in llm.stream(MSGS):
            out.append(delta)
    assert out == ["partial "]
    assert breaking.calls == 1


# --------------------------------------------------------------------------- ProviderChain


def test_chain_tries_providers_in_order_and_reports_failures() -> None:
    a = ScriptedLLM("a", err("auth", status=401, provider="a"))
    b = ScriptedLLM("b", err("rate_limit", status=429, provider="b"))
    c = ScriptedLLM("c", "from c")
    seen: list[tuple[str, str]] = []
    chain = ProviderChain([a, b, c], on_error=lambda p, k: seen.append((p, k)))
    text, provider, failures = chain.complete(MSGS)
    assert (text, provider) == ("from c", "c")
    assert [(f.provider, f.kind, f.status) for f in failures] == [
        ("a", "auth", 401),
        ("b", "rate_limit", 429),
    ]
    assert [f.reason for f in failures] == ["a failed: auth (401)", "b failed: rate_limit (429)"]
    name, kind, message, _status = failures[0]
    assert (name, kind, message) == ("a", "auth", "auth happened")
    assert seen == [("a", "auth"), ("b", "rate_limit")]
    assert (a.calls, b.calls, c.calls) == (1, 1, 1)


def test_chain_stops_at_the_first_provider_that_answers() -> None:
    a, b = ScriptedLLM("a", "from a"), ScriptedLLM("b", "from b")
    assert ProviderChain([a, b]).complete(MSGS)[:2] == ("from a", "a")
    assert b.calls == 0


def test_chain_raises_when_every_provider_fails_and_survives_a_broken_hook() -> None:
    def hook(provider: str, kind: str) -> None:
        raise RuntimeError("metrics down")

    chain = ProviderChain([ScriptedLLM("a", err("server")), ScriptedLLM("b", err("timeout"))], on_error=hook)
    with pytest.raises(AllProvidersFailed) as info:
        chain.complete(MSGS)
    assert [f.kind for f in info.value.failures] == ["server", "timeout"]
    assert "a failed: server; b failed: timeout" in str(info.value)


def test_chain_stream_falls_over_before_the_first_delta_only() -> None:
    a, b = ScriptedLLM("a", err("server")), ScriptedLLM("b", "hello from b")
    stream = ProviderChain([a, b]).stream(MSGS)
    assert "".join(stream) == "hello from b"
    assert stream.provider == "b"
    assert stream.text == "hello from b"
    assert [f.provider for f in stream.failures] == ["a"]


def test_an_abandoned_probe_stream_does_not_wedge_the_breaker() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=5, clock=clock)
    breaker.record_failure()
    clock.advance(5)
    llm = ResilientLLM(ScriptedLLM("p", "a long streamed answer"), RetryPolicy(), breaker)
    stream = llm.stream(MSGS)
    assert next(stream) == "a lo"
    stream.close()  # the client went away mid-answer: the provider did answer
    assert breaker.state == "closed"
