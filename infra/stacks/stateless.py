"""Stateless stack: everything that can be replaced at will — the ingestion flow, the functions, the API
(with the help widget's publishable keys), the secrets, monitoring and the canary deployment. It composes
constructs and grants access only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import bundling
from infra.components.api import QueryApi
from infra.components.ingestion import Ingestion
from infra.components.monitoring import CanaryDeployment, Monitoring, ServiceNames
from infra.components.network import VpcPlacement
from infra.components.query import QueryFunctions
from infra.components.search import SearchAccess
from infra.components.site_keys import PublishableKeys
from infra.config import StageConfig, output_id
from infra.stacks.stateful import StatefulStack
from shared.adapters.telemetry import NAMESPACE


class StatelessStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        stateful: StatefulStack,
        cache_dir: Path = bundling.DEFAULT_CACHE_DIR,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"RAG Explorer ({config.name}): ingestion, functions, API, monitoring",
            termination_protection=config.termination_protection,
            **kwargs,
        )
        network, search = stateful.network, stateful.search
        # each function's metrics carry the stage in their service dimension (see ServiceNames)
        self.services = ServiceNames.of_stage(config.name)
        # in the VPC with the domain (prod, OpenSearch); S3 Vectors needs no VPC (StageConfig refuses one)
        placement = (
            network.placement(search.client_security_group)
            if network and search and search.client_security_group
            else None
        )
        # the help widget's keys first: the query and health functions' environment names them
        self.site_keys = PublishableKeys(self, "SiteKeys", sites=config.widget.sites)
        ingestion, functions = self._functions(
            config=config, stateful=stateful, placement=placement, cache_dir=cache_dir
        )
        self._grant_access(config=config, stateful=stateful, ingestion=ingestion, functions=functions)

        api = QueryApi(
            self,
            "Api",
            query_function=functions.live,
            health_function=functions.health.function,
            config=config.api,
            log_retention=config.log_retention,
            removal_policy=config.removal_policy,
            site_keys=self.site_keys,
            name=f"rag-explorer-{config.name}",
        )
        monitoring = self._monitoring(
            config=config, stateful=stateful, ingestion=ingestion, functions=functions, api=api
        )
        if config.monitoring.canary:
            CanaryDeployment(
                self, "QueryDeployment", alias=functions.live, alarms=monitoring.deployment_alarms
            )
        self._outputs(ingestion=ingestion, functions=functions, api=api, monitoring=monitoring)

    @staticmethod
    def _environment(config: StageConfig, stateful: StatefulStack, service: str) -> dict[str, str]:
        """What every function shares; the collections too (the ingest function files each object under
        one and links its chunks with the collection's URL template)."""
        return {
            **StatelessStack._store_environment(stateful),
            "RAG_EXPLORER_DOCUMENT_BUCKET": stateful.documents.bucket.bucket_name,
            "RAG_EXPLORER_HOME": "/tmp/rag-explorer",  # noqa: S108 - Lambda's only writable folder
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
            "RAG_EXPLORER_COLLECTIONS": config.widget.collections_json(),
        }

    @staticmethod
    def _store_environment(stateful: StatefulStack) -> dict[str, str]:
        if stateful.search is not None:
            return {
                "RAG_EXPLORER_STORE": "opensearch",
                "RAG_EXPLORER_OPENSEARCH_URL": stateful.search.endpoint_url,
                "RAG_EXPLORER_OPENSEARCH_AUTH": "sigv4",
                "RAG_EXPLORER_OPENSEARCH_INDEX": stateful.search.index_name,
            }
        assert stateful.vectors is not None
        return {
            "RAG_EXPLORER_STORE": "s3vectors",
            "RAG_EXPLORER_S3VECTORS_BUCKET": stateful.vectors.bucket_name,
            "RAG_EXPLORER_S3VECTORS_INDEX": stateful.vectors.index_name,
        }

    def _api_environment(self, config: StageConfig, stateful: StatefulStack, service: str) -> dict[str, str]:
        """The query and health functions: the sites (which key ids are publishable), so that both refuse a
        publishable key on the routes it may not call."""
        return {
            **self._environment(config, stateful, service),
            "RAG_EXPLORER_SITES": self.site_keys.sites_environment(),
        }

    def _functions(
        self,
        *,
        config: StageConfig,
        stateful: StatefulStack,
        placement: VpcPlacement | None,
        cache_dir: Path,
    ) -> tuple[Ingestion, QueryFunctions]:
        def code(name: str) -> lambda_.Code:
            return bundling.function_code(name, cache_dir=cache_dir)

        ingestion = Ingestion(
            self,
            "Ingestion",
            document_bucket_name=stateful.documents.bucket.bucket_name,
            code=code("ingest"),
            environment=self._environment(config, stateful, self.services.ingest),
            config=config.functions,
            log_retention=config.log_retention,
            placement=placement,
        )
        functions = QueryFunctions(
            self,
            "QueryFunctions",
            query_code=code("query"),
            health_code=code("health"),
            environment=self._api_environment(config, stateful, self.services.query),
            config=config.functions,
            log_retention=config.log_retention,
            removal_policy=config.removal_policy,
            placement=placement,
            webhook_secret=config.widget.webhook,
        )
        functions.health.function.add_environment("POWERTOOLS_SERVICE_NAME", self.services.health)
        # the interactions (questions, answers, feedback) are kept by the query function alone
        query = functions.query.function
        query.add_environment("RAG_EXPLORER_INTERACTIONS_TABLE", stateful.interactions.table_name)
        # answers shared by every warm query function (the in-process cache is per function)
        query.add_environment("RAG_EXPLORER_ANSWER_CACHE_TABLE", stateful.answer_cache.table_name)
        query.add_environment(
            "RAG_EXPLORER_INTERACTION_RETENTION_DAYS", str(config.widget.interaction_retention_days)
        )
        return ingestion, functions

    def _grant_access(
        self,
        *,
        config: StageConfig,
        stateful: StatefulStack,
        ingestion: Ingestion,
        functions: QueryFunctions,
    ) -> None:
        documents, search = stateful.documents, stateful.search
        documents.grant_read_documents(ingestion.function.role, policy_owner=ingestion.function)
        documents.grant_check_bucket(functions.health.role)
        documents.grant_check_bucket(functions.query.role)
        stateful.interactions.grant_record(functions.query.role)
        stateful.answer_cache.grant_cache(functions.query.role)
        if stateful.vectors is not None:  # IAM alone: the index's ARN, exactly the actions each function uses
            stateful.vectors.grant_read_write(ingestion.function.role)
            for fn in (functions.query, functions.health):
                stateful.vectors.grant_read(fn.role)
            return
        assert search is not None
        # access: IAM first, then the fine-grained roles inside the domain
        search.grant_http_read_write(ingestion.function.role, policy_owner=ingestion.function)
        for fn in (functions.query, functions.health):
            search.grant_http_read(fn.role, policy_owner=fn)
        SearchAccess(
            self,
            "SearchAccess",
            search=search,
            readers=[functions.query.role, functions.health.role],
            writers=[ingestion.function.role],
            admin_role_arns=config.search.admin_role_arns,
        )

    def _monitoring(
        self,
        *,
        config: StageConfig,
        stateful: StatefulStack,
        ingestion: Ingestion,
        functions: QueryFunctions,
        api: QueryApi,
    ) -> Monitoring:
        return Monitoring(
            self,
            "Monitoring",
            services=self.services,
            query_alias=functions.live,
            functions={
                "Query": functions.live,
                "Health": functions.health.function,
                "Ingest": ingestion.function.function,
            },
            api=api.api,
            queue=ingestion.queue,
            dead_letter_queue=ingestion.dead_letter_queue,
            domain=stateful.search.domain if stateful.search else None,
            config=config.monitoring,
            removal_policy=config.removal_policy,
        )

    def _outputs(
        self, *, ingestion: Ingestion, functions: QueryFunctions, api: QueryApi, monitoring: Monitoring
    ) -> None:
        CfnOutput(self, "ApiUrl", value=api.url, description="Base URL: POST {ApiUrl}query")
        CfnOutput(self, "ApiKeyId", value=api.api_key.key_id)
        CfnOutput(
            self,
            "GetApiKeyCommand",
            value=f"aws apigateway get-api-key --api-key {api.api_key.key_id} --include-value "
            "--query value --output text",
        )
        for name, key in self.site_keys.keys.items():
            site_id = output_id(name)
            CfnOutput(
                self,
                f"Site{site_id}KeyId",
                value=key.key_id,
                description=f"Help widget, site {name}: the id of its publishable key",
            )
            CfnOutput(
                self,
                f"Site{site_id}GetKeyCommand",
                value=f"aws apigateway get-api-key --api-key {key.key_id} --include-value "
                "--query value --output text",
                description=f"Help widget, site {name}: prints the key for the script tag's data-key",
            )
        CfnOutput(self, "LlmSecretArn", value=functions.llm_secret.secret_arn)
        if functions.webhook_secret is not None:
            CfnOutput(
                self,
                "WebhookSecretArn",
                value=functions.webhook_secret.secret_arn,
                description="Signs webhook handoff tickets; your receiver verifies with its value "
                "(aws secretsmanager get-secret-value --secret-id ARN --query SecretString)",
            )
        CfnOutput(self, "AlarmTopicArn", value=monitoring.topic.topic_arn)
        CfnOutput(self, "DeadLetterQueueUrl", value=ingestion.dead_letter_queue.queue_url)
        CfnOutput(
            self,
            "DashboardUrl",
            value=f"https://console.aws.amazon.com/cloudwatch/home?region={self.region}"
            f"#dashboards:name={monitoring.dashboard.dashboard_name}",
        )
