"""Interactions in DynamoDB (AWS): one item per interaction, the record as JSON beside the attributes
reports query, ``day`` (``YYYY-MM-DD``, the partition key of the ``by_day`` index, sorted by
``created_at``) for reading a period day by day without a table scan, and ``expires_at`` (epoch seconds)
for the table's TTL, which is how retention is enforced here (DynamoDB deletes expired items within a
few days; reads skip them before that)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.errors import StoreError, StoreUnavailableError
from shared.extras import needs_extra
from shared.feedback import Interaction, in_window

DAY_INDEX = "by_day"

#: Days an interaction is kept before DynamoDB's TTL deletes it.
DEFAULT_RETENTION_DAYS = 90
_RETRYABLE = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}


def expires_at(created_at: str, days: int) -> int:
    created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    return int((created + timedelta(days=days)).timestamp())


class DynamoInteractionStore:
    """:class:`shared.feedback.InteractionStore` on a DynamoDB table (key ``interaction_id``)."""

    def __init__(
        self, table: str, *, client: Any = None, retention_days: int = DEFAULT_RETENTION_DAYS
    ) -> None:
        self.table = table
        self.retention_days = retention_days
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            with needs_extra("aws", "interactions in DynamoDB"):
                import boto3

            self._client = boto3.client("dynamodb")
        return self._client

    def _fail(self, exc: Exception, what: str) -> StoreError:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        kind = StoreUnavailableError if code in _RETRYABLE else StoreError
        return kind(f"cannot {what} the interactions table: {code}")

    def put(self, interaction: Interaction) -> None:
        item = {
            "interaction_id": {"S": interaction.interaction_id},
            "created_at": {"S": interaction.created_at},
            "collection": {"S": interaction.collection or ""},
            "decision": {"S": interaction.decision},
            "day": {"S": interaction.created_at[:10]},
            "record": {"S": interaction.model_dump_json()},
            "expires_at": {"N": str(expires_at(interaction.created_at, self.retention_days))},
        }
        try:
            self.client.put_item(TableName=self.table, Item=item)
        except Exception as exc:
            raise self._fail(exc, "write") from exc

    def get(self, interaction_id: str) -> Interaction | None:
        try:
            found = self.client.get_item(
                TableName=self.table, Key={"interaction_id": {"S": interaction_id}}, ConsistentRead=True
            )
        except Exception as exc:
            raise self._fail(exc, "read") from exc
        item = found.get("Item")
        return Interaction.model_validate_json(item["record"]["S"]) if item else None

    def scan(
        self, *, since: str | None = None, until: str | None = None, collection: str | None = None
    ) -> Iterator[Interaction]:
        """Day by day through the ``by_day`` index (``since`` defaults to the retention period)."""
        now = datetime.now(UTC)
        start = datetime.fromisoformat((since or "").replace("Z", "+00:00")) if since else None
        start = start or now - timedelta(days=self.retention_days)
        end = datetime.fromisoformat(until.replace("Z", "+00:00")) if until else now
        day = start.date()
        while day <= end.date():
            for item in self._day(day.isoformat()):
                found = Interaction.model_validate_json(item["record"]["S"])
                if in_window(found, since, until, collection):
                    yield found
            day += timedelta(days=1)

    def _day(self, day: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": DAY_INDEX,
            "KeyConditionExpression": "#d = :d",
            "ExpressionAttributeNames": {"#d": "day"},
            "ExpressionAttributeValues": {":d": {"S": day}},
        }
        while True:
            try:
                page = self.client.query(**kwargs)
            except Exception as exc:
                raise self._fail(exc, "read") from exc
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def prune(self, before: str) -> int:
        """Nothing to do: the table's TTL on ``expires_at`` deletes old items."""
        return 0
