"""cdk-nag 3.x: the AwsSolutions pack as a CDK validation plugin, and acknowledgments with reasons.

cdk-nag 3 reports through CDK's policy-validation framework: ``Validations.of(app).add_plugins(...)``
makes ``app.synth()`` (and so ``cdk synth``) fail on any unacknowledged finding, and writes
``validation-report.json`` to the cloud assembly. A finding is acknowledged on the construct that owns
the resource, or on one of its ancestors, with ``Validations.of(scope).acknowledge(...)``; findings that
name a resource carry it in the id (``AwsSolutions-IAM5[Resource::<...>/*]``), and each one is
acknowledged on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jsii
from aws_cdk import Acknowledgment, App, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct, IValidation

ACK_METADATA = Validations.ACKNOWLEDGED_RULES_METADATA_KEY


def add_nag_checks(app: App) -> None:
    """Run the AwsSolutions pack on every stack of ``app`` when it synthesizes."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge ``rule_id`` (e.g. ``AwsSolutions-S1``) on ``scope`` and everything below it."""
    if len(reason) < 20:
        raise ValueError(f"give {rule_id} a specific reason, not {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def flatten_reference(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag prints it in a finding id (its flattenCfnReference)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict):
        if "Fn::Join" in value:
            delimiter, items = value["Fn::Join"]
            return str(delimiter).join(flatten_reference(item) for item in items)
        if "Fn::Sub" in value:
            return flatten_reference(value["Fn::Sub"])
        if "Fn::GetAtt" in value:
            resource, attribute = value["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in value:
            return flatten_reference(value["Fn::ImportValue"])
        if "Ref" in value:
            return f"<{flatten_reference(value['Ref'])}>"
    return json.dumps(value, separators=(",", ":"))


@jsii.implements(IValidation)
class _WildcardResourceAcknowledgment:
    """Acknowledges ``AwsSolutions-IAM5[Resource::<resource>]`` once references are resolved.

    A resource from another stack only becomes an ``Fn::ImportValue`` (whose export name is part of the
    finding id) after CDK has prepared the app; construct validation runs after that and before the
    validation plugins, so the id is computed then, from the very token that the policy holds.
    """

    def __init__(self, scope: IConstruct, resource: str, reason: str) -> None:
        self.scope = scope
        self.resource = resource
        self.reason = reason

    def validate(self) -> list[str]:
        resolved = Stack.of(self.scope).resolve(self.resource)
        acknowledge(self.scope, f"AwsSolutions-IAM5[Resource::{flatten_reference(resolved)}]", self.reason)
        return []


def acknowledge_wildcard_resource(scope: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge the IAM5 finding for exactly ``resource`` (an ARN token ending in ``*``) on ``scope``."""
    if len(reason) < 20:
        raise ValueError(f"give the wildcard on {resource!r} a specific reason")
    scope.node.add_validation(_WildcardResourceAcknowledgment(scope, resource, reason))


@dataclass(frozen=True)
class AcknowledgedRule:
    path: str
    rule_id: str
    reason: str


def acknowledged_rules(scope: IConstruct) -> list[AcknowledgedRule]:
    """Every acknowledgment recorded under ``scope`` (after synthesis, the deferred ones included)."""
    found: list[AcknowledgedRule] = []
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == ACK_METADATA and isinstance(entry.data, dict):
                for key, reason in entry.data.items():
                    rule_id = key.split("::", 1)[1] if key.lower().startswith("annotation::") else key
                    found.append(AcknowledgedRule(construct.node.path, rule_id, str(reason)))
    return found
