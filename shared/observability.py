"""The observability ports of the core: what ``shared`` needs of a logger and of a metrics sink.

The Powertools implementation, used by the Lambda handlers, is in :mod:`shared.adapters.telemetry`; the
local server and the tests use :class:`NullMetrics` or a recorder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class LoggerLike(Protocol):
    """What ``shared`` needs of a logger: a stdlib ``logging.Logger`` or a Powertools ``Logger``."""

    def info(
        self, msg: object, *args: object, exc_info: Any = ..., extra: Mapping[str, object] | None = ...
    ) -> None: ...

    def warning(
        self, msg: object, *args: object, exc_info: Any = ..., extra: Mapping[str, object] | None = ...
    ) -> None: ...

    def error(
        self, msg: object, *args: object, exc_info: Any = ..., extra: Mapping[str, object] | None = ...
    ) -> None: ...


class MetricsSink(Protocol):
    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        """Add to a counter; ``dimensions`` apply to this data point only."""
        ...

    def milliseconds(self, name: str, value: float) -> None: ...


class NullMetrics:
    """Records nothing (the local server)."""

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        return None

    def milliseconds(self, name: str, value: float) -> None:
        return None
