"""The app entry point and the stage configuration: app.py alone reads context and environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aws_cdk import RemovalPolicy

from infra.config import STAGES, stage_config
from tests.infra.conftest import ROOT, Synthesized


def test_stages() -> None:
    assert STAGES == ("dev", "prod")
    dev, prod = stage_config("dev"), stage_config("prod")
    assert dev.network is None and prod.network is not None
    assert dev.search.data_nodes == 1 and dev.search.master_node_instance_type is None
    assert prod.search.zone_awareness_azs == 3 and prod.search.master_nodes == 3
    assert dev.api.waf is False and prod.api.waf is True
    assert dev.removal_policy == RemovalPolicy.DESTROY and prod.removal_policy == RemovalPolicy.RETAIN
    assert prod.termination_protection and not dev.termination_protection


def test_dev_removal_policy_is_configurable_prod_always_retains() -> None:
    assert stage_config("dev", dev_removal_policy="retain").removal_policy == RemovalPolicy.RETAIN
    with pytest.raises(ValueError, match="prod always retains"):
        stage_config("prod", dev_removal_policy="destroy")
    with pytest.raises(ValueError, match="destroy or retain"):
        stage_config("dev", dev_removal_policy="keep")
    with pytest.raises(ValueError, match="unknown stage 'test'"):
        stage_config("test")


def test_only_app_py_reads_context_or_environment() -> None:
    pattern = re.compile(r"try_get_context|os\.environ|os\.getenv|getenv\(")
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "infra").rglob("*.py"))
        if "custom_resources" not in path.parts and pattern.search(path.read_text())
    ]
    assert offenders == []
    assert "try_get_context" in (ROOT / "app.py").read_text()


def test_no_physical_names(stage: Synthesized) -> None:
    named = {
        "AWS::S3::Bucket": "BucketName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::Lambda::Function": "FunctionName",
        "AWS::IAM::Role": "RoleName",
        "AWS::OpenSearchService::Domain": "DomainName",
        "AWS::SNS::Topic": "TopicName",
        "AWS::SecretsManager::Secret": "Name",
        "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::CloudWatch::Alarm": "AlarmName",
        "AWS::CloudWatch::Dashboard": "DashboardName",
        "AWS::ApiGateway::RestApi": "Name",
        "AWS::ApiGateway::ApiKey": "Name",
        "AWS::ApiGateway::UsagePlan": "UsagePlanName",
        "AWS::DynamoDB::Table": "TableName",
    }
    for template in (stage.stateful, stage.stateless):
        for resource_type, prop in named.items():
            for logical_id, resource in template.find_resources(resource_type).items():
                value = resource.get("Properties", {}).get(prop)
                # CDK derives a RestApi's Name from its construct id; the rest is left to CloudFormation
                assert value is None or resource_type == "AWS::ApiGateway::RestApi", (logical_id, prop, value)


def test_stacks_are_split_by_state(stage: Synthesized) -> None:
    stateful = {r["Type"] for r in stage.stateful.to_json()["Resources"].values()}
    stateless = {r["Type"] for r in stage.stateless.to_json()["Resources"].values()}
    data = {"AWS::S3::Bucket", "AWS::OpenSearchService::Domain", "AWS::DynamoDB::Table"}
    assert data <= stateful
    assert not data & stateless
    assert {"AWS::SQS::Queue", "AWS::ApiGateway::RestApi", "AWS::SecretsManager::Secret"} <= stateless
    assert not {"AWS::SQS::Queue", "AWS::ApiGateway::RestApi", "AWS::SecretsManager::Secret"} & stateful


def test_cdk_json_runs_app_py() -> None:
    import json

    cdk = json.loads(Path(ROOT / "cdk.json").read_text())
    assert cdk["app"] == "python3 app.py"
    assert cdk["context"]["stage"] == "dev"
