"""Retries for calls to model services: full-jitter exponential backoff that honours Retry-After, and only
for the kinds of failure another attempt can fix (:data:`shared.remote.errors.RETRYABLE_KINDS`)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from shared.remote.errors import ModelCallError as LLMError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), without Retry-After."""
        cap = min(self.max_delay, self.base_delay * 2 ** max(0, attempt - 1))
        return cap * rng() if self.jitter else cap

    def delay(self, attempt: int, error: LLMError, rng: Callable[[], float] = random.random) -> float | None:
        """Seconds to wait before the next attempt, or ``None``: don't retry (give up on this provider)."""
        if not error.retryable or attempt >= self.max_attempts:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_delay else None
        return self.backoff(attempt, rng)


NO_RETRY = RetryPolicy(max_attempts=1)


def retry_call(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    classify: Callable[[Exception], LLMError],
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """Call ``fn`` under ``policy`` (used by the remote embedders); raises the last :class:`LLMError`."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            error = classify(exc)
            delay = policy.delay(attempt, error, rng)
            if delay is None:
                raise error from exc
            log.warning(
                "%s attempt %d failed (%s); retrying in %.2f s", error.provider, attempt, error.label, delay
            )
            sleep(delay)
