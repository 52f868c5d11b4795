"""Vector stores: the :class:`VectorStore` port and its adapters."""

from shared.stores.base import VectorStore

__all__ = ["VectorStore"]
