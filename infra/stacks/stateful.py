"""Stateful stack: what holds data and must outlive deployments (documents, the search index, the help
widget's interactions) and, in prod, the network they live in. The search index is an OpenSearch domain
(``store="opensearch"``, the default) or an Amazon S3 Vectors bucket and index (``store="s3vectors"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from constructs import Construct

from infra import bundling
from infra.components.answer_cache import AnswerCacheTable
from infra.components.interactions import InteractionsTable
from infra.components.network import Network
from infra.components.search import SearchDomain
from infra.components.storage import DocumentStore
from infra.components.vectors import VectorIndex
from infra.config import StageConfig


class StatefulStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        cache_dir: Path = bundling.DEFAULT_CACHE_DIR,
        **kwargs: Any,
    ) -> None:
        # an environment-agnostic stack sees two AZs; the prod domain spreads over three (see below)
        self._az_count = config.network.max_azs if config.network else 2
        index = "search domain" if config.store == "opensearch" else "S3 Vectors index"
        super().__init__(
            scope,
            construct_id,
            description=f"RAG Explorer ({config.name}): documents, {index}, interactions table"
            + (", VPC" if config.network else ""),
            termination_protection=config.termination_protection,
            **kwargs,
        )
        self.network: Network | None = None
        if config.network:
            self.network = Network(
                self,
                "Network",
                max_azs=config.network.max_azs,
                nat_gateways=config.network.nat_gateways,
                interface_endpoints=config.network.interface_endpoints,
                log_retention=config.log_retention,
                removal_policy=config.removal_policy,
            )
        self.documents = DocumentStore(
            self,
            "Documents",
            removal_policy=config.removal_policy,
            noncurrent_version_expiration=config.noncurrent_version_expiration,
        )
        # one of the two, after config.store
        self.search: SearchDomain | None = None
        self.vectors: VectorIndex | None = None
        if config.store == "opensearch":
            self.search = SearchDomain(
                self,
                "Search",
                config=config.search,
                removal_policy=config.removal_policy,
                log_retention=config.log_retention,
                network=self.network,
            )
        else:
            self.vectors = VectorIndex(
                self,
                "Vectors",
                dimension=config.vectors.dimension,
                removal_policy=config.removal_policy,
                log_retention=config.log_retention,
                cache_dir=cache_dir,
            )
        self.interactions = InteractionsTable(self, "Interactions", removal_policy=config.removal_policy)
        self.answer_cache = AnswerCacheTable(self, "AnswerCache")
        CfnOutput(
            self,
            "DocumentBucketName",
            value=self.documents.bucket.bucket_name,
            description="Upload documents here (aws s3 sync DOCS s3://BUCKET/)",
        )
        if self.search is not None:
            CfnOutput(self, "SearchDomainEndpoint", value=self.search.endpoint_url)
        if self.vectors is not None:
            CfnOutput(self, "VectorBucketName", value=self.vectors.bucket_name)
            CfnOutput(
                self,
                "VectorIndexName",
                value=self.vectors.index_name,
                description="The S3 Vectors index of the vector bucket (RAG_EXPLORER_S3VECTORS_INDEX)",
            )
        CfnOutput(
            self,
            "InteractionsTableName",
            value=self.interactions.table_name,
            description="Help-widget questions, answers and feedback (deleted by TTL after the retention)",
        )

    @property
    def availability_zones(self) -> list[str]:
        """The stacks are environment-agnostic, for which CDK assumes two AZs. The prod VPC and its 3-AZ
        domain need three: they are picked at deploy time with ``Fn::GetAZs``."""
        return [Fn.select(i, Fn.get_azs()) for i in range(self._az_count)]
