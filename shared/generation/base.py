"""The LLM port and its error model."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

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
RETRYABLE: frozenset[str] = frozenset({"rate_limit", "server", "timeout", "connection", "malformed"})


class LLMError(RagExplorerError):
    """A provider call failed; ``kind`` classifies it (metrics, reasons, retry decisions)."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{provider} failed: {kind}" + (f" ({status})" if status else "") + f": {message}")
        self.kind = kind
        self.provider = provider
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    @property
    def short(self) -> str:
        return f"{self.provider} failed: {self.kind}" + (f" ({self.status})" if self.status else "")


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@runtime_checkable
class LLM(Protocol):
    name: str  # "openai:gpt-4o-mini", "bedrock:anthropic.claude-3-haiku-20240307-v1:0"

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int = 512) -> str: ...

    def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int = 512) -> Iterator[str]: ...
