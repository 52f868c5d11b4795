"""Tearing a stage down: what a retained resource needs is retained with it, or `cdk destroy` ends in
DELETE_FAILED (prod retains its domain, which keeps network interfaces in the VPC's subnets)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.conftest import Synthesized


def references(value: Any) -> set[str]:
    """The logical ids a resource's properties point to (Ref and Fn::GetAtt)."""
    text = json.dumps(value)
    refs = set(re.findall(r'"Ref": "([A-Za-z0-9]+)"', text))
    return refs | set(re.findall(r'"Fn::GetAtt": \["([A-Za-z0-9]+)"', text))


def retained(resource: dict[str, Any]) -> bool:
    return resource.get("DeletionPolicy") == "Retain" and resource.get("UpdateReplacePolicy") == "Retain"


@pytest.mark.parametrize("fixture", ["prod", "widget"])
def test_the_retained_domain_keeps_its_vpc_subnets_and_security_group(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    stage: Synthesized = request.getfixturevalue(fixture)
    resources: dict[str, Any] = stage.stateful.to_json()["Resources"]
    (domain,) = [r for r in resources.values() if r["Type"] == "AWS::OpenSearchService::Domain"]
    assert retained(domain)
    options = domain["Properties"]["VPCOptions"]
    needed = references(options["SubnetIds"]) | references(options["SecurityGroupIds"])
    assert len(references(options["SubnetIds"])) == 3 and len(references(options["SecurityGroupIds"])) == 1
    # and what those need in turn: the VPC
    needed |= {ref for name in needed for ref in references(resources[name]["Properties"])}
    types = {resources[name]["Type"] for name in needed}
    assert types == {"AWS::EC2::Subnet", "AWS::EC2::SecurityGroup", "AWS::EC2::VPC"}
    assert all(retained(resources[name]) for name in needed), [
        n for n in needed if not retained(resources[n])
    ]


@pytest.mark.parametrize("fixture", ["dev", "prod", "widget"])
def test_no_retained_resource_points_to_a_network_resource_that_is_deleted(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    """A deleted subnet, security group or VPC that a retained resource still uses fails the deletion."""
    stage: Synthesized = request.getfixturevalue(fixture)
    resources: dict[str, Any] = stage.stateful.to_json()["Resources"]
    for name, resource in resources.items():
        if not retained(resource):
            continue
        for ref in references(resource.get("Properties", {})):
            target = resources.get(ref)
            if target is not None and target["Type"].startswith("AWS::EC2::"):
                assert retained(target), f"{name} is retained but uses {ref}, which is deleted"


def test_what_costs_money_or_the_functions_use_is_still_deleted(prod: Synthesized) -> None:
    """Only the domain's part of the network is kept: endpoints (billed per hour), route tables, the
    functions' and the endpoints' security groups go with the stack."""
    resources: dict[str, Any] = prod.stateful.to_json()["Resources"]
    kept = {
        resources[name]["Type"]
        for name in resources
        if name.startswith(("Network", "SearchClient")) and retained(resources[name])
    }
    assert kept <= {"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::Logs::LogGroup"}
    for name, resource in resources.items():
        if resource["Type"] in ("AWS::EC2::VPCEndpoint", "AWS::EC2::RouteTable", "AWS::EC2::NatGateway"):
            assert not retained(resource), name
    (client,) = [r for n, r in resources.items() if n.startswith("SearchClientSecurityGroup")]
    assert not retained(client)


def test_dev_retains_nothing_by_default(dev: Synthesized) -> None:
    resources: dict[str, Any] = dev.stateful.to_json()["Resources"]
    assert not [name for name, r in resources.items() if r.get("DeletionPolicy") == "Retain"]
