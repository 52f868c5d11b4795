"""Retries with exponential backoff and full jitter, circuit breakers, and ordered fallback chains.

* :class:`~shared.remote.retry.RetryPolicy` (from :mod:`shared.remote.retry`) retries only retryable
  errors (rate limit, 5xx, timeout, connection, malformed),
  waits ``uniform(0, min(max_delay, base_delay * 2**(attempt-1)))`` ("full jitter") or exactly what the
  provider's ``Retry-After`` asks for; a provider asking for more than ``max_delay`` is not waited for (the
  chain moves on to the next provider instead of blocking the request).
* :class:`CircuitBreaker` opens after ``failure_threshold`` consecutive failed calls to a provider (each
  attempt counts; bad requests and content filters say nothing about the provider's health and don't),
  rejects calls while open, lets one probe through after ``cooldown_s`` (half-open) and closes when the
  probe succeeds. :func:`breaker_for` shares one breaker per provider name within the process, so every
  request (and every thread) of a warm Lambda or ``rag-explorer serve`` sees the same state.
* :class:`ResilientLLM` wraps an :class:`~shared.llm.base.LLM` with both.
* :class:`ProviderChain` tries providers in order and reports which one answered and what failed.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Literal, NamedTuple, TypeVar

from shared.errors import RagExplorerError
from shared.llm.base import BREAKER_NEUTRAL_KINDS, LLM, ChatMessage, LLMError, clip
from shared.remote.retry import RetryPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")

Clock = Callable[[], float]
BreakerState = Literal["closed", "open", "half_open"]
ErrorHook = Callable[[str, str], None]
"""``on_error(provider, kind)``: called once per failed provider (after its retries), e.g. for metrics."""


# --------------------------------------------------------------------------- retries


# --------------------------------------------------------------------------- circuit breaker


class CircuitBreaker:
    """Closed → (``failure_threshold`` consecutive failures) → open → (``cooldown_s``) → half-open → one
    probe: success closes it, failure opens it again for another cool-down. Thread-safe."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        *,
        clock: Clock = time.monotonic,
        name: str = "",
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.name = name
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state!r}, failures={self.failures})"

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._state == "open" and self.clock() - self._opened_at >= self.cooldown_s:
                return "half_open"
            return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures so far."""
        return self._failures

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when it would now)."""
        with self._lock:
            if self._state != "open":
                return 0.0
            return max(0.0, self.cooldown_s - (self.clock() - self._opened_at))

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one probe is let through at a time."""
        with self._lock:
            if self._state == "closed":
                return True
            if self._state == "open":
                if self.clock() - self._opened_at < self.cooldown_s:
                    return False
                self._state = "half_open"
                self._probe_in_flight = True
                return True
            if self._probe_in_flight:
                return False
            self._probe_in_flight = True
            return True

    def record_success(self) -> None:
        with self._lock:
            if self._state != "closed":
                log.info("circuit %s closed", self.name)
            self._state = "closed"
            self._failures = 0
            self._probe_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._probe_in_flight = False
            if self._state == "half_open" or self._failures >= self.failure_threshold:
                if self._state != "open":
                    log.warning("circuit %s opened after %d consecutive failures", self.name, self._failures)
                self._state = "open"
                self._opened_at = self.clock()

    def record_neutral(self) -> None:
        """The call failed for a reason that says nothing about the provider (bad request, content filter)."""
        with self._lock:
            self._probe_in_flight = False

    def record(self, error: LLMError) -> None:
        if error.kind in BREAKER_NEUTRAL_KINDS:
            self.record_neutral()
        else:
            self.record_failure()

    def reset(self) -> None:
        self.record_success()


_BREAKERS: dict[str, CircuitBreaker] = {}
_BREAKERS_LOCK = threading.Lock()


def breaker_for(
    name: str, *, failure_threshold: int = 5, cooldown_s: float = 30.0, clock: Clock | None = None
) -> CircuitBreaker:
    """The process-wide breaker of provider ``name`` (created with these settings on first use)."""
    with _BREAKERS_LOCK:
        breaker = _BREAKERS.get(name)
        if breaker is None:
            breaker = _BREAKERS[name] = CircuitBreaker(
                failure_threshold, cooldown_s, clock=clock or time.monotonic, name=name
            )
        return breaker


def reset_breakers() -> None:
    """Forget every shared breaker (tests; a settings change)."""
    with _BREAKERS_LOCK:
        _BREAKERS.clear()


# --------------------------------------------------------------------------- one provider, resilient


def _as_llm_error(exc: Exception, provider: str) -> LLMError:
    if isinstance(exc, LLMError):
        return exc
    return LLMError("server", f"unexpected {type(exc).__name__}: {clip(str(exc), 200)}", provider=provider)


class ResilientLLM:
    """An :class:`LLM` with retries and a circuit breaker. Raises :class:`LLMError` only; an open breaker
    raises ``kind="circuit_open"`` at once, without calling the provider."""

    def __init__(
        self,
        llm: LLM,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.llm = llm
        self.name = llm.name
        self.retry = retry or RetryPolicy()
        self.breaker = breaker
        self.sleep = sleep
        self.rng = rng
        self.attempts = 0  # calls that went out to the provider (for tests and diagnostics)

    def __repr__(self) -> str:
        return f"ResilientLLM({self.llm!r}, {self.retry!r}, {self.breaker!r})"

    def _admit(self, last: LLMError | None) -> None:
        if self.breaker is None or self.breaker.allow():
            self.attempts += 1
            return
        if last is not None:  # the breaker opened while we were retrying: stop here
            raise last
        raise LLMError(
            "circuit_open",
            f"circuit open after {self.breaker.failures} consecutive failures; "
            f"next try in {self.breaker.retry_in():.0f} s",
            provider=self.name,
        )

    def _failed(self, error: LLMError, attempt: int) -> float | None:
        if self.breaker is not None:
            self.breaker.record(error)
        delay = self.retry.delay(attempt, error, self.rng)
        if delay is not None:
            log.warning(
                "%s attempt %d failed (%s); retrying in %.2f s", self.name, attempt, error.label, delay
            )
        return delay

    def _succeeded(self) -> None:
        if self.breaker is not None:
            self.breaker.record_success()

    def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        last: LLMError | None = None
        attempt = 0
        while True:
            attempt += 1
            self._admit(last)
            try:
                text = self.llm.complete(messages, max_tokens=max_tokens, temperature=temperature)
            except Exception as exc:
                error = _as_llm_error(exc, self.name)
                delay = self._failed(error, attempt)
                if delay is None:
                    raise error from exc
                self.sleep(delay)
                last = error
                continue
            self._succeeded()
            return text

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        """Retries happen only before the first delta; a stream that breaks later raises (what was
        already yielded can't be taken back)."""
        last: LLMError | None = None
        attempt = 0
        while True:
            attempt += 1
            self._admit(last)
            yielded = settled = False
            try:
                for delta in self.llm.stream(messages, max_tokens=max_tokens, temperature=temperature):
                    yielded = True
                    yield delta
                settled = True
            except Exception as exc:
                settled = True
                error = _as_llm_error(exc, self.name)
                delay = self._failed(error, attempt)
                if delay is None or yielded:
                    raise error from exc
                self.sleep(delay)
                last = error
                continue
            finally:
                if not settled:  # the consumer stopped reading mid-answer: the provider did answer
                    self._succeeded()  # (and a half-open probe must not stay "in flight" for ever)
            self._succeeded()
            return


# --------------------------------------------------------------------------- fallback chain


class ProviderFailure(NamedTuple):
    provider: str
    kind: str
    message: str
    status: int | None = None

    @property
    def reason(self) -> str:
        """``openai:gpt-4o-mini failed: rate_limit (429)``: the form used in answer reasons."""
        label = f"{self.kind} ({self.status})" if self.status is not None else self.kind
        return f"{self.provider} failed: {label}"

    @classmethod
    def from_error(cls, error: LLMError, provider: str | None = None) -> ProviderFailure:
        return cls(provider or error.provider, error.kind, error.message, error.status)


class AllProvidersFailed(RagExplorerError):
    """Every provider of the chain failed. ``partial_text`` is what a broken stream had already yielded."""

    def __init__(self, failures: list[ProviderFailure], *, partial_text: str = "") -> None:
        summary = "; ".join(f.reason for f in failures) or "no providers configured"
        super().__init__(f"every LLM provider failed: {summary}")
        self.failures = failures
        self.partial_text = partial_text


class ProviderChain:
    """Providers tried in order; the first that answers wins."""

    def __init__(self, providers: Sequence[LLM], *, on_error: ErrorHook | None = None) -> None:
        self.providers = list(providers)
        self.on_error = on_error

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.providers]

    def __repr__(self) -> str:
        return f"ProviderChain({self.names})"

    def _failed(self, provider: LLM, exc: Exception, failures: list[ProviderFailure]) -> None:
        error = _as_llm_error(exc, provider.name)
        failures.append(ProviderFailure.from_error(error, provider.name))
        log.warning("%s failed: %s: %s", provider.name, error.label, error.message)
        if self.on_error is not None:
            try:
                self.on_error(provider.name, error.kind)
            except Exception:  # a metrics hook must never break answering
                log.exception("on_error hook failed")

    def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> tuple[str, str, list[ProviderFailure]]:
        """``(text, provider name, failures of the providers tried before it)``; raises
        :class:`AllProvidersFailed` when none answers."""
        failures: list[ProviderFailure] = []
        for provider in self.providers:
            try:
                text = provider.complete(messages, max_tokens=max_tokens, temperature=temperature)
            except Exception as exc:
                self._failed(provider, exc, failures)
                continue
            return text, provider.name, failures
        raise AllProvidersFailed(failures)

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> ChainStream:
        return ChainStream(self, messages, max_tokens=max_tokens, temperature=temperature)


class ChainStream:
    """Iterate for the text deltas of the first provider that answers; afterwards ``provider``,
    ``failures`` and ``text`` say what happened. A provider failing before its first delta hands over to
    the next one; one failing after it ends the stream with :class:`AllProvidersFailed` (its text has
    already been shown, and another provider's answer can't be spliced onto it)."""

    def __init__(
        self, chain: ProviderChain, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> None:
        self._chain = chain
        self._messages = messages
        self._max_tokens = max_tokens
        self._temperature = temperature
        self.provider: str | None = None
        self.failures: list[ProviderFailure] = []
        self._parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def __iter__(self) -> Iterator[str]:
        for provider in self._chain.providers:
            try:
                for delta in provider.stream(
                    self._messages, max_tokens=self._max_tokens, temperature=self._temperature
                ):
                    self._parts.append(delta)
                    yield delta
            except Exception as exc:
                self._chain._failed(provider, exc, self.failures)
                if self._parts:
                    raise AllProvidersFailed(self.failures, partial_text=self.text) from exc
                continue
            self.provider = provider.name
            return
        raise AllProvidersFailed(self.failures)
