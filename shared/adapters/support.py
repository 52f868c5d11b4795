"""Builds the :class:`~shared.support.SupportDesk` for the HTTP API from settings: interactions in
DynamoDB when a table is configured (AWS), else in SQLite beside the local index; webhook tickets over
HTTPS, signed with the configured secret (or the one in Secrets Manager, read once)."""

from __future__ import annotations

import json
from functools import lru_cache

from shared.adapters.webhook import WebhookSender
from shared.errors import ConfigError
from shared.extras import needs_extra
from shared.feedback import InteractionStore
from shared.settings import Settings
from shared.support import SupportDesk


@lru_cache(maxsize=4)
def _secret_from_arn(arn: str) -> str:
    with needs_extra("aws", "the webhook secret in Secrets Manager"):
        import boto3

    try:
        value = str(boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
    except Exception as exc:
        raise ConfigError(f"cannot read the webhook secret {arn}: {type(exc).__name__}") from None
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        return value
    return str(data.get("webhook_secret", value)) if isinstance(data, dict) else value


def interaction_store(settings: Settings) -> InteractionStore:
    if settings.interactions_table:
        from shared.adapters.interactions_dynamodb import DynamoInteractionStore

        return DynamoInteractionStore(
            settings.interactions_table, retention_days=settings.interaction_retention_days
        )
    from shared.interactions_sqlite import SqliteInteractionStore

    return SqliteInteractionStore(settings.interactions_path)


def make_desk(settings: Settings) -> SupportDesk:
    def secret() -> str | None:
        if settings.webhook_secret:
            return settings.webhook_secret
        return _secret_from_arn(settings.webhook_secret_arn) if settings.webhook_secret_arn else None

    return SupportDesk(settings, interaction_store(settings), WebhookSender(secret))
