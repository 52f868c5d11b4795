"""Metrics for the serverless runtime, behind a tiny port so that ``shared`` stays testable offline.

The Lambda handlers own a Powertools ``Metrics`` (from :func:`lambda_telemetry`) and pass it in wrapped in
:class:`PowertoolsMetrics`; the local server and the tests use :class:`NullMetrics` or a recorder.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer

NAMESPACE = "RagExplorer"


def lambda_telemetry() -> tuple[Logger, Tracer, Metrics]:
    """The Powertools logger, tracer and metrics every handler builds at module scope (the metrics in
    :data:`NAMESPACE`)."""
    from aws_lambda_powertools import Logger, Metrics, Tracer

    # an invocation may publish no metric (a health check, a rejected request): expected, not a warning
    warnings.filterwarnings("ignore", "No application metrics to publish")
    return Logger(), Tracer(), Metrics(namespace=NAMESPACE)


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


class PowertoolsMetrics:
    """CloudWatch embedded metric format through Powertools.

    Data points without extra dimensions go into the handler's ``Metrics`` buffer (flushed by
    ``@metrics.log_metrics``). A data point with its own dimensions (``QueryFailure`` by ``ErrorType``)
    is written at once with ``single_metric`` so that the dimension does not leak onto the others.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        if not dimensions:
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
            return
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=value,
            namespace=self.metrics.provider.namespace,
            default_dimensions=self.metrics.default_dimensions,
        ) as metric:
            for key, dim in dimensions.items():
                metric.add_dimension(name=key, value=dim)

    def milliseconds(self, name: str, value: float) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        self.metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)
