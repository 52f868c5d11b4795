"""The LLM port: chat messages, the provider protocol and the classified error every provider raises."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from shared.remote.errors import (  # the LLM layer's names for the shared error model
    BREAKER_NEUTRAL_KINDS,
    ERROR_KINDS,
    RETRYABLE_KINDS,
    ErrorKind,
    ModelCallError,
    clip,
    parse_retry_after,
)

LLMError = ModelCallError
Role = Literal["system", "user", "assistant"]

__all__ = [
    "BREAKER_NEUTRAL_KINDS",
    "ERROR_KINDS",
    "LLM",
    "RETRYABLE_KINDS",
    "ChatMessage",
    "ErrorKind",
    "LLMError",
    "Role",
    "clip",
    "parse_retry_after",
]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@runtime_checkable
class LLM(Protocol):
    """A chat model. Implementations raise only :class:`LLMError` and never retry on their own."""

    name: str  # "openai:gpt-4o-mini", "bedrock:anthropic.claude-3-haiku-20240307-v1:0"

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float) -> str:
        """The whole reply."""
        ...

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        """The reply as text deltas; ``"".join(stream(...))`` equals what :meth:`complete` returns."""
        ...
