"""Embedders: the :class:`Embedder` port and its adapters."""

from shared.embeddings.base import Embedder, TokenCounter

__all__ = ["Embedder", "TokenCounter"]
