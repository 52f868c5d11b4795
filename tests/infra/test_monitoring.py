"""Dashboard, alarms, alarm topic and the query function's canary deployment."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.components.monitoring import DECISIONS, HANDOFF_KINDS
from infra.config import MonitoringConfig, stage_config
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
    assert len(found) == 8
    for props in found.values():
        assert props["AlarmActions"] == [{"Ref": topic_id}] and props["OKActions"] == [{"Ref": topic_id}]
        assert props["TreatMissingData"] == "notBreaching"


def test_alarm_metrics(stage: Synthesized) -> None:
    namespace, name, statistic, dimensions = metric_of(alarm(stage, "QueryLatencyAlarm")[1])
    assert (namespace, name, statistic) == ("RagExplorer", "QueryLatency", "p99")
    assert dimensions == [{"Name": "service", "Value": f"rag-explorer-{stage.stage}-query"}]
    _, name, _, dimensions = metric_of(alarm(stage, "IngestFailuresAlarm")[1])
    assert (name, dimensions[0]["Value"]) == ("DocumentsFailed", f"rag-explorer-{stage.stage}-ingest")
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
    # a low answer rate is a content problem (ingest, index), not the new code's: it never rolls back
    assert alarm(stage, "AnswerRateAlarm")[0] not in watched
    (alias,) = stage.resources(stage.stateless, "AWS::Lambda::Alias").values()
    update = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    assert update["DeploymentGroupName"] == {
        "Ref": next(iter(stage.resources(stage.stateless, "AWS::CodeDeploy::DeploymentGroup")))
    }


# --- the help desk: answer rate, deflection estimate, feedback, handoffs ----------------------------------


def evaluate(expression: str, **values: float) -> float:
    """A metric math expression of these tests on one data point, missing values already 0 (as CloudWatch
    treats them in arithmetic); IF as CloudWatch's (only the scalar and comparison forms used here)."""

    def if_(condition: float, true_value: float, false_value: float) -> float:
        return true_value if condition else false_value

    namespace = {"__builtins__": {}, "IF": if_, **values}
    result = eval(expression, namespace)  # the expressions of our own templates
    return float(result)


def query_metric(stage: str, name: str, **dimensions: str) -> tuple[str, str, dict[str, str]]:
    return ("RagExplorer", name, {**dimensions, "service": f"rag-explorer-{stage}-query"})


def test_answer_rate_alarm(stage: Synthesized) -> None:
    """Below the stage's floor for one hour, only in an hour with enough questions; missing data is not
    breaching; it notifies the topic like every alarm."""
    config = stage_config(stage.stage).monitoring
    assert config.answer_rate_floor == (0.3 if stage.stage == "dev" else 0.5)
    assert config.answer_rate_min_questions == 20
    _, props = alarm(stage, "AnswerRateAlarm")
    assert props["ComparisonOperator"] == "LessThanThreshold"
    assert props["Threshold"] == config.answer_rate_floor
    assert props["EvaluationPeriods"] == 1 and props.get("DatapointsToAlarm", 1) == 1
    assert props["TreatMissingData"] == "notBreaching"
    (expression,) = [m for m in props["Metrics"] if "Expression" in m]
    assert expression["ReturnData"] is True
    assert expression["Expression"] == "IF((answered + refused) >= 20, answered / (answered + refused), 1)"
    inputs = {m["Id"]: m["MetricStat"] for m in props["Metrics"] if "MetricStat" in m}
    assert set(inputs) == {"answered", "refused"}
    for metric_id, name in (("answered", "Answered"), ("refused", "Refused")):
        stat = inputs[metric_id]
        assert (stat["Metric"]["Namespace"], stat["Metric"]["MetricName"]) == ("RagExplorer", name)
        assert stat["Metric"]["Dimensions"] == [
            {"Name": "service", "Value": f"rag-explorer-{stage.stage}-query"}
        ]
        assert (stat["Period"], stat["Stat"]) == (3600, "Sum")
    floor = config.answer_rate_floor
    rate = expression["Expression"]
    assert evaluate(rate, answered=0, refused=25) == 0 < floor  # a broken index: every question refused
    assert evaluate(rate, answered=5, refused=20) == 0.2 < floor
    assert evaluate(rate, answered=60, refused=40) == 0.6 >= floor
    assert evaluate(rate, answered=0, refused=19) == 1  # too few questions to judge
    assert floor in (0.3, 0.5) and "a bad ingest or a broken index" in props["AlarmDescription"]


def test_answer_rate_floor_is_a_share_and_the_minimum_a_count() -> None:
    assert MonitoringConfig(answer_rate_floor=0).answer_rate_floor == 0
    assert MonitoringConfig(answer_rate_floor=1).answer_rate_floor == 1
    for floor in (-0.1, 1.5, 50, float("nan")):
        with pytest.raises(ValueError, match="answer_rate_floor"):
            MonitoringConfig(answer_rate_floor=floor)
    with pytest.raises(ValueError, match="answer_rate_min_questions"):
        MonitoringConfig(answer_rate_min_questions=0)


def dashboard_widgets(stage: Synthesized) -> dict[str, dict[str, Any]]:
    """Title -> properties of each dashboard widget (the body's references replaced by a placeholder)."""
    (dashboard,) = stage.resources(stage.stateless, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    text = "".join(part if isinstance(part, str) else "REF" for part in body["Fn::Join"][1])
    return {w["properties"].get("title", ""): w["properties"] for w in json.loads(text)["widgets"]}


def graph(widget: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str, dict[str, str]]]]:
    """(the expressions, id (or label) -> (namespace, name, dimensions) of the metrics) of a graph widget;
    every metric summed per hour."""
    expressions, metrics = [], {}
    for line in widget["metrics"]:
        options = line[-1] if isinstance(line[-1], dict) else {}
        if "expression" in options:
            expressions.append(options)
            continue
        namespace, name, *pairs = line[:-1] if options else line
        dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
        metrics[options.get("id") or options.get("label") or name] = (namespace, name, dimensions)
        assert options.get("period") == 3600 and options.get("stat") == "Sum", line
    for expression in expressions:
        assert expression["period"] == 3600, expression
    return expressions, metrics


def test_dashboard_answer_rate_with_the_alarm_floor(stage: Synthesized) -> None:
    widget = dashboard_widgets(stage)["Answer rate (hourly)"]
    (rate,), metrics = graph(widget)
    assert rate["expression"] == "answered / (answered + refused)"
    assert metrics == {
        "answered": query_metric(stage.stage, "Answered"),
        "refused": query_metric(stage.stage, "Refused"),
    }
    assert evaluate(rate["expression"], answered=30, refused=10) == 0.75
    assert evaluate(rate["expression"], answered=0, refused=10) == 0  # Answered missing: 0 in arithmetic
    (floor,) = widget["annotations"]["horizontal"]
    assert floor["value"] == stage_config(stage.stage).monitoring.answer_rate_floor
    assert widget["yAxis"]["left"] == {"min": 0, "max": 1, "showUnits": False}


def test_dashboard_deflection_estimate(stage: Synthesized) -> None:
    """(Answered - Feedback[not_helpful] - Handoff[after an answer, every kind]) / (Answered + Refused)."""
    widget = dashboard_widgets(stage)["Deflection rate, estimated (hourly; exact: rag-explorer report)"]
    expressions, metrics = graph(widget)
    by_label = {e["label"]: e["expression"] for e in expressions}
    estimate = by_label["Deflection rate (estimate)"]
    assert estimate == (
        "(answered - not_helpful - handoff_form - handoff_mailto - handoff_webhook) / (answered + refused)"
    )
    assert by_label["Answer rate"] == "answered / (answered + refused)"
    assert HANDOFF_KINDS == ("form", "mailto", "webhook")
    assert metrics == {
        "answered": query_metric(stage.stage, "Answered"),
        "refused": query_metric(stage.stage, "Refused"),
        "not_helpful": query_metric(stage.stage, "Feedback", Rating="not_helpful"),
        **{
            f"handoff_{k}": query_metric(stage.stage, "Handoff", Decision="answer", Kind=k)
            for k in HANDOFF_KINDS
        },
    }
    # 100 questions, 80 answered, 6 of the answers rated down, 4 handed off (3 form, 1 webhook): 70%
    values = {"answered": 80, "refused": 20, "not_helpful": 6, "handoff_form": 3, "handoff_webhook": 1}
    assert evaluate(estimate, **{"handoff_mailto": 0, **values}) == 0.7


def test_dashboard_feedback_and_handoffs_by_kind(stage: Synthesized) -> None:
    widgets = dashboard_widgets(stage)
    expressions, metrics = graph(widgets["Feedback per hour"])
    assert not expressions
    assert metrics == {
        "Helpful": query_metric(stage.stage, "Feedback", Rating="helpful"),
        "Not helpful": query_metric(stage.stage, "Feedback", Rating="not_helpful"),
    }
    expressions, metrics = graph(widgets["Handoffs per hour, by kind"])
    assert DECISIONS == ("answer", "refuse")
    assert {e["label"]: e["expression"] for e in expressions} == {
        kind: f"{kind}_answer + {kind}_refuse" for kind in HANDOFF_KINDS
    }
    assert metrics == {
        f"{kind}_{decision}": query_metric(stage.stage, "Handoff", Decision=decision, Kind=kind)
        for kind in HANDOFF_KINDS
        for decision in DECISIONS
    }


def test_answer_rate_alarm_is_on_the_dashboard(stage: Synthesized) -> None:
    (status,) = [w for w in dashboard_widgets(stage).values() if w.get("title") == "Alarms"]
    assert len(status["alarms"]) == 8


def test_cloudwatch_of_this_account_may_publish_to_the_tls_only_alarm_topic(stage: Synthesized) -> None:
    """enforce_ssl replaces SNS's default topic policy: without an Allow for CloudWatch no alarm is sent."""
    (topic_id,) = stage.resources(stage.stateless, "AWS::SNS::Topic")
    (policy,) = stage.resources(stage.stateless, "AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish" and allow["Resource"] == {"Ref": topic_id}
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def services_read(stage: Synthesized) -> set[str]:
    """Every ``service`` dimension value the stage's alarms and dashboard read, and the services its
    dashboard's SEARCH expressions are limited to."""
    text = json.dumps(
        [
            stage.resources(stage.stateless, "AWS::CloudWatch::Alarm"),
            stage.resources(stage.stateless, "AWS::CloudWatch::Dashboard"),
        ]
    )
    found = set(re.findall(r'"Name": "service", "Value": "([^"]+)"', text))
    found |= set(re.findall(r'\\"service\\",\s*\\"([^"\\]+)\\"', text))  # dashboard lines
    found |= set(re.findall(r'service=\\\\\\"([^"\\]+)\\\\\\"', text))  # SEARCH(... service="...")
    return found


def test_each_stage_reads_only_its_own_metrics(dev: Synthesized, prod: Synthesized) -> None:
    """dev and prod in one account and region: the service dimension carries the stage, so dev's errors
    never feed prod's alarms (its CodeDeploy rollback alarms) or its dashboard."""
    for stage in (dev, prod):
        functions = stage.resources(stage.stateless, "AWS::Lambda::Function").values()
        emitted = {
            f["Properties"]["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME")
            for f in functions
            if "Environment" in f["Properties"]
        } - {None}
        assert emitted == {f"rag-explorer-{stage.stage}-{fn}" for fn in ("query", "health", "ingest")}
        read = services_read(stage)
        assert read and read <= emitted, (read, emitted)
    assert not services_read(dev) & services_read(prod)


def test_search_expressions_are_limited_to_the_stage(stage: Synthesized) -> None:
    (dashboard,) = stage.resources(stage.stateless, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    searches = re.findall(r"SEARCH\(", body)
    assert len(searches) == 2
    assert body.count(f'service=\\\\\\"rag-explorer-{stage.stage}-query\\\\\\"') == 2


def test_the_rest_api_is_named_per_stage(stage: Synthesized) -> None:
    """API Gateway's metrics (the 5xx alarm's) have the API's name as their dimension."""
    (api,) = stage.resources(stage.stateless, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["Name"] == f"rag-explorer-{stage.stage}"
    _, props = alarm(stage, "Api5xxAlarm")
    (errors,) = [m for m in props["Metrics"] if "MetricStat" in m]
    assert {"Name": "ApiName", "Value": f"rag-explorer-{stage.stage}"} in errors["MetricStat"]["Metric"][
        "Dimensions"
    ]
