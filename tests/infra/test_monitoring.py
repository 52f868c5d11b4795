"""Dashboard, alarms, alarm topic and the query function's canary deployment."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import Synthesized


def alarms(stage: Synthesized) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in stage.resources(stage.stateless, "AWS::CloudWatch::Alarm").items()}


def alarm(stage: Synthesized, prefix: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(k, v) for k, v in alarms(stage).items() if k.startswith(f"Monitoring{prefix}")]
    return found


def metric_of(props: dict[str, Any]) -> tuple[str, str, str, list[Any]]:
    """(namespace, metric name, statistic, dimensions) of a single-metric alarm, in either template form."""
    if "Metrics" in props:
        (query,) = props["Metrics"]
        stat = query["MetricStat"]
        metric = stat["Metric"]
        return metric["Namespace"], metric["MetricName"], stat["Stat"], metric.get("Dimensions", [])
    statistic = props.get("ExtendedStatistic") or props["Statistic"]
    return props["Namespace"], props["MetricName"], statistic, props.get("Dimensions", [])


def test_every_alarm_notifies_the_topic(stage: Synthesized) -> None:
    (topic_id,) = stage.resources(stage.stateless, "AWS::SNS::Topic")
    found = alarms(stage)
    assert len(found) == 7
    for props in found.values():
        assert props["AlarmActions"] == [{"Ref": topic_id}] and props["OKActions"] == [{"Ref": topic_id}]
        assert props["TreatMissingData"] == "notBreaching"


def test_alarm_metrics(stage: Synthesized) -> None:
    namespace, name, statistic, dimensions = metric_of(alarm(stage, "QueryLatencyAlarm")[1])
    assert (namespace, name, statistic) == ("RagExplorer", "QueryLatency", "p99")
    assert dimensions == [{"Name": "service", "Value": "rag-explorer-query"}]
    _, name, _, dimensions = metric_of(alarm(stage, "IngestFailuresAlarm")[1])
    assert (name, dimensions[0]["Value"]) == ("DocumentsFailed", "rag-explorer-ingest")
    _, dlq = alarm(stage, "DeadLetterQueueAlarm")
    assert metric_of(dlq)[1] == "ApproximateNumberOfMessagesVisible" and dlq["Threshold"] == 1
    assert metric_of(alarm(stage, "ClusterRedAlarm")[1])[:2] == ("AWS/ES", "ClusterStatus.red")
    assert metric_of(alarm(stage, "ClusterYellowAlarm")[1])[:2] == ("AWS/ES", "ClusterStatus.yellow")
    _, rate = alarm(stage, "Api5xxAlarm")
    (expression,) = [m for m in rate["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "100 * errors"
    assert any(
        m.get("MetricStat", {}).get("Metric", {}).get("MetricName") == "5XXError" for m in rate["Metrics"]
    )


def test_dashboard_shows_latency_errors_throughput_dlq_and_cluster(stage: Synthesized) -> None:
    (dashboard,) = stage.resources(stage.stateless, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for needle in (
        "QueryLatency",
        "p50",
        "p95",
        "p99",
        "QueryFailure",
        "ErrorType",
        "ChunksIndexed",
        "ApproximateNumberOfMessagesVisible",
        "ClusterStatus.red",
        "ClusterStatus.yellow",
    ):
        assert needle in body, needle


def test_alarm_topic_is_encrypted_with_a_key_in_prod(dev: Synthesized, prod: Synthesized) -> None:
    (dev_topic,) = dev.resources(dev.stateless, "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" not in dev_topic["Properties"]
    (prod_topic,) = prod.resources(prod.stateless, "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in prod_topic["Properties"]
    (key,) = prod.resources(prod.stateless, "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    assert "cloudwatch.amazonaws.com" in json.dumps(key["Properties"]["KeyPolicy"])


def test_query_deploys_as_a_canary_that_rolls_back_on_the_alarms(stage: Synthesized) -> None:
    (group,) = stage.resources(stage.stateless, "AWS::CodeDeploy::DeploymentGroup").values()
    props = group["Properties"]
    assert "Canary10Percent5Minutes" in json.dumps(props["DeploymentConfigName"])
    assert set(props["AutoRollbackConfiguration"]["Events"]) == {
        "DEPLOYMENT_FAILURE",
        "DEPLOYMENT_STOP_ON_ALARM",
        "DEPLOYMENT_STOP_ON_REQUEST",
    }
    watched = {a["Name"]["Ref"] for a in props["AlarmConfiguration"]["Alarms"]}
    expected = {alarm(stage, p)[0] for p in ("QueryErrorsAlarm", "QueryLatencyAlarm", "Api5xxAlarm")}
    assert watched == expected
    (alias,) = stage.resources(stage.stateless, "AWS::Lambda::Alias").values()
    update = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    assert update["DeploymentGroupName"] == {
        "Ref": next(iter(stage.resources(stage.stateless, "AWS::CodeDeploy::DeploymentGroup")))
    }
