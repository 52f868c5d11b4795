"""The Amazon S3 Vectors bucket and index (stateful, ``store="s3vectors"``), and the IAM grants of the
functions that use it.

CloudFormation creates the vector bucket and the index (dimension, float32, cosine, the non-filterable
metadata keys of :mod:`shared.stores.s3vectors_requests`). What ``AWS::S3Vectors::Index`` cannot express
yet, the index mode (``ENHANCED``) and full-text search on ``text``, a small custom resource sets
(``infra/custom_resources/vector_index_setup``): its role may call ``GetIndex``, ``UpdateIndexMode`` and
``UpdateMetadataConfiguration`` on this index and nothing else.

IAM: every action the functions use takes the index as its resource type (Service Authorization
Reference, Amazon S3 Vectors), so each grant names this index's ARN, never the bucket or ``index/*``.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    CustomResource,
    Duration,
    ILocalBundling,
    RemovalPolicy,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3vectors as s3vectors
from constructs import Construct

from infra import bundling
from infra.components.function import AppFunction, custom_resource_provider
from shared.stores.s3vectors_requests import INDEX_MODE, NON_FILTERABLE_KEYS, TEXT_SEARCH, index_definition

# pinned, like the document bucket's and the domain's: a refactoring of the construct tree must never
# replace the vectors (a new logical id is a new bucket and index, and every document ingested again)
BUCKET_LOGICAL_ID = "VectorBucket"
INDEX_LOGICAL_ID = "VectorIndex"
SETUP_CODE = Path(__file__).resolve().parent.parent / "custom_resources" / "vector_index_setup"
# what the adapter calls (shared/stores/s3vectors.py). QueryVectors with a filter, returned metadata or
# query texts also needs GetVectors, and ListVectors with metadata too.
READ_ACTIONS = (
    "s3vectors:QueryVectors",
    "s3vectors:GetVectors",
    "s3vectors:ListVectors",
    "s3vectors:GetIndex",
)
WRITE_ACTIONS = ("s3vectors:PutVectors", "s3vectors:DeleteVectors")
SETUP_ACTIONS = ("s3vectors:GetIndex", "s3vectors:UpdateIndexMode", "s3vectors:UpdateMetadataConfiguration")
# boto3 and what it needs at run time, copied into the setup asset from the functions' dependency site
# (the pins of infra/runtime/requirements.txt): top-level entries, and their dist-info folders by name
SDK_ENTRIES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")
SDK_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python_dateutil", "six", "urllib3")
# bump when bundle_setup lays the asset out differently (the asset hash does not see this code)
SETUP_BUNDLE_FORMAT = "1"


def _botocore_models(folder: str, names: list[str]) -> list[str]:
    """Of botocore's service models, only S3 Vectors': 6 MB instead of 33 MB (the top-level files, the
    endpoints, partitions and retry rules, stay)."""
    if Path(folder).name == "data" and Path(folder).parent.name == "botocore":
        return [n for n in names if (Path(folder) / n).is_dir() and n != "s3vectors"]
    return []


def bundle_setup(output_dir: Path, *, site: Path) -> Path:
    """The setup function's asset: its handler and boto3/botocore from ``site`` (pure Python)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    for entry in SDK_ENTRIES:
        source = site / entry
        if source.is_dir():
            shutil.copytree(source, output_dir / entry, ignore=_botocore_models, dirs_exist_ok=True)
        else:
            shutil.copy2(source, output_dir / entry)
    for name in SDK_DISTRIBUTIONS:
        for info in site.glob(f"{name}-*.dist-info"):
            shutil.copytree(info, output_dir / info.name, dirs_exist_ok=True)
    shutil.copy2(SETUP_CODE / "index.py", output_dir / "index.py")
    return output_dir


@jsii.implements(ILocalBundling)
class _SetupBundler:
    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir

    def try_bundle(self, output_dir: str, options: BundlingOptions | None = None) -> bool:
        site = bundling.dependency_site(bundling.LAMBDA_ARM64_PY312, self.cache_dir)
        bundle_setup(Path(output_dir), site=site)
        return True


def setup_code(cache_dir: Path) -> lambda_.Code:
    """The setup function's code, bundled locally like the functions' (no Docker)."""
    digest = hashlib.sha256()
    for part in (
        SETUP_BUNDLE_FORMAT.encode(),
        bundling.site_key(bundling.LAMBDA_ARM64_PY312).encode(),  # the pinned boto3/botocore
        " ".join(SDK_ENTRIES + SDK_DISTRIBUTIONS).encode(),
        (SETUP_CODE / "index.py").read_bytes(),
    ):
        digest.update(hashlib.sha256(part).digest())
    return lambda_.Code.from_asset(
        str(SETUP_CODE),
        asset_hash=digest.hexdigest(),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            image=lambda_.Runtime.PYTHON_3_12.bundling_image,  # never pulled: the local bundler succeeds
            local=_SetupBundler(cache_dir),  # type: ignore[arg-type]
        ),
    )


class VectorIndex(Construct):
    """A vector bucket with one index, set up for the adapter (mode and full-text search included)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dimension: int,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        cache_dir: Path = bundling.DEFAULT_CACHE_DIR,
    ) -> None:
        super().__init__(scope, construct_id)
        definition = index_definition(dimension=dimension)
        # A vector bucket has no public access at all: no ACLs, no public policies, no website or anonymous
        # endpoint; every request is IAM-signed. Encrypted at rest with SSE-S3, said explicitly (the stateful
        # stack has no KMS key of its own; a customer managed key would cost 1 USD a month and its calls).
        # No name: CloudFormation generates one.
        self.bucket = s3vectors.CfnVectorBucket(
            self,
            "Bucket",
            encryption_configuration=s3vectors.CfnVectorBucket.EncryptionConfigurationProperty(
                sse_type="AES256"
            ),
        )
        self.bucket.override_logical_id(BUCKET_LOGICAL_ID)
        self.bucket.apply_removal_policy(removal_policy)
        self.bucket_arn = self.bucket.attr_vector_bucket_arn
        self.policy = s3vectors.CfnVectorBucketPolicy(
            self,
            "Policy",
            vector_bucket_arn=self.bucket_arn,
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="DenyInsecureTransport",
                        effect=iam.Effect.DENY,
                        principals=[iam.AnyPrincipal()],
                        actions=["s3vectors:*"],
                        resources=[self.bucket_arn, f"{self.bucket_arn}/*"],
                        conditions={"Bool": {"aws:SecureTransport": "false"}},
                    )
                ]
            ),
        )
        self.policy.apply_removal_policy(removal_policy)
        self.index = s3vectors.CfnIndex(
            self,
            "Index",
            vector_bucket_arn=self.bucket_arn,
            data_type=definition["dataType"],
            dimension=definition["dimension"],
            distance_metric=definition["distanceMetric"],
            metadata_configuration=s3vectors.CfnIndex.MetadataConfigurationProperty(
                non_filterable_metadata_keys=list(NON_FILTERABLE_KEYS)
            ),
        )
        self.index.override_logical_id(INDEX_LOGICAL_ID)
        self.index.apply_removal_policy(removal_policy)
        self.index_arn = self.index.attr_index_arn
        self._setup(log_retention=log_retention, cache_dir=cache_dir)
        # CloudFormation names both and returns only their ARNs: the names as GetIndex answers them (an
        # Fn::Split of the ARN would reach the stateless stack as Fn::Split of Fn::GetStackOutput, which
        # CloudFormation does not take)
        self.bucket_name = self.setup.get_att_string("VectorBucketName")
        self.index_name = self.setup.get_att_string("IndexName")

    def _setup(self, *, log_retention: logs.RetentionDays, cache_dir: Path) -> None:
        self.setup_function = AppFunction(
            self,
            "SetupFunction",
            code=setup_code(cache_dir),
            handler="index.on_event",
            description="RAG Explorer: S3 Vectors index mode and full-text search",
            memory_size=256,
            timeout=Duration.minutes(5),
            environment={},
            log_retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
            tracing=False,
        )
        iam.Grant.add_to_principal(
            grantee=self.setup_function.role, actions=list(SETUP_ACTIONS), resource_arns=[self.index_arn]
        )
        provider = custom_resource_provider(
            self,
            "SetupProvider",
            handler=self.setup_function,
            what="index setup",
            log_retention=log_retention,
        )
        self.setup = CustomResource(
            self,
            "Setup",
            service_token=provider.service_token,
            resource_type="Custom::S3VectorsIndexSetup",
            properties={
                "IndexArn": self.index_arn,
                "IndexMode": INDEX_MODE,
                "TextSearchConfigurations": [dict(c) for c in TEXT_SEARCH],
            },
        )
        # the role's policy first: the handler calls GetIndex as soon as it runs
        self.setup.node.add_dependency(self.setup_function.role)

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """Query, get and list vectors, and read the index's definition (the query and health functions)."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(READ_ACTIONS), resource_arns=[self.index_arn]
        )

    def grant_read_write(self, grantee: iam.IGrantable) -> None:
        """Read, and put and delete vectors (the ingest function)."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=[*WRITE_ACTIONS, *READ_ACTIONS], resource_arns=[self.index_arn]
        )
