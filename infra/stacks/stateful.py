"""Stateful stack: what holds data and must outlive deployments (documents, the search index, the help
widget's interactions) and, in prod, the network they live in."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from constructs import Construct

from infra.components.answer_cache import AnswerCacheTable
from infra.components.interactions import InteractionsTable
from infra.components.network import Network
from infra.components.search import SearchDomain
from infra.components.storage import DocumentStore
from infra.config import StageConfig


class StatefulStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any) -> None:
        # an environment-agnostic stack sees two AZs; the prod domain spreads over three (see below)
        self._az_count = config.network.max_azs if config.network else 2
        super().__init__(
            scope,
            construct_id,
            description=f"RAG Explorer ({config.name}): documents, search domain, interactions table"
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
        self.search = SearchDomain(
            self,
            "Search",
            config=config.search,
            removal_policy=config.removal_policy,
            log_retention=config.log_retention,
            network=self.network,
        )
        self.interactions = InteractionsTable(self, "Interactions", removal_policy=config.removal_policy)
        self.answer_cache = AnswerCacheTable(self, "AnswerCache")
        CfnOutput(
            self,
            "DocumentBucketName",
            value=self.documents.bucket.bucket_name,
            description="Upload documents here (aws s3 sync DOCS s3://BUCKET/)",
        )
        CfnOutput(self, "SearchDomainEndpoint", value=self.search.endpoint_url)
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
