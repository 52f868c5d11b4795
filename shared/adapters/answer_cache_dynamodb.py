"""The shared tier of the answer cache (:mod:`shared.answer_cache`) in DynamoDB, for Lambda instances that
come and go: one item per answer, ``cache_key`` (string) the partition key, the answer as JSON in
``response``, and ``expires_at`` (epoch seconds) for the table's TTL.

What infrastructure provides: an on-demand table with partition key ``cache_key`` (S) and TTL on
``expires_at``, its name in ``RAG_EXPLORER_ANSWER_CACHE_TABLE``, and ``dynamodb:GetItem`` and
``dynamodb:PutItem`` on it for the query function. Nothing else is needed: keys embed the index version,
so no item is ever updated or deleted by the application (TTL removes them; reads skip an expired item
that TTL has not removed yet).

A cache must never fail or stall a question: calls have short timeouts and one retry, and any failure is
logged and treated as a miss (or a lost write).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from shared.extras import needs_extra
from shared.models import AskResponse
from shared.settings import DEFAULTS

log = logging.getLogger(__name__)

KEY_ATTRIBUTE = "cache_key"
TTL_ATTRIBUTE = "expires_at"
#: DynamoDB's item limit is 400 KB; an answer is a few KB, and anything near the limit is not cached.
MAX_ITEM_BYTES = 350_000


def _default_client() -> Any:
    with needs_extra("aws", "the shared answer cache in DynamoDB"):
        import boto3
        from botocore.config import Config

    config = Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 2, "mode": "standard"})
    return boto3.client("dynamodb", config=config)


class DynamoAnswerCache:
    """:class:`shared.answer_cache.AnswerCache` on a DynamoDB table (see the module docstring)."""

    def __init__(
        self,
        table: str,
        *,
        ttl_s: float = DEFAULTS.answer_cache_ttl_s,
        client: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.ttl_s = ttl_s
        self._client = client
        self._clock = clock

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = _default_client()
        return self._client

    def get(self, key: str) -> AskResponse | None:
        try:
            found = self.client.get_item(
                TableName=self.table,
                Key={KEY_ATTRIBUTE: {"S": key}},
                ProjectionExpression="#r, #e",
                ExpressionAttributeNames={"#r": "response", "#e": TTL_ATTRIBUTE},
            )
        except Exception as exc:  # botocore raises many types; every one is a miss here
            log.warning("answer cache table %s unreadable: %s", self.table, _short(exc))
            return None
        item = found.get("Item")
        if not item or int(item.get(TTL_ATTRIBUTE, {}).get("N", "0")) <= self._clock():
            return None
        try:
            return AskResponse.model_validate_json(item["response"]["S"])
        except (KeyError, ValidationError) as exc:  # written by another release: a miss
            log.warning("unreadable answer in cache table %s: %s", self.table, _short(exc))
            return None

    def put(self, key: str, response: AskResponse) -> None:
        data = response.model_dump_json()
        if len(data.encode("utf-8")) > MAX_ITEM_BYTES:
            return
        item = {
            KEY_ATTRIBUTE: {"S": key},
            "response": {"S": data},
            TTL_ATTRIBUTE: {"N": str(int(self._clock() + self.ttl_s))},
        }
        try:
            self.client.put_item(TableName=self.table, Item=item)
        except Exception as exc:
            log.warning("answer not written to cache table %s: %s", self.table, _short(exc))


def _short(exc: BaseException) -> str:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    return str(code or f"{type(exc).__name__}: {str(exc)[:200]}")
