"""Dashboard, alarms and the alarm topic; the query function's canary deployment that rolls back on them.

The functions publish their own metrics in the ``RagExplorer`` namespace (CloudWatch embedded metric
format, one ``service`` dimension per function): ``QueryLatency``, ``QueryFailure`` by ``ErrorType``,
``Answered`` and ``Refused`` (one per ``/query``), ``Feedback`` by ``Rating``, ``Handoff`` by ``Kind`` and
``Decision``, ``ChunksIndexed``, ``DocumentsFailed`` and more (docs/deployment.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from aws_cdk import Duration, RemovalPolicy, Stack
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
from shared.feedback import FeedbackResponse
from shared.models import HandoffOffer

MINUTE = Duration.minutes(1)
# the answer and deflection rates: over a minute they are a handful of questions, over an hour a trend
HOUR = Duration.hours(1)
#: the values of the Handoff metric's dimensions, as the query function emits them (feedback_routes.py)
HANDOFF_KINDS: tuple[str, ...] = get_args(HandoffOffer.model_fields["kind"].annotation)
DECISIONS: tuple[str, ...] = get_args(FeedbackResponse.model_fields["decision"].annotation)


@dataclass(frozen=True, kw_only=True)
class ServiceNames:
    """The ``POWERTOOLS_SERVICE_NAME`` of each function: the ``service`` dimension of its metrics.

    The stage is part of each name (``rag-explorer-prod-query``), so the dimension tells the stages apart:
    with dev and prod in one account and region, dev's metrics never reach prod's alarms (which are prod's
    CodeDeploy rollback alarms) or its dashboard. Powertools reads no other dimension from the
    environment, and the namespace stays ``RagExplorer`` for both stages.
    """

    query: str
    health: str
    ingest: str

    @classmethod
    def of_stage(cls, stage: str) -> ServiceNames:
        return cls(
            query=f"rag-explorer-{stage}-query",
            health=f"rag-explorer-{stage}-health",
            ingest=f"rag-explorer-{stage}-ingest",
        )


def app_metric(
    name: str,
    service: str,
    *,
    statistic: str = "Sum",
    label: str | None = None,
    period: Duration = MINUTE,
    **dimensions: str,
) -> cw.Metric:
    return cw.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={**dimensions, "service": service},
        statistic=statistic,
        period=period,
        label=label,
    )


@dataclass(frozen=True, kw_only=True)
class _Answers:
    """What the help desk's metrics say per hour: the answer rate (and its alarm's form), the estimated
    deflection rate, feedback and handoffs. ``rag-explorer report`` has the exact funnel."""

    answered: cw.Metric
    refused: cw.Metric
    answer_rate: cw.MathExpression
    answer_rate_alarmed: cw.MathExpression
    deflection_estimate: cw.MathExpression
    helpful: cw.Metric
    not_helpful: cw.Metric
    handoffs_by_kind: list[cw.MathExpression]

    @classmethod
    def of(cls, service: str, *, min_questions: int) -> _Answers:
        answered = app_metric("Answered", service, label="Answered", period=HOUR)
        refused = app_metric("Refused", service, label="Refused", period=HOUR)
        questions = {"answered": answered, "refused": refused}
        # CloudWatch treats a missing value as 0 in arithmetic (an hour in which every question was refused
        # has no Answered data point: its rate is 0) and drops a data point that would divide by zero (an
        # hour without questions has no rate)
        answer_rate = cw.MathExpression(
            expression="answered / (answered + refused)",
            using_metrics=questions,
            label="Answer rate",
            period=HOUR,
        )
        # the alarm's: 1 (not breaching) in an hour with fewer than min_questions questions, where a few
        # refusals of off-topic questions would be a rate far below any floor
        answer_rate_alarmed = cw.MathExpression(
            expression=f"IF((answered + refused) >= {min_questions}, answered / (answered + refused), 1)",
            using_metrics=questions,
            label=f"Answer rate (1 in an hour with fewer than {min_questions} questions)",
            period=HOUR,
        )
        not_helpful = app_metric("Feedback", service, label="Not helpful", period=HOUR, Rating="not_helpful")
        handoffs_after_answers = {
            f"handoff_{kind}": app_metric("Handoff", service, period=HOUR, Kind=kind, Decision="answer")
            for kind in HANDOFF_KINDS
        }
        # An ESTIMATE of the deflection rate: answered, minus the answers rated "not helpful", minus the
        # handoffs to a person after an answer, per question. Feedback and handoffs arrive after the
        # question, often in a later hour, and one answer may be both rated down and handed off, so an hour
        # can be off either way (even below 0 in a quiet hour). `rag-explorer report` (and GET
        # /analytics/summary) has the exact funnel, from the interactions themselves.
        deflection_estimate = cw.MathExpression(
            expression=(
                f"(answered - not_helpful - {' - '.join(handoffs_after_answers)}) / (answered + refused)"
            ),
            using_metrics={**questions, "not_helpful": not_helpful, **handoffs_after_answers},
            label="Deflection rate (estimate)",
            period=HOUR,
        )
        handoffs_by_kind = [
            cw.MathExpression(
                expression=" + ".join(f"{kind}_{decision}" for decision in DECISIONS),
                using_metrics={
                    f"{kind}_{decision}": app_metric(
                        "Handoff", service, period=HOUR, Kind=kind, Decision=decision
                    )
                    for decision in DECISIONS
                },
                label=kind,
                period=HOUR,
            )
            for kind in HANDOFF_KINDS
        ]
        return cls(
            answered=answered,
            refused=refused,
            answer_rate=answer_rate,
            answer_rate_alarmed=answer_rate_alarmed,
            deflection_estimate=deflection_estimate,
            helpful=app_metric("Feedback", service, label="Helpful", period=HOUR, Rating="helpful"),
            not_helpful=not_helpful,
            handoffs_by_kind=handoffs_by_kind,
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
    red: cw.Metric | None  # the OpenSearch domain's cluster status (None: the store is S3 Vectors)
    yellow: cw.Metric | None
    answers: _Answers


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
        domain: opensearch.IDomain | None,
        config: MonitoringConfig,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._alarm_topic(config=config, removal_policy=removal_policy)
        metrics = self._metrics(
            services=services,
            api=api,
            dead_letter_queue=dead_letter_queue,
            domain=domain,
            config=config,
        )
        self._alarms(metrics, query_alias=query_alias, config=config)
        # what CodeDeploy rolls a canary back on: failures of the new code. Not the answer-rate alarm: a low
        # answer rate is a content problem (a bad ingest, a broken index) that no rollback of the function
        # fixes, and an hour-long alarm would not fire within the canary's 5 minutes anyway.
        self.deployment_alarms = [self.query_errors_alarm, self.query_latency_alarm, self.api_5xx_alarm]
        self._dashboard(
            metrics,
            services=services,
            functions=functions,
            api=api,
            queue=queue,
            domain=domain,
            config=config,
        )

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
        topic = sns.Topic(
            self, "AlarmTopic", display_name="RAG Explorer alarms", enforce_ssl=True, master_key=key
        )
        # enforce_ssl gives the topic a policy of its own (the TLS Deny), which replaces SNS's default one:
        # without this Allow, CloudWatch could not publish and no alarm would reach the subscribers.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        return topic

    @staticmethod
    def _metrics(
        *,
        services: ServiceNames,
        api: apigw.RestApi,
        dead_letter_queue: sqs.IQueue,
        domain: opensearch.IDomain | None,
        config: MonitoringConfig,
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
        # the stage's own query function only (an exact match on its service dimension)
        this_stage = f'service="{services.query}"'
        failures_by_type = cw.MathExpression(
            expression=(
                f"SEARCH('{{{NAMESPACE},ErrorType,service}} MetricName=\"QueryFailure\" {this_stage}', "
                "'Sum', 60)"
            ),
            label="QueryFailure by ErrorType",
            period=MINUTE,
        )
        llm_failures = cw.MathExpression(
            expression=(
                f'SEARCH(\'{{{NAMESPACE},ErrorType,Provider,service}} MetricName="LLMFailure" '
                f"{this_stage}', 'Sum', 60)"
            ),
            label="LLMFailure by provider and type",
            period=MINUTE,
        )
        chunks = app_metric("ChunksIndexed", services.ingest)
        documents_failed = app_metric("DocumentsFailed", services.ingest)
        dlq_depth = dead_letter_queue.metric_approximate_number_of_messages_visible(
            statistic="Maximum", period=MINUTE
        )
        # S3 Vectors has no cluster to watch: its failures are the functions' (QueryFailure, DocumentsFailed)
        red = domain.metric_cluster_status_red(statistic="Maximum", period=MINUTE) if domain else None
        yellow = domain.metric_cluster_status_yellow(statistic="Maximum", period=MINUTE) if domain else None
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
            answers=_Answers.of(services.query, min_questions=config.answer_rate_min_questions),
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
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ) -> cw.Alarm:
        created = cw.Alarm(
            self,
            alarm_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints,
            comparison_operator=comparison,
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
        self.cluster_alarms: list[cw.Alarm] = []
        if metrics.red is not None and metrics.yellow is not None:
            self.cluster_alarms = [
                self._alarm(action, "ClusterRedAlarm", metrics.red, 1, "OpenSearch cluster status is red"),
                self._alarm(
                    action,
                    "ClusterYellowAlarm",
                    metrics.yellow,
                    1,
                    "OpenSearch cluster status yellow for 10 minutes",
                    periods=10,
                ),
            ]
        # the content is wrong, not the code: a bad ingest (documents missing or unreadable) or a broken
        # index answers fewer questions. One hour of the rate below the floor; an hour with fewer than
        # answer_rate_min_questions questions counts as 1, and an hour without any has no data (not
        # breaching). Not a CodeDeploy rollback alarm (deployment_alarms).
        self.answer_rate_alarm = self._alarm(
            action,
            "AnswerRateAlarm",
            metrics.answers.answer_rate_alarmed,
            config.answer_rate_floor,
            f"Answer rate (Answered / (Answered + Refused) of /query) < {config.answer_rate_floor} over an "
            f"hour with at least {config.answer_rate_min_questions} questions: a bad ingest or a broken "
            "index? Check rag-explorer report and GET /health/detailed (docs/deployment.md)",
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
        )

    def _dashboard(
        self,
        metrics: _Metrics,
        *,
        services: ServiceNames,
        functions: dict[str, lambda_.IFunction],
        api: apigw.RestApi,
        queue: sqs.IQueue,
        domain: opensearch.IDomain | None,
        config: MonitoringConfig,
    ) -> None:
        alarms = [
            self.query_latency_alarm,
            self.api_5xx_alarm,
            self.query_errors_alarm,
            self.dlq_alarm,
            self.ingest_failures_alarm,
            *self.cluster_alarms,
            self.answer_rate_alarm,
        ]
        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24, height=3),
        )
        self.dashboard.add_widgets(*self._query_widgets(metrics, api=api))
        self.dashboard.add_widgets(*self._answer_widgets(metrics.answers, floor=config.answer_rate_floor))
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
    def _answer_widgets(answers: _Answers, *, floor: float) -> list[cw.IWidget]:
        """The help desk, per hour: answer rate (with the alarm's floor), the deflection estimate, feedback
        and handoffs."""
        share = cw.YAxisProps(min=0, max=1, show_units=False)
        return [
            cw.GraphWidget(
                title="Answer rate (hourly)",
                left=[answers.answer_rate],
                left_y_axis=share,
                left_annotations=[cw.HorizontalAnnotation(value=floor, label="alarm floor")],
                right=[answers.answered, answers.refused],
                width=6,
            ),
            cw.GraphWidget(
                title="Deflection rate, estimated (hourly; exact: rag-explorer report)",
                left=[answers.deflection_estimate, answers.answer_rate],
                left_y_axis=cw.YAxisProps(max=1, show_units=False),
                width=6,
            ),
            cw.GraphWidget(title="Feedback per hour", left=[answers.helpful, answers.not_helpful], width=6),
            cw.GraphWidget(title="Handoffs per hour, by kind", left=answers.handoffs_by_kind, width=6),
        ]

    @staticmethod
    def _ingest_and_search_widgets(
        metrics: _Metrics, *, services: ServiceNames, queue: sqs.IQueue, domain: opensearch.IDomain | None
    ) -> list[cw.IWidget]:
        width = 8 if domain else 12  # a row of 24
        widgets: list[cw.IWidget] = [
            cw.GraphWidget(
                title="Ingest throughput",
                left=[metrics.chunks, app_metric("DocumentsIndexed", services.ingest)],
                right=[metrics.documents_failed, app_metric("DocumentsRemoved", services.ingest)],
                width=width,
            ),
            cw.GraphWidget(
                title="Ingest queue and dead-letter queue",
                left=[
                    queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=MINUTE)
                ],
                right=[metrics.dlq_depth],
                width=width,
            ),
        ]
        if domain is not None and metrics.red is not None and metrics.yellow is not None:
            widgets.append(
                cw.GraphWidget(
                    title="OpenSearch cluster status",
                    left=[metrics.red, metrics.yellow],
                    right=[
                        domain.metric_free_storage_space(period=MINUTE),
                        domain.metric_nodes(statistic="Minimum", period=MINUTE),
                    ],
                    width=width,
                )
            )
        return widgets

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
