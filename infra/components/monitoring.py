"""Dashboard, alarms and the alarm topic; the query function's canary deployment that rolls back on them.

The functions publish their own metrics in the ``RagExplorer`` namespace (CloudWatch embedded metric
format, one ``service`` dimension per function): ``QueryLatency``, ``QueryFailure`` by ``ErrorType``,
``ChunksIndexed``, ``DocumentsFailed`` and more (docs/deployment.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import MonitoringConfig
from infra.nag import acknowledge
from shared.adapters.telemetry import NAMESPACE

MINUTE = Duration.minutes(1)


@dataclass(frozen=True, kw_only=True)
class ServiceNames:
    """The ``POWERTOOLS_SERVICE_NAME`` of each function: the ``service`` dimension of its metrics."""

    query: str
    health: str
    ingest: str


def app_metric(name: str, service: str, *, statistic: str = "Sum", label: str | None = None) -> cw.Metric:
    return cw.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic=statistic,
        period=MINUTE,
        label=label,
    )


@dataclass(frozen=True, kw_only=True)
class _Metrics:
    """The metrics the alarms and the dashboard share."""

    latency: dict[str, cw.Metric]
    api_5xx_rate: cw.MathExpression
    failures_by_type: cw.MathExpression
    llm_failures: cw.MathExpression
    chunks: cw.Metric
    documents_failed: cw.Metric
    dlq_depth: cw.Metric
    red: cw.Metric
    yellow: cw.Metric


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        services: ServiceNames,
        query_alias: lambda_.Alias,
        functions: dict[str, lambda_.IFunction],
        api: apigw.RestApi,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        domain: opensearch.IDomain,
        config: MonitoringConfig,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._alarm_topic(config=config, removal_policy=removal_policy)
        metrics = self._metrics(
            services=services, api=api, dead_letter_queue=dead_letter_queue, domain=domain
        )
        self._alarms(metrics, query_alias=query_alias, config=config)
        self.deployment_alarms = [self.query_errors_alarm, self.query_latency_alarm, self.api_5xx_alarm]
        self._dashboard(metrics, services=services, functions=functions, api=api, queue=queue, domain=domain)

    def _alarm_topic(self, *, config: MonitoringConfig, removal_policy: RemovalPolicy) -> sns.Topic:
        key = None
        if config.alarm_topic_cmk:
            key = kms.Key(
                self,
                "AlarmTopicKey",
                description="RAG Explorer alarm topic",
                enable_key_rotation=True,
                removal_policy=removal_policy,
            )
            # CloudWatch publishes alarms to the encrypted topic (the AWS managed key would not allow it)
            key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        return sns.Topic(
            self, "AlarmTopic", display_name="RAG Explorer alarms", enforce_ssl=True, master_key=key
        )

    @staticmethod
    def _metrics(
        *,
        services: ServiceNames,
        api: apigw.RestApi,
        dead_letter_queue: sqs.IQueue,
        domain: opensearch.IDomain,
    ) -> _Metrics:
        latency = {
            p: app_metric("QueryLatency", services.query, statistic=p, label=f"QueryLatency {p}")
            for p in ("p50", "p95", "p99")
        }
        api_5xx_rate = cw.MathExpression(
            expression="100 * errors",
            using_metrics={"errors": api.metric_server_error(statistic="Average", period=MINUTE)},
            label="API 5xx rate (%)",
            period=MINUTE,
        )
        failures_by_type = cw.MathExpression(
            expression=f"SEARCH('{{{NAMESPACE},ErrorType,service}} MetricName=\"QueryFailure\"', 'Sum', 60)",
            label="QueryFailure by ErrorType",
            period=MINUTE,
        )
        llm_failures = cw.MathExpression(
            expression=(
                f"SEARCH('{{{NAMESPACE},ErrorType,Provider,service}} MetricName=\"LLMFailure\"', 'Sum', 60)"
            ),
            label="LLMFailure by provider and type",
            period=MINUTE,
        )
        chunks = app_metric("ChunksIndexed", services.ingest)
        documents_failed = app_metric("DocumentsFailed", services.ingest)
        dlq_depth = dead_letter_queue.metric_approximate_number_of_messages_visible(
            statistic="Maximum", period=MINUTE
        )
        red = domain.metric_cluster_status_red(statistic="Maximum", period=MINUTE)
        yellow = domain.metric_cluster_status_yellow(statistic="Maximum", period=MINUTE)
        return _Metrics(
            latency=latency,
            api_5xx_rate=api_5xx_rate,
            failures_by_type=failures_by_type,
            llm_failures=llm_failures,
            chunks=chunks,
            documents_failed=documents_failed,
            dlq_depth=dlq_depth,
            red=red,
            yellow=yellow,
        )

    def _alarm(
        self,
        action: cw.IAlarmAction,
        alarm_id: str,
        metric: cw.IMetric,
        threshold: float,
        description: str,
        *,
        periods: int = 1,
        datapoints: int | None = None,
    ) -> cw.Alarm:
        created = cw.Alarm(
            self,
            alarm_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        created.add_alarm_action(action)
        created.add_ok_action(action)
        return created

    def _alarms(self, metrics: _Metrics, *, query_alias: lambda_.Alias, config: MonitoringConfig) -> None:
        action = cw_actions.SnsAction(self.topic)
        self.query_latency_alarm = self._alarm(
            action,
            "QueryLatencyAlarm",
            metrics.latency["p99"],
            config.query_latency_p99_ms,
            f"Query latency p99 >= {config.query_latency_p99_ms} ms in 3 of 5 minutes",
            periods=5,
            datapoints=3,
        )
        self.api_5xx_alarm = self._alarm(
            action,
            "Api5xxAlarm",
            metrics.api_5xx_rate,
            config.api_5xx_rate_percent,
            f"API 5xx responses >= {config.api_5xx_rate_percent}% of requests in 3 of 5 minutes",
            periods=5,
            datapoints=3,
        )
        self.query_errors_alarm = self._alarm(
            action,
            "QueryErrorsAlarm",
            query_alias.metric_errors(period=MINUTE, statistic="Sum"),
            1,
            "The query function's live alias raised an unhandled error",
        )
        self.dlq_alarm = self._alarm(
            action,
            "DeadLetterQueueAlarm",
            metrics.dlq_depth,
            1,
            "Ingest messages gave up and wait in the dead-letter queue",
        )
        self.ingest_failures_alarm = self._alarm(
            action,
            "IngestFailuresAlarm",
            metrics.documents_failed,
            1,
            "Documents failed to ingest (DocumentsFailed)",
        )
        self.cluster_red_alarm = self._alarm(
            action, "ClusterRedAlarm", metrics.red, 1, "OpenSearch cluster status is red"
        )
        self.cluster_yellow_alarm = self._alarm(
            action,
            "ClusterYellowAlarm",
            metrics.yellow,
            1,
            "OpenSearch cluster status yellow for 10 minutes",
            periods=10,
        )

    def _dashboard(
        self,
        metrics: _Metrics,
        *,
        services: ServiceNames,
        functions: dict[str, lambda_.IFunction],
        api: apigw.RestApi,
        queue: sqs.IQueue,
        domain: opensearch.IDomain,
    ) -> None:
        alarms = [
            self.query_latency_alarm,
            self.api_5xx_alarm,
            self.query_errors_alarm,
            self.dlq_alarm,
            self.ingest_failures_alarm,
            self.cluster_red_alarm,
            self.cluster_yellow_alarm,
        ]
        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24, height=3),
        )
        self.dashboard.add_widgets(*self._query_widgets(metrics, api=api))
        self.dashboard.add_widgets(
            *self._ingest_and_search_widgets(metrics, services=services, queue=queue, domain=domain)
        )
        self.dashboard.add_widgets(*self._function_widgets(functions))

    @staticmethod
    def _query_widgets(metrics: _Metrics, *, api: apigw.RestApi) -> list[cw.IWidget]:
        return [
            cw.GraphWidget(title="Query latency (ms)", left=list(metrics.latency.values()), width=8),
            cw.GraphWidget(
                title="Query failures by type", left=[metrics.failures_by_type, metrics.llm_failures], width=8
            ),
            cw.GraphWidget(
                title="API requests and errors",
                left=[
                    api.metric_count(period=MINUTE, statistic="Sum"),
                    api.metric_client_error(period=MINUTE, statistic="Sum"),
                    api.metric_server_error(period=MINUTE, statistic="Sum"),
                ],
                right=[metrics.api_5xx_rate],
                width=8,
            ),
        ]

    @staticmethod
    def _ingest_and_search_widgets(
        metrics: _Metrics, *, services: ServiceNames, queue: sqs.IQueue, domain: opensearch.IDomain
    ) -> list[cw.IWidget]:
        return [
            cw.GraphWidget(
                title="Ingest throughput",
                left=[metrics.chunks, app_metric("DocumentsIndexed", services.ingest)],
                right=[metrics.documents_failed, app_metric("DocumentsRemoved", services.ingest)],
                width=8,
            ),
            cw.GraphWidget(
                title="Ingest queue and dead-letter queue",
                left=[
                    queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=MINUTE)
                ],
                right=[metrics.dlq_depth],
                width=8,
            ),
            cw.GraphWidget(
                title="OpenSearch cluster status",
                left=[metrics.red, metrics.yellow],
                right=[
                    domain.metric_free_storage_space(period=MINUTE),
                    domain.metric_nodes(statistic="Minimum", period=MINUTE),
                ],
                width=8,
            ),
        ]

    @staticmethod
    def _function_widgets(functions: dict[str, lambda_.IFunction]) -> list[cw.IWidget]:
        return [
            cw.GraphWidget(
                title=f"{name} function",
                left=[
                    fn.metric_invocations(period=MINUTE),
                    fn.metric_errors(period=MINUTE),
                    fn.metric_throttles(period=MINUTE),
                ],
                right=[fn.metric_duration(period=MINUTE, statistic="p95")],
                width=8,
            )
            for name, fn in functions.items()
        ]


class CanaryDeployment(Construct):
    """CodeDeploy shifts the ``live`` alias 10% for 5 minutes, then all; it rolls back on any alarm."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alias: lambda_.Alias,
        alarms: list[cw.Alarm],
    ) -> None:
        super().__init__(scope, construct_id)
        self.group = codedeploy.LambdaDeploymentGroup(
            self,
            "DeploymentGroup",
            alias=alias,
            deployment_config=codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_5_MINUTES,
            alarms=alarms,
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
            ),
        )
        acknowledge(
            self.group,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSCodeDeployRoleForLambdaLimited]",
            "CodeDeploy's service role for Lambda canaries uses the AWS managed policy made for it.",
        )
