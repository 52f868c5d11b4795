"""Exceptions raised by the core. Adapters map backend errors onto these."""

from __future__ import annotations


class RagExplorerError(Exception):
    """Base class for every error the core raises on purpose."""


class ConfigError(RagExplorerError):
    """Settings are invalid or inconsistent (bad value, unknown provider, ...)."""


class LoaderError(RagExplorerError):
    """A document could not be loaded. ``reason`` is a short, user-facing explanation."""

    def __init__(self, reason: str, *, source: str | None = None) -> None:
        super().__init__(reason if source is None else f"{source}: {reason}")
        self.reason = reason
        self.source = source


class EmbedderError(RagExplorerError):
    """The embedder could not be loaded or failed to embed."""


class StoreError(RagExplorerError):
    """The vector store failed (unreachable, corrupt, timed out)."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached right now; the operation may succeed when retried."""


class EmbedderMismatchError(StoreError):
    """The index was built with a different embedder than the one configured."""


class NotFoundError(RagExplorerError):
    """The thing asked for does not exist (or is not visible to the caller)."""


class ForbiddenError(RagExplorerError):
    """The caller may not do this (e.g. a publishable key asking for another collection)."""

    def __init__(self, message: str, *, code: str = "forbidden") -> None:
        super().__init__(message)
        self.code = code


class DeliveryError(RagExplorerError):
    """A support ticket could not be delivered to the configured webhook."""
