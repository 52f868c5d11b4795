"""Log groups with retention for the Lambda functions CDK adds on its own.

CDK creates singleton helper functions that this app never constructs itself: the handlers of core
custom resource providers such as ``Custom::S3AutoDeleteObjects`` (dev) and ``Custom::VpcRestrictDefaultSG``
(prod). None of them takes a log group, and Lambda would create ``/aws/lambda/<name>`` on first use with
no retention. :class:`HelperFunctionLogs` is an aspect that gives every function without a
``LoggingConfig`` its own ``AWS::Logs::LogGroup`` (no physical name) with the stage's retention, and points
the function at it. (``custom_resources.CustomResourceConfig`` covers only ``SingletonFunction`` helpers.)
"""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource, IAspect, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

FUNCTION_TYPE = "AWS::Lambda::Function"


@jsii.implements(IAspect)
class HelperFunctionLogs:
    """Apply with ``Aspects.of(scope).add(HelperFunctionLogs(log_retention=...))``."""

    def __init__(
        self, *, log_retention: logs.RetentionDays, removal_policy: RemovalPolicy = RemovalPolicy.DESTROY
    ) -> None:
        self.log_retention = log_retention
        self.removal_policy = removal_policy

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource) or node.cfn_resource_type != FUNCTION_TYPE:
            return
        # an L1 function (lambda.Function, the Provider framework) shows its LoggingConfig; the helpers
        # built from a plain CfnResource never have one
        if isinstance(node, lambda_.CfnFunction) and node.logging_config is not None:
            return
        # a sibling, not a child: a child would inherit the function's dependencies (its role)
        scope = node.node.scope
        assert isinstance(scope, Construct)
        log_group = logs.LogGroup(
            scope, f"{node.node.id}Logs", retention=self.log_retention, removal_policy=self.removal_policy
        )
        node.add_property_override("LoggingConfig.LogGroup", log_group.log_group_name)
