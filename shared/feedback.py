"""Interactions, feedback and handoff: the contract (``POST /feedback``) and the store port.

Every answered ``/query`` is recorded as an :class:`Interaction` (its id goes back as ``interaction_id``);
``POST /feedback`` rates it and/or asks for a person. Feedback is idempotent per interaction: the last
rating and comment win, and a webhook ticket is filed at most once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, Protocol, runtime_checkable

from pydantic import Field

from shared.models import MAX_URL_CHARS, StrictModel, utc_timestamp

MAX_FEEDBACK_COMMENT_CHARS = 2000
MAX_CONTACT_CHARS = 320
INTERACTION_ID_PATTERN = r"^[0-9a-f]{32}$"


class FeedbackRequest(StrictModel):
    """Body of ``POST /feedback``: a rating, a comment, a request for a person, or several of these (none
    of them changes nothing)."""

    interaction_id: str = Field(pattern=INTERACTION_ID_PATTERN, description="From the `/query` response.")
    helpful: bool | None = Field(default=None, description="Did the answer help? (null: not rated)")
    comment: str | None = Field(default=None, max_length=MAX_FEEDBACK_COMMENT_CHARS)
    handoff: bool = Field(
        default=False,
        description="The customer asked for a person (for a webhook handoff, files the ticket).",
    )
    contact: str | None = Field(
        default=None, max_length=MAX_CONTACT_CHARS, description="How support can reply (e.g. an e-mail)."
    )


class HandoffResult(StrictModel):
    kind: Literal["form", "mailto", "webhook"]
    url: str | None = Field(default=None, description="form/mailto: where to send the customer.")
    delivered: bool | None = Field(
        default=None, description="webhook: whether the support system accepted the ticket."
    )


class FeedbackResponse(StrictModel):
    interaction_id: str
    decision: Literal["answer", "refuse"] = Field(description="What the rated interaction was.")
    helpful: bool | None = None
    comment_saved: bool = False
    handoff: HandoffResult | None = None


class CitedPage(StrictModel):
    n: int
    source: str
    title: str | None = None
    url: str | None = None


class Interaction(StrictModel):
    """One question and what was shown, with what happened next (stored; #14 reports on it)."""

    interaction_id: str = Field(pattern=INTERACTION_ID_PATTERN)
    created_at: str = Field(default_factory=utc_timestamp)
    collection: str | None = None
    site: str | None = None
    question: str
    decision: Literal["answer", "refuse"]
    answer: str | None = None
    confidence: float
    provider: str = "extractive"
    citations: list[CitedPage] = Field(default_factory=list)
    page_url: str | None = Field(default=None, max_length=MAX_URL_CHARS)
    latency_ms: float | None = None
    helpful: bool | None = None
    comment: str | None = None
    feedback_at: str | None = None
    handoff_kind: str | None = None
    handoff_at: str | None = None
    handoff_delivered: bool | None = None


@runtime_checkable
class InteractionStore(Protocol):
    """Where interactions live: SQLite beside a local index, DynamoDB in AWS, a dict in tests."""

    def put(self, interaction: Interaction) -> None:
        """Create or replace the record (last write wins)."""
        ...

    def get(self, interaction_id: str) -> Interaction | None: ...

    def scan(
        self, *, since: str | None = None, until: str | None = None, collection: str | None = None
    ) -> Iterator[Interaction]:
        """Interactions created in ``[since, until)`` (ISO 8601 UTC, as ``created_at``), oldest first."""
        ...

    def prune(self, before: str) -> int:
        """Delete interactions created before ``before``; returns how many (retention)."""
        ...


def in_window(item: Interaction, since: str | None, until: str | None, collection: str | None) -> bool:
    return (
        (since is None or item.created_at >= since)
        and (until is None or item.created_at < until)
        and (collection is None or item.collection == collection)
    )


class MemoryInteractionStore:
    """A dict: tests, and a service without a place to keep interactions."""

    def __init__(self) -> None:
        self.items: dict[str, Interaction] = {}

    def put(self, interaction: Interaction) -> None:
        self.items[interaction.interaction_id] = interaction.model_copy(deep=True)

    def get(self, interaction_id: str) -> Interaction | None:
        found = self.items.get(interaction_id)
        return found.model_copy(deep=True) if found else None

    def scan(
        self, *, since: str | None = None, until: str | None = None, collection: str | None = None
    ) -> Iterator[Interaction]:
        items = sorted(self.items.values(), key=lambda i: i.created_at)
        return (i.model_copy(deep=True) for i in items if in_window(i, since, until, collection))

    def prune(self, before: str) -> int:
        old = [k for k, v in self.items.items() if v.created_at < before]
        for key in old:
            del self.items[key]
        return len(old)


class TicketSender(Protocol):
    """Files a support ticket (the webhook handoff); raises :class:`shared.errors.RagExplorerError`."""

    def send(self, url: str, ticket: dict[str, object]) -> None: ...
