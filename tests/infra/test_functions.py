"""The Lambda functions: runtime, environment, roles, the LLM secret, the live alias."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synthesized

APP_FUNCTIONS = ("IngestionFunction", "QueryFunctionsQueryFunction", "QueryFunctionsHealthFunction")


def functions(stage: Synthesized) -> dict[str, dict[str, Any]]:
    found = stage.resources(stage.stateless, "AWS::Lambda::Function")
    return {prefix: next(v for k, v in found.items() if k.startswith(prefix)) for prefix in APP_FUNCTIONS}


@pytest.mark.parametrize("prefix", APP_FUNCTIONS)
def test_runtime_and_environment(stage: Synthesized, prefix: str) -> None:
    props = functions(stage)[prefix]["Properties"]
    assert props["Runtime"] == "python3.12" and props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    env = props["Environment"]["Variables"]
    assert env["RAG_EXPLORER_STORE"] == "opensearch"
    assert env["RAG_EXPLORER_OPENSEARCH_AUTH"] == "sigv4"
    assert env["RAG_EXPLORER_OPENSEARCH_URL"]["Fn::Join"][1][0] == "https://"
    assert env["RAG_EXPLORER_HOME"] == "/tmp/rag-explorer"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "RagExplorer"
    assert env["POWERTOOLS_SERVICE_NAME"].startswith("rag-explorer-")
    assert "RAG_EXPLORER_DOCUMENT_BUCKET" in env
    assert ("RAG_EXPLORER_LLM_SECRET_ARN" in env) == (prefix == "QueryFunctionsQueryFunction")
    assert "LoggingConfig" in props  # its own log group, with retention


def test_log_groups_have_retention(stage: Synthesized) -> None:
    days = 14 if stage.stage == "dev" else 365
    groups = stage.resources(stage.stateless, "AWS::Logs::LogGroup")
    assert groups and all(g["Properties"]["RetentionInDays"] == days for g in groups.values())


def test_app_roles_have_no_aws_managed_policies(stage: Synthesized) -> None:
    roles = [
        role
        for name, role in stage.resources(stage.stateless, "AWS::IAM::Role").items()
        if name.startswith(("IngestionFunctionRole", "QueryFunctions"))
    ]
    assert len(roles) == 3
    for role in roles:
        arns = role["Properties"].get("ManagedPolicyArns", [])
        assert ":iam::aws:policy" not in str(arns)
        # in the VPC: the stateful stack's ENI policy, and nothing else
        assert len(arns) == (1 if stage.stage == "prod" else 0)


def test_vpc_functions_get_exactly_the_eni_permissions(prod: Synthesized) -> None:
    (policy,) = prod.resources(prod.stateful, "AWS::IAM::ManagedPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == [
        "ec2:AssignPrivateIpAddresses",
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:UnassignPrivateIpAddresses",
    ]


def test_llm_secret_readable_by_the_query_function_only(stage: Synthesized) -> None:
    (secret_id,) = stage.resources(stage.stateless, "AWS::SecretsManager::Secret")
    readers = []
    for name, policy in stage.resources(stage.stateless, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "secretsmanager:GetSecretValue" in statement["Action"] and statement["Resource"] == {
                "Ref": secret_id
            }:
                readers.append(name)
    assert len(readers) == 1 and readers[0].startswith("QueryFunctionsQueryRole")
    (resource_policy,) = stage.resources(stage.stateless, "AWS::SecretsManager::ResourcePolicy").values()
    (deny,) = resource_policy["Properties"]["ResourcePolicy"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "secretsmanager:GetSecretValue"
    allowed = deny["Condition"]["StringNotEquals"]["aws:PrincipalArn"]["Fn::GetAtt"][0]
    assert allowed.startswith("QueryFunctionsQueryRole")


def test_query_function_is_published_behind_the_live_alias(stage: Synthesized) -> None:
    (alias,) = stage.resources(stage.stateless, "AWS::Lambda::Alias").values()
    assert alias["Properties"]["Name"] == "live"
    version = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    assert version.startswith("QueryFunctionsQueryFunctionCurrentVersion")
    assert "CodeDeployLambdaAliasUpdate" in alias["UpdatePolicy"]


def test_every_function_logs_to_a_group_with_retention(stage: Synthesized) -> None:
    """CDK's own helpers too (auto-delete objects, default security group, the
    custom resource provider framework): never a ``/aws/lambda/...`` group that Lambda creates unbounded."""
    days = 14 if stage.stage == "dev" else 365
    names = []
    for template in (stage.stateful, stage.stateless):
        groups = template.find_resources("AWS::Logs::LogGroup")
        for name, function in template.find_resources("AWS::Lambda::Function").items():
            log_group = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
            assert isinstance(log_group, dict) and log_group.get("Ref") in groups, name
            assert groups[log_group["Ref"]]["Properties"]["RetentionInDays"] == days, name
            names.append(name)
    helpers = ["SearchBootstrapProviderframework"]
    helpers.append("CustomS3AutoDeleteObjects" if stage.stage == "dev" else "CustomVpcRestrictDefaultSG")
    assert all(any(n.startswith(helper) for n in names) for helper in helpers), names
