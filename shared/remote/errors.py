"""Errors of calls to model services (LLM providers and remote embedders), classified the same way for
retries, circuit breakers, metrics and answer reasons; and the helpers their classifiers share."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Literal, get_args

from shared.errors import RagExplorerError

ErrorKind = Literal[
    "auth",
    "rate_limit",
    "quota",
    "timeout",
    "bad_request",
    "content_filter",
    "server",
    "connection",
    "malformed",
    "circuit_open",
]
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)

RETRYABLE_KINDS: frozenset[str] = frozenset({"rate_limit", "server", "timeout", "connection", "malformed"})
"""Kinds worth another attempt at the same provider. ``auth``, ``quota``, ``bad_request`` and
``content_filter`` fail the same way every time; ``circuit_open`` means "don't call it now"."""

BREAKER_NEUTRAL_KINDS: frozenset[str] = frozenset({"bad_request", "content_filter", "circuit_open"})
"""Kinds that say something about the request, not the provider's health: they don't open a breaker."""


class ModelCallError(RagExplorerError):
    """A provider call failed. ``kind`` classifies it for retries, breakers, metrics and answer reasons."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.provider = provider
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    @property
    def label(self) -> str:
        """``rate_limit (429)`` or ``timeout``: the short form used in answer reasons."""
        return f"{self.kind} ({self.status})" if self.status is not None else self.kind

    def __str__(self) -> str:
        return f"{self.provider} failed: {self.label}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind!r}, provider={self.provider!r}, status={self.status!r}, "
            f"retry_after={self.retry_after!r}, message={self.message!r})"
        )


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date), if given."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def clip(text: str, limit: int = 300) -> str:
    """One line, at most ``limit`` characters (error messages from servers can be whole HTML pages)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
