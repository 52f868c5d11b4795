"""The functions behind the API: query (published behind the ``live`` alias), health, and the secrets
that only the query function can read: the LLM keys, and (when a collection hands off to a webhook) the
key that signs webhook tickets."""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.components.function import AppFunction
from infra.components.network import VpcPlacement
from infra.config import FunctionsConfig
from infra.nag import acknowledge

LIVE_ALIAS = "live"


class QueryFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        query_code: lambda_.Code,
        health_code: lambda_.Code,
        environment: Mapping[str, str],
        config: FunctionsConfig,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        placement: VpcPlacement | None = None,
        webhook_secret: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.llm_secret = self._llm_secret(removal_policy)
        self.webhook_secret = self._webhook_secret(removal_policy) if webhook_secret else None
        secrets = {"RAG_EXPLORER_LLM_SECRET_ARN": self.llm_secret.secret_arn}
        if self.webhook_secret is not None:
            secrets["RAG_EXPLORER_WEBHOOK_SECRET_ARN"] = self.webhook_secret.secret_arn
        self.query = AppFunction(
            self,
            "Query",
            code=query_code,
            handler="handler.lambda_handler",
            description="RAG Explorer query: POST /query, POST /search, POST /feedback, GET /analytics/*, "
            "CORS preflights",
            memory_size=config.query_memory_mb,
            timeout=config.query_timeout,
            environment={**environment, **secrets},
            log_retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
            placement=placement,
        )
        self.health = AppFunction(
            self,
            "Health",
            code=health_code,
            handler="handler.lambda_handler",
            description="RAG Explorer health: GET /health, GET /health/detailed, GET /openapi.json, "
            "GET /docs, GET /widget.js",
            memory_size=config.health_memory_mb,
            timeout=config.query_timeout,
            environment=environment,
            log_retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
            placement=placement,
        )
        # the version changes with the code or configuration; CodeDeploy shifts the alias to it
        self.live = lambda_.Alias(
            self, "Live", alias_name=LIVE_ALIAS, version=self.query.function.current_version
        )
        for secret in (self.llm_secret, self.webhook_secret):
            if secret is not None:
                self._grant_to_query_only(secret)

    def _llm_secret(self, removal_policy: RemovalPolicy) -> secretsmanager.Secret:
        llm_secret = secretsmanager.Secret(
            self,
            "LlmSecret",
            description="RAG Explorer: API keys of LLM answer providers, a JSON object "
            '({"openai_api_key": "..."}); read by the query function only',
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"openai_api_key": ""}),
                generate_string_key="unused",
                exclude_punctuation=True,
            ),
            removal_policy=removal_policy,
        )
        acknowledge(
            llm_secret,
            "AwsSolutions-SMG4",
            "Third-party LLM API keys are issued and rotated by their provider; operators store the new key "
            "with put-secret-value. There is nothing Secrets Manager could rotate on its own.",
        )
        return llm_secret

    def _webhook_secret(self, removal_policy: RemovalPolicy) -> secretsmanager.Secret:
        webhook_secret = secretsmanager.Secret(
            self,
            "WebhookSecret",
            description="RAG Explorer: the key that signs webhook handoff tickets (HMAC-SHA256 in "
            "X-RAG-Explorer-Signature); your webhook receiver verifies with the same value. Read by the "
            "query function only",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
            removal_policy=removal_policy,
        )
        acknowledge(
            webhook_secret,
            "AwsSolutions-SMG4",
            "The webhook signing key is shared with the operator's ticket receiver, which must verify with "
            "the new value from the moment it is used: a rotation function cannot update that receiver. "
            "Rotate by hand (put-secret-value, update the receiver, redeploy the query function).",
        )
        return webhook_secret

    def _grant_to_query_only(self, secret: secretsmanager.Secret) -> None:
        secret.grant_read(self.query.role)
        # readable only by the query function: deny every other principal, whatever its IAM policies say
        secret.add_to_resource_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["secretsmanager:GetSecretValue"],
                resources=["*"],
                conditions={"StringNotEquals": {"aws:PrincipalArn": self.query.role.role_arn}},
            )
        )
