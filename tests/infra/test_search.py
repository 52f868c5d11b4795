"""The OpenSearch domain (stateful) and the fine-grained access mapping (stateless)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.components.search import DOMAIN_LOGICAL_ID
from infra.config import stage_config
from tests.infra.conftest import Synthesized, synthesize


def domain(stage: Synthesized) -> dict[str, Any]:
    domains = stage.resources(stage.stateful, "AWS::OpenSearchService::Domain")
    assert list(domains) == [DOMAIN_LOGICAL_ID], "the domain's logical id is pinned"
    found: dict[str, Any] = domains[DOMAIN_LOGICAL_ID]
    return found


def test_domain_is_opensearch_2_encrypted_https_only(stage: Synthesized) -> None:
    props = domain(stage)["Properties"]
    assert props["EngineVersion"].startswith("OpenSearch_2.")
    assert props["EncryptionAtRestOptions"] == {"Enabled": True}
    assert props["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert props["DomainEndpointOptions"] == {
        "EnforceHTTPS": True,
        "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07",
    }


def test_fine_grained_access_control_master_user_is_the_bootstrap_role(stage: Synthesized) -> None:
    security = domain(stage)["Properties"]["AdvancedSecurityOptions"]
    assert security["Enabled"] is True
    assert security["InternalUserDatabaseEnabled"] is False
    master = security["MasterUserOptions"]["MasterUserARN"]["Fn::GetAtt"][0]
    roles = stage.resources(stage.stateful, "AWS::IAM::Role")
    assert master in roles and master.startswith("SearchBootstrapRole")
    functions = stage.resources(stage.stateful, "AWS::Lambda::Function")
    assert any(f["Properties"]["Role"] == {"Fn::GetAtt": [master, "Arn"]} for f in functions.values())


def test_access_policy_trusts_only_the_account(stage: Synthesized) -> None:
    (statement,) = domain(stage)["Properties"]["AccessPolicies"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "es:ESHttp*"
    principal = statement["Principal"]["AWS"]["Fn::Join"][1]
    assert principal[-1] == ":root" and "*" not in str(principal)


def test_all_four_logs_go_to_cloudwatch(stage: Synthesized) -> None:
    options = domain(stage)["Properties"]["LogPublishingOptions"]
    assert set(options) == {"SEARCH_SLOW_LOGS", "INDEX_SLOW_LOGS", "ES_APPLICATION_LOGS", "AUDIT_LOGS"}
    assert all(option["Enabled"] for option in options.values())
    # a native resource policy lets the service write them (no custom resource), created first
    ((policy, resource),) = stage.resources(stage.stateful, "AWS::Logs::ResourcePolicy").items()
    document = json.dumps(resource["Properties"]["PolicyDocument"])
    assert "es.amazonaws.com" in document and "logs:PutLogEvents" in document
    assert policy in domain(stage)["DependsOn"]


def test_dev_is_one_small_node_without_vpc(dev: Synthesized) -> None:
    props = domain(dev)["Properties"]
    assert props["ClusterConfig"] == {
        "DedicatedMasterEnabled": False,
        "InstanceCount": 1,
        "InstanceType": "t3.small.search",
        "MultiAZWithStandbyEnabled": False,
        "ZoneAwarenessEnabled": False,
    }
    assert "VPCOptions" not in props
    assert props["EBSOptions"] == {"EBSEnabled": True, "VolumeSize": 10, "VolumeType": "gp3"}
    assert domain(dev)["DeletionPolicy"] == "Delete"


def test_prod_is_three_az_with_dedicated_masters_in_the_vpc(prod: Synthesized) -> None:
    props = domain(prod)["Properties"]
    cluster = props["ClusterConfig"]
    assert cluster["InstanceCount"] == 3
    assert cluster["DedicatedMasterEnabled"] is True and cluster["DedicatedMasterCount"] == 3
    assert cluster["ZoneAwarenessEnabled"] is True
    assert cluster["ZoneAwarenessConfig"] == {"AvailabilityZoneCount": 3}
    assert len(props["VPCOptions"]["SubnetIds"]) == 3
    assert domain(prod)["DeletionPolicy"] == "Retain"
    # the domain accepts HTTPS from the functions' security group only
    ((_, ingress),) = prod.resources(prod.stateful, "AWS::EC2::SecurityGroupIngress").items()
    rule = ingress["Properties"]
    assert (rule["FromPort"], rule["ToPort"], rule["IpProtocol"]) == (443, 443, "tcp")
    assert rule["GroupId"]["Fn::GetAtt"][0].startswith("SearchDomainSecurityGroup")
    assert rule["SourceSecurityGroupId"]["Fn::GetAtt"][0].startswith("SearchClientSecurityGroup")
    functions = prod.resources(prod.stateless, "AWS::Lambda::Function")
    in_vpc = [f for f in functions.values() if "VpcConfig" in f["Properties"]]
    assert len(in_vpc) == 3  # ingest, query, health (not CDK's bucket-notification helper)


def test_prod_vpc_is_private_with_endpoints_and_flow_logs(prod: Synthesized) -> None:
    subnets = prod.resources(prod.stateful, "AWS::EC2::Subnet")
    assert len(subnets) == 3 and all(not s["Properties"]["MapPublicIpOnLaunch"] for s in subnets.values())
    assert not prod.resources(prod.stateful, "AWS::EC2::NatGateway")
    assert not prod.resources(prod.stateful, "AWS::EC2::InternetGateway")
    endpoints = prod.resources(prod.stateful, "AWS::EC2::VPCEndpoint")
    services = sorted(str(e["Properties"]["ServiceName"]) for e in endpoints.values())
    assert any("secretsmanager" in s for s in services)
    assert any("xray" in s for s in services)
    assert any("s3" in s for s in services)
    assert prod.resources(prod.stateful, "AWS::EC2::FlowLog")


def test_functions_are_mapped_into_fine_grained_access_control(stage: Synthesized) -> None:
    (access,) = stage.resources(stage.stateless, "Custom::OpenSearchAccess").values()
    props = access["Properties"]
    assert props["IndexPattern"] == "rag-explorer-chunks*"
    assert props["Replicas"] == ("0" if stage.stage == "dev" else "1")

    def role_names(refs: list[dict[str, Any]]) -> set[str]:
        return {ref["Fn::GetAtt"][0] for ref in refs}

    assert role_names(props["ReaderRoleArns"]) == {
        r
        for r in stage.resources(stage.stateless, "AWS::IAM::Role")
        if r.startswith(("QueryFunctionsQueryRole", "QueryFunctionsHealthRole"))
    }
    assert {r[:20] for r in role_names(props["WriterRoleArns"])} == {"IngestionFunctionRol"}


def test_every_app_function_may_call_the_domain(stage: Synthesized) -> None:
    policies = stage.resources(stage.stateless, "AWS::IAM::Policy")
    with_es = [
        name
        for name, policy in policies.items()
        if any(
            "es:ESHttpPost" in s.get("Action", [])
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
        )
    ]
    assert sorted(n[:16] for n in with_es) == ["IngestionFunctio", "QueryFunctionsHe", "QueryFunctionsQu"]


WRITE_METHODS = {"es:ESHttpDelete", "es:ESHttpPut", "es:ESHttpPatch"}


def es_statements(template: Any) -> dict[str, list[dict[str, Any]]]:
    """Policy logical id -> its statements that allow an ``es:`` action."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name, policy in template.find_resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if statement["Effect"] == "Allow" and any(a.startswith("es:") for a in actions):
                found.setdefault(name, []).append({**statement, "Action": actions})
    return found


def es_actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in s["Action"]}


def test_query_and_health_roles_may_only_read_the_domain(stage: Synthesized) -> None:
    found = es_statements(stage.stateless)
    by_role = {
        prefix: next(v for k, v in found.items() if k.startswith(prefix))
        for prefix in (
            "QueryFunctionsQueryRole",
            "QueryFunctionsHealthRole",
            "IngestionFunctionRole",
        )
    }
    for reader in ("QueryFunctionsQueryRole", "QueryFunctionsHealthRole"):
        assert es_actions(by_role[reader]) == {"es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"}, reader
    # the ingest function (stateless) and the bootstrap function (stateful, master user) still write
    assert es_actions(by_role["IngestionFunctionRole"]) >= WRITE_METHODS
    (bootstrap,) = (
        v for k, v in es_statements(stage.stateful).items() if k.startswith("SearchBootstrapRole")
    )
    assert es_actions(bootstrap) >= WRITE_METHODS


def test_identity_policies_name_this_domain_not_every_domain(stage: Synthesized) -> None:
    for template in (stage.stateful, stage.stateless):
        for name, statements in es_statements(template).items():
            for statement in statements:
                resources = [json.dumps(r) for r in statement["Resource"]]
                assert len(resources) == 2, (name, resources)
                # the domain's ARN (GetAtt in its own stack, a stack output in the other) and its paths
                assert all("SearchDomain" in r and "Arn" in r for r in resources), (name, resources)
                assert resources[1].endswith('"/*"]]}'), (name, resources)
        for name, resource in template.to_json()["Resources"].items():
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role"):
                assert ":domain/*" not in json.dumps(resource), name


def test_no_admins_by_default(stage: Synthesized) -> None:
    (access,) = stage.resources(stage.stateless, "Custom::OpenSearchAccess").values()
    assert access["Properties"]["AdminRoleArns"] == []


def test_admin_role_arns_reach_the_custom_resource(tmp_path: Path) -> None:
    admins = "arn:aws:iam::123456789012:role/Admin, arn:aws:iam::123456789012:role/ops/Operator"
    config = stage_config("dev", admin_role_arns=admins)
    assert config.search.admin_role_arns == (
        "arn:aws:iam::123456789012:role/Admin",
        "arn:aws:iam::123456789012:role/ops/Operator",
    )
    stage = synthesize("dev", tmp_path, config=config)
    (access,) = stage.resources(stage.stateless, "Custom::OpenSearchAccess").values()
    assert access["Properties"]["AdminRoleArns"] == sorted(config.search.admin_role_arns)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sts::123456789012:assumed-role/Admin/me",  # a session: the plugin sees the role
        "arn:aws:iam::123456789012:user/me",
        "Admin",
    ],
)
def test_an_admin_that_is_not_an_iam_role_arn_fails_synth(arn: str) -> None:
    with pytest.raises(ValueError, match="IAM role ARN"):
        stage_config("prod", admin_role_arns=arn)
