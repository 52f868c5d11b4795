"""Stage configuration: every knob that differs between ``dev`` and ``prod``, typed and in one place.

Only ``app.py`` chooses a stage (``cdk synth -c stage=prod``); constructs and stacks receive the parts of
:class:`StageConfig` they need as typed keyword arguments and never read context or the environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar, cast

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs
from pydantic import BaseModel, ValidationError

from shared.embeddings.minilm import MiniLMEmbedder
from shared.models import COLLECTION_PATTERN, DEFAULT_COLLECTION
from shared.settings import DEFAULTS
from shared.sites import CollectionSettings, Site, handoff_kind
from shared.stores.s3vectors_requests import MAX_DIMENSION

StageName = Literal["dev", "prod"]
#: where the functions keep the index: an OpenSearch Service domain (the default) or an Amazon S3 Vectors
#: index (no instances: billed per GB stored and per query)
StoreName = Literal["opensearch", "s3vectors"]
STORES: tuple[StoreName, ...] = ("opensearch", "s3vectors")
#: what the security plugin matches a signed request's role against (an ``assumed-role`` ARN never matches)
IAM_ROLE_ARN_PATTERN = r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+"
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
    # IAM roles of the people who administer the domain (Dashboards, index settings, the troubleshooting
    # steps of docs/deployment.md): mapped to the security plugin's all_access role by the bootstrap custom
    # resource. The domain's master user is the bootstrap function's role, which only Lambda can assume.
    # Also from the context: cdk deploy -c admin_role_arns=arn:aws:iam::123456789012:role/Admin,...
    admin_role_arns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for arn in self.admin_role_arns:
            if not re.fullmatch(IAM_ROLE_ARN_PATTERN, arn):
                raise ValueError(
                    f"admin role {arn!r}: an IAM role ARN, arn:aws:iam::<account>:role/<name> "
                    "(an assumed-role session ARN does not work: map its role)"
                )


def _default_embedder_dimension() -> int:
    # the stack sets no RAG_EXPLORER_EMBEDDER: the functions embed with the settings' default embedder
    if DEFAULTS.embedder != MiniLMEmbedder.name:
        raise ValueError(f"the default embedder is {DEFAULTS.embedder}: give VectorsConfig its dimension")
    return MiniLMEmbedder.dimension


@dataclass(frozen=True, kw_only=True)
class VectorsConfig:
    """The Amazon S3 Vectors bucket and index (``store="s3vectors"``); the index's data type, distance
    metric, metadata layout and mode are the adapter's (``shared.stores.s3vectors_requests``)."""

    # the functions' embedder's (all-MiniLM-L6-v2: 384); an index's dimension cannot change: a new value
    # replaces the index (CloudFormation), and the documents must be ingested again
    dimension: int = field(default_factory=_default_embedder_dimension)

    def __post_init__(self) -> None:
        if not 1 <= self.dimension <= MAX_DIMENSION:
            raise ValueError(f"an S3 Vectors index has 1 to {MAX_DIMENSION} dimensions, not {self.dimension}")


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
    # the SQS event source's maximum concurrency: at most this many batches index at once (Lambda: 2 to
    # 1,000). Not reserved concurrency, which the SQS poller ignores: its throttled batches come back after
    # the visibility timeout as receives, and after ingest_max_receive_count of them land in the DLQ.
    ingest_max_concurrency: int = 2
    ingest_max_receive_count: int = 5  # deliveries before a message goes to the dead-letter queue

    def __post_init__(self) -> None:
        if not 2 <= self.ingest_max_concurrency <= 1000:
            raise ValueError(
                f"ingest_max_concurrency is between 2 and 1000, not {self.ingest_max_concurrency}"
            )


@dataclass(frozen=True, kw_only=True)
class ApiConfig:
    """The REST API."""

    stage_name: str = "v1"
    throttle_rate_limit: int = 20  # requests per second, per API key (usage plan)
    throttle_burst_limit: int = 40
    quota_per_day: int = 10_000
    stage_throttle_rate_limit: int = 50  # the whole stage, keyed or not
    stage_throttle_burst_limit: int = 100
    # each route without an API key (/health, /openapi.json, /docs, the widget's script and the CORS
    # preflights) on its own: the usage plan does not apply to them, so their method throttle keeps them
    # from using up the stage's limit
    public_throttle_rate_limit: int = 5
    public_throttle_burst_limit: int = 10
    # each help-widget site's publishable key, in a usage plan of its own: a publishable key is public (it
    # is in the page's HTML), so these bound what a script that copies it can spend. The quota is a cost
    # ceiling, not an abuse defence: whoever holds the key can use it up for the day (the WAF's per-address
    # rule makes that take many addresses). A site over it gets 429 until midnight UTC.
    publishable_throttle_rate_limit: int = 10
    publishable_throttle_burst_limit: int = 20
    publishable_quota_per_day: int = 5_000
    waf: bool = False
    # requests one client address may send to /query and /feedback (the widget's routes) per 5 minutes
    # before the WAF answers 429 for a while; only where the stage has a WAF (waf=True)
    publishable_requests_per_ip: int = 300
    # GET /analytics/summary and /analytics/gaps (secret keys; reports): per key, in the secret key's usage
    # plan. Heavier than /query: a summary reads a period of the interactions table, and gaps embeds and
    # clusters up to 1,000 questions, which can take most of API Gateway's 29 s.
    analytics_throttle_rate_limit: float = 1
    analytics_throttle_burst_limit: int = 2


@dataclass(frozen=True, kw_only=True)
class MonitoringConfig:
    """Alarm thresholds and the alarm topic."""

    query_latency_p99_ms: int = 3000
    api_5xx_rate_percent: float = 5.0
    alarm_topic_cmk: bool = False  # a customer managed KMS key for the SNS topic (1 USD/month)
    canary: bool = True  # CodeDeploy canary for the query function
    # the answer-rate alarm: Answered / (Answered + Refused) of /query below this share in an hour (a bad
    # ingest, a broken index), evaluated only in an hour with at least answer_rate_min_questions questions
    answer_rate_floor: float = 0.5
    answer_rate_min_questions: int = 20

    def __post_init__(self) -> None:
        if not 0 <= self.answer_rate_floor <= 1:
            raise ValueError(f"answer_rate_floor is a share between 0 and 1, not {self.answer_rate_floor}")
        if self.answer_rate_min_questions < 1:
            raise ValueError(
                f"answer_rate_min_questions must be at least 1, not {self.answer_rate_min_questions}"
            )


#: Lambda allows 4 KB of environment variables per function; the sites' and collections' JSON may take
#: this much of it (the rest is the store, bucket, table and secret settings).
MAX_WIDGET_ENVIRONMENT_BYTES = 3000
#: An API Gateway key id is 10 characters: the size of a site's JSON is estimated with one this long.
_KEY_ID_PLACEHOLDER = "k" * 10


_Model = TypeVar("_Model", bound=BaseModel)


def _validated(model: type[_Model], what: str, **fields: Any) -> _Model:
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ValueError(f"{what}: {problems}") from None


def site(name: str, *, origins: Sequence[str], collection: str = DEFAULT_COLLECTION) -> Site:
    """A help-widget site of a stage, validated as the app validates it (``shared.sites.Site``): a bad
    origin fails ``cdk synth`` with the reason. Its publishable key is created by API Gateway."""
    return _validated(Site, f"site {name!r}", name=name, collection=collection, origins=list(origins))


def collection(
    *,
    url_template: str | None = None,
    handoff: str | None = None,
    escalation: str | None = None,
    prefix: str | None = None,
) -> CollectionSettings:
    """A collection's public links and handoff (``shared.sites.CollectionSettings``), validated."""
    return _validated(
        CollectionSettings,
        "collection",
        url_template=url_template,
        handoff=handoff,
        escalation=escalation,
        prefix=prefix,
    )


def output_id(name: str) -> str:
    """A site or collection name as the alphanumeric part of a construct or output id (help-center ->
    HelpCenter)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", name) if part)


@dataclass(frozen=True, kw_only=True)
class WidgetConfig:
    """The help widget in the cloud: the sites that embed it (one publishable API key each) and the
    collections they answer from (public URL template, handoff, S3 prefix; ``shared.sites``).

    Build the entries with :func:`site` and :func:`collection`. A collection without an entry still
    works: its documents are under ``<name>/`` in the bucket and its citations have no links.
    """

    sites: tuple[Site, ...] = ()
    collections: Mapping[str, CollectionSettings] = field(default_factory=dict)
    interaction_retention_days: int = 90  # the interactions table's TTL (RAG_EXPLORER_INTERACTION_...)

    def __post_init__(self) -> None:
        for entry in self.sites:
            if not isinstance(entry, Site):
                raise TypeError(f"sites holds Site values (infra.config.site(...)), not {entry!r}")
            if entry.key or entry.key_id:
                raise ValueError(
                    f"site {entry.name!r}: leave key and key_id unset; API Gateway creates the key"
                )
        for what, names in (
            ("site names", [s.name for s in self.sites]),
            ("site output ids", [output_id(s.name) for s in self.sites]),
        ):
            if len(names) != len(set(names)):
                raise ValueError(f"two sites share one of their {what}: {names}")
        for name, settings in self.collections.items():
            if not re.fullmatch(COLLECTION_PATTERN, name):
                raise ValueError(f"collection name {name!r}: lower-case letters, digits, - and _")
            if not isinstance(settings, CollectionSettings):
                raise TypeError(f"collection {name!r}: use infra.config.collection(...)")
        if not 1 <= self.interaction_retention_days <= 3650:
            raise ValueError("interaction_retention_days must be between 1 and 3650")
        size = len(self.sites_json(_KEY_ID_PLACEHOLDER)) + len(self.collections_json())
        if size > MAX_WIDGET_ENVIRONMENT_BYTES:
            raise ValueError(
                f"the sites and collections take {size} bytes of the functions' environment (at most "
                f"{MAX_WIDGET_ENVIRONMENT_BYTES}; Lambda allows 4 KB in all): list fewer sites or origins"
            )

    @property
    def webhook(self) -> bool:
        """Some collection hands off to a webhook: the functions need the secret that signs tickets."""
        return any(c.handoff and handoff_kind(c.handoff) == "webhook" for c in self.collections.values())

    def sites_json(self, key_id: str | None = None) -> str:
        """``RAG_EXPLORER_SITES`` with every site's ``key_id`` set to ``key_id`` (sizing only)."""
        return json.dumps(
            [s.model_copy(update={"key_id": key_id}).model_dump(exclude_none=True) for s in self.sites],
            separators=(",", ":"),
        )

    def collections_json(self) -> str:
        """``RAG_EXPLORER_COLLECTIONS``: the collections' settings as the app reads them."""
        return json.dumps(
            {name: c.model_dump(exclude_none=True) for name, c in self.collections.items()},
            separators=(",", ":"),
        )


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
    widget: WidgetConfig = field(default_factory=WidgetConfig)
    store: StoreName = "opensearch"  # -c store=s3vectors (with_store): the zero-idle-cost profile
    vectors: VectorsConfig = field(default_factory=VectorsConfig)

    def __post_init__(self) -> None:
        if self.store not in STORES:
            raise ValueError(
                f"stage {self.name}: store must be one of {', '.join(STORES)}, not {self.store!r}"
            )
        if self.store == "s3vectors" and self.network is not None:
            raise ValueError(
                f"stage {self.name}: the VPC is the OpenSearch domain's; with store s3vectors the functions "
                "call S3 Vectors' regional HTTPS endpoint with IAM, like S3 and DynamoDB: set network=None "
                "(with_store does)"
            )
        if self.widget.webhook and self.network is not None and self.network.nat_gateways == 0:
            raise ValueError(
                f"stage {self.name}: a webhook handoff POSTs tickets to the internet, and the functions in "
                "this stage's VPC have no egress: set NetworkConfig(nat_gateways=1) (about 33 USD/month "
                "per NAT gateway) or use a form or mailto handoff"
            )


def dev(*, removal_policy: RemovalPolicy = RemovalPolicy.DESTROY) -> StageConfig:
    """Lowest cost: one small OpenSearch node, no VPC, no WAF; stateful resources destroyed by default;
    one placeholder help-widget site."""
    return StageConfig(
        name="dev",
        network=None,
        search=SearchConfig(data_node_instance_type="t3.small.search", data_nodes=1, volume_size_gib=10),
        functions=FunctionsConfig(),
        api=ApiConfig(),
        # dev answers from test documents and is asked test questions: many refusals are normal there
        monitoring=MonitoringConfig(answer_rate_floor=0.3),
        removal_policy=removal_policy,
        log_retention=logs.RetentionDays.TWO_WEEKS,
        noncurrent_version_expiration=Duration.days(7),
        termination_protection=False,
        widget=WidgetConfig(
            # a placeholder so that dev deploys with one site: a page served on your machine
            # (http://localhost:8000) may embed the widget with this site's key. Replace the origins with
            # your help center's, and add collections (see prod below) for links and a handoff.
            sites=(site("docs", collection=DEFAULT_COLLECTION, origins=["http://localhost:8000"]),),
            interaction_retention_days=30,
        ),
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
        functions=FunctionsConfig(ingest_max_concurrency=4),
        api=ApiConfig(
            throttle_rate_limit=50,
            throttle_burst_limit=100,
            quota_per_day=100_000,
            public_throttle_rate_limit=10,
            public_throttle_burst_limit=20,
            publishable_quota_per_day=50_000,
            waf=True,
        ),
        monitoring=MonitoringConfig(alarm_topic_cmk=True, answer_rate_floor=0.5),
        removal_policy=RemovalPolicy.RETAIN,
        log_retention=logs.RetentionDays.ONE_YEAR,
        noncurrent_version_expiration=Duration.days(90),
        termination_protection=True,
        # no help-widget site until you add one (docs/deployment.md, "The help widget"), for example:
        #   widget=WidgetConfig(
        #       sites=(site("help-center", collection="help", origins=["https://help.example.com"]),),
        #       collections={"help": collection(
        #           url_template="https://help.example.com/{path}",
        #           handoff="https://support.example.com/new?q={question}&ref={interaction_id}")},
        #   ),
        widget=WidgetConfig(),
    )


def with_store(config: StageConfig, store: str) -> StageConfig:
    """``config`` keeping its index in ``store``. S3 Vectors drops the VPC: the network exists to keep the
    OpenSearch domain private, and S3 Vectors has no network presence (an IAM-signed regional HTTPS API,
    like S3 and DynamoDB), so a VPC would only add its interface endpoints' hourly cost and take the
    functions' internet egress (OpenAI answers, webhook handoffs) away. StageConfig validates ``store``."""
    network = None if store == "s3vectors" else config.network
    return replace(config, store=cast(StoreName, store), network=network)


def stage_config(
    name: str,
    *,
    dev_removal_policy: str | None = None,
    admin_role_arns: str | None = None,
    store: str | None = None,
) -> StageConfig:
    """The configuration of stage ``name`` (``dev`` or ``prod``).

    ``dev_removal_policy`` (``destroy`` or ``retain``) overrides the dev stage's removal policy for the
    stateful resources; prod always retains them. ``admin_role_arns`` (comma-separated IAM role ARNs, from
    ``-c admin_role_arns=...``) replaces the stage's ``SearchConfig.admin_role_arns``. ``store``
    (``opensearch`` or ``s3vectors``, from ``-c store=...``) replaces the stage's store (:func:`with_store`).
    """
    config = _stage_config(name, dev_removal_policy=dev_removal_policy)
    if store is not None:
        config = with_store(config, store)
    if admin_role_arns is None:
        return config
    arns = tuple(arn.strip() for arn in admin_role_arns.split(",") if arn.strip())
    return replace(config, search=replace(config.search, admin_role_arns=arns))


def _stage_config(name: str, *, dev_removal_policy: str | None) -> StageConfig:
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
