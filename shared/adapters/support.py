"""Builds the :class:`~shared.support.SupportDesk` for the HTTP API from settings: interactions in
DynamoDB when a table is configured (AWS), else in SQLite beside the local index; webhook tickets over
HTTPS, signed with the configured secret (or the one in Secrets Manager, read once)."""

from __future__ import annotations

import json

from shared.adapters.webhook import WebhookSender
from shared.feedback import InteractionStore
from shared.llm.secrets import secret_string
from shared.settings import Settings
from shared.support import SupportDesk


def _secret_from_arn(arn: str) -> str:
    """The webhook secret: the secret's string, or its ``webhook_secret`` key when it holds JSON."""
    value = secret_string(arn, "webhook secret")
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
