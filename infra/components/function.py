"""One Lambda function the way every function of this app is built: arm64, Python 3.12, its own role and
log group (no AWS managed policy for logging), X-Ray active, optionally in the VPC."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.components.network import VpcPlacement
from infra.nag import acknowledge, acknowledge_wildcard_resource

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64


class AppFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        handler: str,
        description: str,
        memory_size: int,
        timeout: Duration,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        placement: VpcPlacement | None = None,
        tracing: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal_policy)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role: {description}",
        )
        self.log_group.grant_write(self.role)
        if placement is not None:  # ENI permissions: CDK adds them only to roles it creates itself
            self.role.add_managed_policy(placement.eni_policy)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=code,
            handler=handler,
            description=description,
            memory_size=memory_size,
            timeout=timeout,
            environment=dict(environment),
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
            vpc=placement.vpc if placement else None,
            vpc_subnets=placement.subnets if placement else None,
            security_groups=list(placement.security_groups) if placement else None,
        )
        acknowledge(
            self,
            "AwsSolutions-L1",
            "Pinned to Python 3.12 on purpose: the bundled wheels (numpy, tokenizers, pydantic-core) are "
            "built for cp312 by infra/bundling.py; move runtime and wheels together.",
        )
        if tracing:
            acknowledge(
                self,
                "AwsSolutions-IAM5[Resource::*]",
                "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.",
            )


def custom_resource_provider(
    scope: Construct, construct_id: str, *, handler: AppFunction, what: str, log_retention: logs.RetentionDays
) -> cr.Provider:
    """CDK's provider framework around ``handler`` (a custom resource's function), its log group kept for
    ``log_retention``, with the cdk-nag acknowledgments every such provider needs."""
    provider = cr.Provider(
        scope,
        construct_id,
        on_event_handler=handler.function,
        log_group=logs.LogGroup(
            scope, f"{construct_id}Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        ),
    )
    acknowledge(
        provider,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        "CDK's custom resource provider framework function logs with the AWS basic execution policy.",
    )
    acknowledge_wildcard_resource(
        provider,
        f"{handler.function.function_arn}:*",
        f"The provider framework invokes any version of the {what} function (lambda:InvokeFunction).",
    )
    return provider
