"""The embedding port."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


@runtime_checkable
class TokenCounter(Protocol):
    """Tokenizes text the way the embedder will see it (used by the chunker)."""

    max_tokens: int

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character ``(start, end)`` offsets of each token of ``text``, special tokens excluded,
        without truncation."""
        ...


@runtime_checkable
class Embedder(TokenCounter, Protocol):
    """Turns text into L2-normalised float32 vectors."""

    name: str  # stable identifier recorded in the index, e.g. "local:all-MiniLM-L6-v2"
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Shape ``(len(texts), dimension)``, float32, each row of unit length."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Shape ``(dimension,)``, float32, unit length."""
        ...
