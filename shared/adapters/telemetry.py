"""Metrics, logs and traces for the serverless runtime: Powertools behind the core's ports.

The Lambda handlers own a Powertools ``Metrics`` (from :func:`lambda_telemetry`) and pass it in wrapped in
:class:`PowertoolsMetrics` (a :class:`shared.observability.MetricsSink`).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer

#: The CloudWatch namespace of every metric (the handlers and the dashboards and alarms in infra/).
NAMESPACE = "RagExplorer"


def lambda_telemetry() -> tuple[Logger, Tracer, Metrics]:
    """The Powertools logger, tracer and metrics every handler builds at module scope (the metrics in
    :data:`NAMESPACE`)."""
    from aws_lambda_powertools import Logger, Metrics, Tracer

    # an invocation may publish no metric (a health check, a rejected request): expected, not a warning
    warnings.filterwarnings("ignore", "No application metrics to publish")
    return Logger(), Tracer(), Metrics(namespace=NAMESPACE)


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
