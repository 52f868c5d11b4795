"""Retries with exponential backoff and full jitter, circuit breakers, and ordered fallback chains."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from shared.generation.base import LLM, ChatMessage, LLMError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    jitter: bool = True

    def delay(
        self, attempt: int, error: LLMError, rand: Callable[[float, float], float] = random.uniform
    ) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based); ``Retry-After`` wins when given."""
        if error.retry_after is not None:
            return min(self.max_delay_s, max(0.0, error.retry_after))
        cap = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return rand(0.0, cap) if self.jitter else cap


class CircuitBreaker:
    """closed → (``failure_threshold`` consecutive failures) → open → (after ``cooldown_s``) → half-open:
    one trial call; success closes it, failure opens it again."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self._opened_at >= self.cooldown_s else "open"

    def allow(self) -> bool:
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._trial_running = 0, None, False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_running or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._trial_running = False


_BREAKERS: dict[str, CircuitBreaker] = {}
_BREAKERS_LOCK = threading.Lock()


def breaker_for(name: str, **kwargs: float) -> CircuitBreaker:
    """The process-wide breaker of a provider (shared by every request in this process)."""
    with _BREAKERS_LOCK:
        if name not in _BREAKERS:
            _BREAKERS[name] = CircuitBreaker(**kwargs)  # type: ignore[arg-type]
        return _BREAKERS[name]


@dataclass
class ResilientLLM:
    llm: LLM
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    sleep: Callable[[float], None] = time.sleep

    @property
    def name(self) -> str:
        return self.llm.name

    def _guard(self) -> None:
        if not self.breaker.allow():
            raise LLMError("circuit_open", "too many recent failures; skipped", provider=self.name)

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int = 512) -> str:
        attempt = 0
        while True:
            attempt += 1
            self._guard()
            try:
                text = self.llm.complete(messages, max_tokens=max_tokens)
            except LLMError as exc:
                self.breaker.record_failure()
                if not exc.retryable or attempt >= self.retry.max_attempts:
                    raise
                self.sleep(self.retry.delay(attempt, exc))
                continue
            self.breaker.record_success()
            return text

    def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int = 512) -> Iterator[str]:
        """Retries only before the first token: once text has been shown, a failure ends the stream."""
        attempt = 0
        while True:
            attempt += 1
            self._guard()
            started = False
            try:
                for delta in self.llm.stream(messages, max_tokens=max_tokens):
                    started = True
                    yield delta
            except LLMError as exc:
                self.breaker.record_failure()
                if started or not exc.retryable or attempt >= self.retry.max_attempts:
                    raise
                self.sleep(self.retry.delay(attempt, exc))
                continue
            self.breaker.record_success()
            return


@dataclass(frozen=True)
class Failure:
    provider: str
    kind: str
    message: str


class ProviderChain:
    """Tries providers in order; returns the first answer with the failures met on the way."""

    def __init__(
        self, providers: Sequence[ResilientLLM], on_error: Callable[[str, str], None] | None = None
    ) -> None:
        self.providers = list(providers)
        self.on_error = on_error

    def _failed(self, failures: list[Failure], exc: LLMError) -> None:
        failures.append(Failure(exc.provider, exc.kind, exc.short))
        if self.on_error:
            self.on_error(exc.provider, exc.kind)

    def complete(self, messages: Sequence[ChatMessage]) -> tuple[str | None, str | None, list[Failure]]:
        failures: list[Failure] = []
        for provider in self.providers:
            try:
                return provider.complete(messages), provider.name, failures
            except LLMError as exc:
                self._failed(failures, exc)
        return None, None, failures

    def stream(self, messages: Sequence[ChatMessage]) -> Iterator[str | tuple[str | None, list[Failure]]]:
        """Yields text deltas, then ``(provider name or None, failures)``. A provider that fails after
        its first token is not followed by another (the user has seen its text): the answer so far is
        then verified as it is."""
        failures: list[Failure] = []
        for provider in self.providers:
            started = False
            try:
                for delta in provider.stream(messages):
                    started = True
                    yield delta
                yield provider.name, failures
                return
            except LLMError as exc:
                self._failed(failures, exc)
                if started:
                    yield provider.name, failures
                    return
        yield None, failures
