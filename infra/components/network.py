"""The VPC of the prod stage: private subnets in every AZ, AWS services through VPC endpoints (S3 and
DynamoDB gateways, interface endpoints), flow logs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.nag import acknowledge


@dataclass(frozen=True, kw_only=True)
class VpcPlacement:
    """Where a function runs in the VPC, and the policy that lets Lambda manage its network interfaces."""

    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    security_groups: tuple[ec2.ISecurityGroup, ...]
    eni_policy: iam.IManagedPolicy


class Network(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        max_azs: int,
        nat_gateways: int,
        interface_endpoints: Sequence[str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        cidr = "10.40.0.0/16"
        private = ec2.SubnetType.PRIVATE_WITH_EGRESS if nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED
        self.vpc = self._vpc(
            cidr=cidr,
            private=private,
            max_azs=max_azs,
            nat_gateways=nat_gateways,
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        self.function_subnets = ec2.SubnetSelection(subnet_type=private)
        # A retained domain keeps its network interfaces in the private subnets: the VPC and those subnets
        # must outlive the stack too, or `cdk destroy` ends in DELETE_FAILED. The rest (route tables,
        # endpoints, flow logs, a NAT gateway) is deleted: nothing of the domain's uses it, and the
        # interface endpoints would go on costing money.
        for resource in (self.vpc, *self.vpc.isolated_subnets, *self.vpc.private_subnets):
            resource.apply_removal_policy(removal_policy)
        self.eni_policy = self._eni_policy()
        self._interface_endpoints(cidr=cidr, private=private, interface_endpoints=interface_endpoints)

    def _vpc(
        self,
        *,
        cidr: str,
        private: ec2.SubnetType,
        max_azs: int,
        nat_gateways: int,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> ec2.Vpc:
        subnets = [ec2.SubnetConfiguration(name="private", subnet_type=private, cidr_mask=22)]
        if nat_gateways:
            subnets.append(
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=26)
            )
        self.flow_log_group = logs.LogGroup(
            self, "FlowLogs", retention=log_retention, removal_policy=removal_policy
        )
        return ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            max_azs=max_azs,
            nat_gateways=nat_gateways,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
            # gateway endpoints cost nothing: S3 (documents) and DynamoDB (the interactions table)
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDb": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )

    def _eni_policy(self) -> iam.ManagedPolicy:
        # What Lambda needs to attach a function to the VPC: one reviewed customer managed policy for all
        # functions, instead of AWS's AWSLambdaVPCAccessExecutionRole on each role.
        eni_policy = iam.ManagedPolicy(
            self,
            "FunctionNetworkInterfaces",
            description="RAG Explorer functions: create, describe and delete their VPC network interfaces",
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSubnets",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    resources=["*"],
                )
            ],
        )
        acknowledge(
            eni_policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Lambda creates the ENIs of VPC functions itself; EC2's Describe* calls take no resource ARN and "
            "the interfaces do not exist before Lambda creates them.",
        )
        return eni_policy

    def _interface_endpoints(
        self, *, cidr: str, private: ec2.SubnetType, interface_endpoints: Sequence[str]
    ) -> None:
        # HTTPS from inside the VPC (a literal CIDR: the VPC's CIDR token would be opaque to cdk-nag)
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="RAG Explorer interface endpoints: HTTPS from the VPC",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), "HTTPS from the VPC"
        )
        for name in interface_endpoints:
            self.vpc.add_interface_endpoint(
                name.title().replace("_", ""),
                service=getattr(ec2.InterfaceVpcEndpointAwsService, name),
                private_dns_enabled=True,
                subnets=ec2.SubnetSelection(subnet_type=private),
                open=False,
                security_groups=[self.endpoint_security_group],
            )

    def placement(self, *security_groups: ec2.ISecurityGroup) -> VpcPlacement:
        return VpcPlacement(
            vpc=self.vpc,
            subnets=self.function_subnets,
            security_groups=security_groups,
            eni_policy=self.eni_policy,
        )
