"""Stage configuration: every knob that differs between ``dev`` and ``prod``, typed and in one place.

Only ``app.py`` chooses a stage (``cdk synth -c stage=prod``); constructs and stacks receive the parts of
:class:`StageConfig` they need as typed keyword arguments and never read context or the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs

StageName = Literal["dev", "prod"]
STAGES: tuple[StageName, ...] = ("dev", "prod")


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """A VPC for the domain and the functions (prod): private subnets, AWS services through endpoints."""

    max_azs: int = 3
    nat_gateways: int = 0  # 0: isolated subnets, no internet egress (an OpenAI answer provider needs >= 1)
    # interface endpoints the functions need without internet egress (S3 is a free gateway endpoint)
    interface_endpoints: tuple[str, ...] = ("SECRETS_MANAGER", "XRAY")


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """The OpenSearch Service domain."""

    data_node_instance_type: str
    data_nodes: int
    master_node_instance_type: str | None = None  # None: no dedicated master nodes
    master_nodes: int = 0
    zone_awareness_azs: int = 0  # 0: zone awareness off (one AZ)
    volume_size_gib: int = 10
    index_name: str = "rag-explorer-chunks"
    # replicas per shard, applied by an index template; 0 keeps a one-node cluster green
    index_replicas: int = 0


@dataclass(frozen=True, kw_only=True)
class FunctionsConfig:
    """Lambda sizing and the ingestion flow control."""

    query_memory_mb: int = 2048
    health_memory_mb: int = 1024
    ingest_memory_mb: int = 2048
    query_timeout: Duration = field(default_factory=lambda: Duration.seconds(29))
    ingest_timeout: Duration = field(default_factory=lambda: Duration.minutes(5))
    ingest_batch_size: int = 5
    ingest_batching_window: Duration = field(default_factory=lambda: Duration.seconds(10))
    # reserved concurrency of the ingest function: at most this many batches index at once
    ingest_reserved_concurrency: int = 2
    ingest_max_receive_count: int = 5  # deliveries before a message goes to the dead-letter queue


@dataclass(frozen=True, kw_only=True)
class ApiConfig:
    """The REST API."""

    stage_name: str = "v1"
    throttle_rate_limit: int = 20  # requests per second, per API key (usage plan)
    throttle_burst_limit: int = 40
    quota_per_day: int = 10_000
    stage_throttle_rate_limit: int = 50  # the whole stage, keyed or not
    stage_throttle_burst_limit: int = 100
    # each route without an API key (/health, /openapi.json, /docs) on its own: the usage plan does not
    # apply to them, so their method throttle keeps them from using up the stage's limit
    public_throttle_rate_limit: int = 5
    public_throttle_burst_limit: int = 10
    cors_allow_origins: tuple[str, ...] = ()  # () : no CORS (same-origin and server-to-server callers)
    waf: bool = False


@dataclass(frozen=True, kw_only=True)
class MonitoringConfig:
    """Alarm thresholds and the alarm topic."""

    query_latency_p99_ms: int = 3000
    api_5xx_rate_percent: float = 5.0
    alarm_topic_cmk: bool = False  # a customer managed KMS key for the SNS topic (1 USD/month)
    canary: bool = True  # CodeDeploy canary for the query function


@dataclass(frozen=True, kw_only=True)
class StageConfig:
    name: StageName
    network: NetworkConfig | None  # None: no VPC (the domain has a public, IAM-signed endpoint)
    search: SearchConfig
    functions: FunctionsConfig
    api: ApiConfig
    monitoring: MonitoringConfig
    removal_policy: RemovalPolicy
    log_retention: logs.RetentionDays
    noncurrent_version_expiration: Duration
    termination_protection: bool


def dev(*, removal_policy: RemovalPolicy = RemovalPolicy.DESTROY) -> StageConfig:
    """Lowest cost: one small OpenSearch node, no VPC, no WAF; stateful resources destroyed by default."""
    return StageConfig(
        name="dev",
        network=None,
        search=SearchConfig(data_node_instance_type="t3.small.search", data_nodes=1, volume_size_gib=10),
        functions=FunctionsConfig(),
        api=ApiConfig(cors_allow_origins=("*",)),
        monitoring=MonitoringConfig(),
        removal_policy=removal_policy,
        log_retention=logs.RetentionDays.TWO_WEEKS,
        noncurrent_version_expiration=Duration.days(7),
        termination_protection=False,
    )


def prod() -> StageConfig:
    """Highly available and locked down: VPC, 3-AZ domain with dedicated masters, WAF, stateful RETAIN."""
    return StageConfig(
        name="prod",
        network=NetworkConfig(),
        search=SearchConfig(
            data_node_instance_type="r6g.large.search",
            data_nodes=3,
            master_node_instance_type="m6g.large.search",
            master_nodes=3,
            zone_awareness_azs=3,
            volume_size_gib=20,
            index_replicas=1,
        ),
        functions=FunctionsConfig(ingest_reserved_concurrency=4),
        api=ApiConfig(
            throttle_rate_limit=50,
            throttle_burst_limit=100,
            quota_per_day=100_000,
            public_throttle_rate_limit=10,
            public_throttle_burst_limit=20,
            waf=True,
        ),
        monitoring=MonitoringConfig(alarm_topic_cmk=True),
        removal_policy=RemovalPolicy.RETAIN,
        log_retention=logs.RetentionDays.ONE_YEAR,
        noncurrent_version_expiration=Duration.days(90),
        termination_protection=True,
    )


def stage_config(name: str, *, dev_removal_policy: str | None = None) -> StageConfig:
    """The configuration of stage ``name`` (``dev`` or ``prod``).

    ``dev_removal_policy`` (``destroy`` or ``retain``) overrides the dev stage's removal policy for the
    stateful resources; prod always retains them.
    """
    if name == "dev":
        policies = {"destroy": RemovalPolicy.DESTROY, "retain": RemovalPolicy.RETAIN}
        if dev_removal_policy is None:
            return dev()
        if dev_removal_policy not in policies:
            raise ValueError(f"removal policy must be destroy or retain, not {dev_removal_policy!r}")
        return dev(removal_policy=policies[dev_removal_policy])
    if name == "prod":
        if dev_removal_policy is not None:
            raise ValueError("prod always retains its stateful resources; drop -c removal_policy")
        return prod()
    raise ValueError(f"unknown stage {name!r}: use one of {', '.join(STAGES)}")
