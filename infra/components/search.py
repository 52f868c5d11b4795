"""The OpenSearch Service domain (stateful) and the mapping of the Lambda roles into its fine-grained
access control (stateless).

Access is decided twice. IAM: the domain's resource policy trusts the account, so a principal needs an
identity policy on this domain: read-only HTTP methods for the query and health functions
(:meth:`SearchDomain.grant_http_read`), all of them for the ingest and bootstrap functions
(:meth:`SearchDomain.grant_http_read_write`). Fine-grained access control: the
signed request's role must be mapped to a security-plugin role. The domain's master user is the execution
role of a small bootstrap function that lives with the domain; :class:`SearchAccess` is a custom resource
of the stateless stack that asks that function to map the functions' roles (reader or writer), so that
the stateful stack never references the stateless one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct

from infra.components.function import AppFunction, custom_resource_provider
from infra.components.network import Network, VpcPlacement
from infra.config import SearchConfig
from infra.nag import acknowledge, acknowledge_wildcard_resource

DOMAIN_LOGICAL_ID = "SearchDomain"
# A search with a body (k-NN, BM25, aggregations), _count, _mget and _msearch are POST requests, and IAM
# cannot tell them from a POST that writes: fine-grained access control (``rag_explorer_reader``) refuses
# those. No PUT, DELETE or PATCH: a reader can neither create nor delete an index, nor update a document.
READ_HTTP_ACTIONS = ("es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost")
ENGINE_VERSION = opensearch.EngineVersion.OPENSEARCH_2_19
BOOTSTRAP_CODE = Path(__file__).resolve().parent.parent / "custom_resources" / "search_bootstrap"


class SearchDomain(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: SearchConfig,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        network: Network | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.index_name = config.index_name
        self.index_replicas = config.index_replicas
        stack = Stack.of(self)

        domain_security_groups, placement = self._security_groups(network, removal_policy=removal_policy)
        vpc = network.vpc if network else None

        # the bootstrap function's role is the domain's master user
        self.bootstrap = AppFunction(
            self,
            "Bootstrap",
            code=lambda_.Code.from_asset(str(BOOTSTRAP_CODE), exclude=["__pycache__", "*.pyc"]),
            handler="index.on_event",
            description="RAG Explorer: OpenSearch role mappings, index template, audit config",
            memory_size=256,
            timeout=Duration.minutes(5),
            environment={},
            log_retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
            placement=placement,
            tracing=False,
        )

        logs_policy = self._log_groups(stack, log_retention=log_retention, removal_policy=removal_policy)
        self.domain = self._domain(
            config=config,
            removal_policy=removal_policy,
            network=network,
            domain_security_groups=domain_security_groups,
        )
        self._access_policy(stack)
        self.domain.node.add_dependency(logs_policy)

        self.grant_http_read_write(self.bootstrap.role, policy_owner=self.bootstrap)
        self.provider = custom_resource_provider(
            self, "BootstrapProvider", handler=self.bootstrap, what="bootstrap", log_retention=log_retention
        )
        self._acknowledge_domain(config, vpc=vpc)

    def _security_groups(
        self, network: Network | None, *, removal_policy: RemovalPolicy
    ) -> tuple[list[ec2.ISecurityGroup], VpcPlacement | None]:
        # clients (the functions) join this group; the domain accepts HTTPS from it only
        self.client_security_group: ec2.SecurityGroup | None = None
        domain_security_groups: list[ec2.ISecurityGroup] = []
        placement: VpcPlacement | None = None
        if network is not None:
            self.client_security_group = ec2.SecurityGroup(
                self,
                "ClientSecurityGroup",
                vpc=network.vpc,
                description="RAG Explorer functions (OpenSearch clients)",
            )
            domain_sg = ec2.SecurityGroup(
                self,
                "DomainSecurityGroup",
                vpc=network.vpc,
                description="RAG Explorer OpenSearch domain: HTTPS from the functions only",
                allow_all_outbound=False,
            )
            domain_sg.add_ingress_rule(
                self.client_security_group, ec2.Port.tcp(443), "HTTPS from the functions"
            )
            # kept with a retained domain (its network interfaces use it); the ingress rule is a resource of
            # its own, so the functions' group can still be deleted
            domain_sg.apply_removal_policy(removal_policy)
            domain_security_groups.append(domain_sg)
            placement = network.placement(self.client_security_group)
        return domain_security_groups, placement

    def _log_groups(
        self, stack: Stack, *, log_retention: logs.RetentionDays, removal_policy: RemovalPolicy
    ) -> logs.ResourcePolicy:
        self.log_groups = {
            name: logs.LogGroup(self, f"{name}Logs", retention=log_retention, removal_policy=removal_policy)
            for name in ("SlowSearch", "SlowIndex", "Application", "Audit")
        }
        # a plain AWS::Logs::ResourcePolicy instead of the custom resource CDK would add for it
        return logs.ResourcePolicy(
            self,
            "LogPublishing",
            policy_statements=[
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal("es.amazonaws.com")],
                    actions=["logs:PutLogEvents", "logs:CreateLogStream"],
                    resources=[group.log_group_arn for group in self.log_groups.values()],
                    conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
                )
            ],
        )

    def _domain(
        self,
        *,
        config: SearchConfig,
        removal_policy: RemovalPolicy,
        network: Network | None,
        domain_security_groups: list[ec2.ISecurityGroup],
    ) -> opensearch.Domain:
        zone_awareness = (
            opensearch.ZoneAwarenessConfig(enabled=True, availability_zone_count=config.zone_awareness_azs)
            if config.zone_awareness_azs
            else opensearch.ZoneAwarenessConfig(enabled=False)
        )
        return opensearch.Domain(
            self,
            "Domain",
            version=ENGINE_VERSION,
            capacity=opensearch.CapacityConfig(
                data_node_instance_type=config.data_node_instance_type,
                data_nodes=config.data_nodes,
                master_node_instance_type=config.master_node_instance_type,
                master_nodes=config.master_nodes or None,
                multi_az_with_standby_enabled=False,
            ),
            ebs=opensearch.EbsOptions(
                enabled=True, volume_size=config.volume_size_gib, volume_type=ec2.EbsDeviceVolumeType.GP3
            ),
            zone_awareness=zone_awareness,
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            fine_grained_access_control=opensearch.AdvancedSecurityOptions(
                master_user_arn=self.bootstrap.role.role_arn
            ),
            logging=opensearch.LoggingOptions(
                slow_search_log_enabled=True,
                slow_search_log_group=self.log_groups["SlowSearch"],
                slow_index_log_enabled=True,
                slow_index_log_group=self.log_groups["SlowIndex"],
                app_log_enabled=True,
                app_log_group=self.log_groups["Application"],
                audit_log_enabled=True,
                audit_log_group=self.log_groups["Audit"],
            ),
            suppress_logs_resource_policy=True,
            enable_version_upgrade=True,
            removal_policy=removal_policy,
            vpc=network.vpc if network else None,
            vpc_subnets=[network.function_subnets] if network else None,
            security_groups=domain_security_groups or None,
        )

    def _access_policy(self, stack: Stack) -> None:
        cfn_domain = self.domain.node.default_child
        assert isinstance(cfn_domain, opensearch.CfnDomain)
        cfn_domain.override_logical_id(DOMAIN_LOGICAL_ID)
        # Trust the account: identity policies (grant_http_*) and fine-grained access control decide. Set on
        # the L1 resource; the L2 property would add a custom resource to avoid a self-reference. For the
        # same reason the resource is ``domain/*``: the domain has no physical name, and its own ARN here
        # would be a circular reference. A domain's access policy governs that domain alone, so the
        # wildcard reaches no other domain; the identity policies name this domain.
        cfn_domain.access_policies = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    principals=[iam.AccountRootPrincipal()],
                    actions=["es:ESHttp*"],
                    resources=[stack.format_arn(service="es", resource="domain", resource_name="*")],
                )
            ]
        ).to_json()

    def _acknowledge_domain(self, config: SearchConfig, *, vpc: ec2.IVpc | None) -> None:
        if vpc is None:
            acknowledge(
                self.domain,
                "AwsSolutions-OS1",
                "dev stage: no VPC (interface endpoints alone would cost more than the domain); the public "
                "endpoint accepts only SigV4-signed HTTPS from mapped IAM roles. prod runs in a VPC.",
            )
        if not config.master_nodes:
            acknowledge(
                self.domain,
                "AwsSolutions-OS4",
                "dev stage: a single data node, no dedicated masters (three would triple the cost); prod has "
                "three.",
            )
        if not config.zone_awareness_azs:
            acknowledge(
                self.domain,
                "AwsSolutions-OS7",
                "dev stage: one node in one AZ, so nothing to spread; prod spreads its nodes over three AZs.",
            )
        acknowledge(
            self.domain,
            "AwsSolutions-OS3",
            "Callers are Lambda functions without fixed IPs: access is IAM-signed (SigV4) and authorized by "
            "fine-grained access control, not by IP allowlist.",
        )

    @property
    def endpoint_url(self) -> str:
        return f"https://{self.domain.domain_endpoint}"

    @property
    def service_token(self) -> str:
        return self.provider.service_token

    @property
    def http_resources(self) -> list[str]:
        """This domain and its paths (never ``domain/*``, every domain of the account)."""
        return [self.domain.domain_arn, f"{self.domain.domain_arn}/*"]

    def grant_http_read(self, grantee: iam.IGrantable, *, policy_owner: Construct) -> None:
        """IAM side of read access: GET, HEAD and POST (searches, counts, aggregations) on this domain;
        what the principal may read inside is decided by fine-grained access control (see
        :class:`SearchAccess`)."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(READ_HTTP_ACTIONS), resource_arns=self.http_resources
        )
        self._acknowledge_paths(policy_owner)

    def grant_http_read_write(self, grantee: iam.IGrantable, *, policy_owner: Construct) -> None:
        """IAM side of write access: every ``es:ESHttp*`` method on this domain (the ingest function and
        the bootstrap function, which is the domain's master user)."""
        self.domain.grant_read_write(grantee)
        self._acknowledge_paths(policy_owner)

    def _acknowledge_paths(self, policy_owner: Construct) -> None:
        acknowledge_wildcard_resource(
            policy_owner,
            f"{self.domain.domain_arn}/*",
            "HTTP access to the domain's paths; fine-grained access control limits each role to its index.",
        )


class SearchAccess(Construct):
    """Maps Lambda execution roles into the domain's fine-grained access control (custom resource)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        search: SearchDomain,
        readers: Sequence[iam.IRole],
        writers: Sequence[iam.IRole],
        admin_role_arns: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=search.service_token,
            resource_type="Custom::OpenSearchAccess",
            properties={
                "Endpoint": search.domain.domain_endpoint,
                "IndexPattern": f"{search.index_name}*",
                "Replicas": str(search.index_replicas),
                "ReaderRoleArns": [role.role_arn for role in readers],
                "WriterRoleArns": [role.role_arn for role in writers],
                # people: mapped to all_access, next to the master user (the bootstrap function's role)
                "AdminRoleArns": sorted(admin_role_arns),
            },
        )
