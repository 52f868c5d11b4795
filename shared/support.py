"""The support desk: records each answered question, takes feedback on it, and hands off to a person.

:meth:`SupportDesk.record` gives an :class:`~shared.models.AskResponse` its ``interaction_id`` and the
collection's handoff offer; :meth:`SupportDesk.feedback` rates an interaction and/or hands it off
(a webhook ticket is filed at most once per interaction; a form or mailto handoff just returns its
pre-filled link). The store and the ticket sender are ports (:mod:`shared.feedback`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from shared.analytics import AnalyticsSummary, iso, parse_since, summarize
from shared.embeddings.base import Embedder
from shared.errors import DeliveryError, NotFoundError
from shared.feedback import (
    CitedPage,
    FeedbackRequest,
    FeedbackResponse,
    HandoffResult,
    Interaction,
    InteractionStore,
    TicketSender,
)
from shared.gaps import DEFAULT_MAX_DISTANCE, DEFAULT_MAX_QUESTIONS, GapsReport, find_gaps
from shared.models import DEFAULT_COLLECTION, AskResponse, SearchHit, utc_timestamp
from shared.redaction import redact
from shared.settings import Settings
from shared.sites import Site, handoff_kind, handoff_offer

log = logging.getLogger(__name__)

#: A process prunes expired interactions on its first write and then every this many writes.
PRUNE_EVERY = 500


class SupportDesk:
    def __init__(
        self,
        settings: Settings,
        store: InteractionStore | None,
        tickets: TicketSender | None = None,
        *,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.settings = settings
        self.store = store if settings.record_interactions else None
        self.tickets = tickets
        self._new_id = new_id
        self._writes = 0

    def keep(self, text: str | None) -> str | None:
        """``text`` as it may be stored: redacted unless ``redact_interactions`` is off."""
        return redact(text) if text and self.settings.redact_interactions else text

    def retention_cutoff(self) -> str:
        """Interactions created before this (ISO 8601 UTC) are past retention."""
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.interaction_retention_days)
        return cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _put(self, interaction: Interaction) -> None:
        assert self.store is not None
        if self._writes % PRUNE_EVERY == 0:
            self.store.prune(self.retention_cutoff())
        self._writes += 1
        self.store.put(interaction)

    def record(
        self,
        response: AskResponse,
        *,
        collection: str | None,
        site: Site | None = None,
        page_url: str | None = None,
        latency_ms: float | None = None,
    ) -> AskResponse:
        """Store the interaction (when recording is on) and offer the collection's handoff."""
        interaction_id = None
        if self.store is not None:
            interaction_id = self._new_id()
            self._put(
                Interaction(
                    interaction_id=interaction_id,
                    collection=collection or DEFAULT_COLLECTION,
                    site=site.name if site else None,
                    question=self.keep(response.question) or "",
                    decision=response.decision,
                    answer=response.answer,
                    confidence=response.confidence,
                    provider=response.provider,
                    citations=[
                        CitedPage(n=c.n, source=c.source, title=c.title, url=c.url)
                        for c in response.citations
                    ],
                    page_url=page_url,
                    latency_ms=latency_ms,
                )
            )
        target = self.settings.collection(collection).handoff
        offer = handoff_offer(
            target, question=response.question, interaction_id=interaction_id, page=page_url
        )
        return response.model_copy(update={"interaction_id": interaction_id, "handoff": offer})

    def feedback(self, request: FeedbackRequest, *, site: Site | None = None) -> FeedbackResponse:
        """Rate and/or hand off an interaction; a publishable key sees only its own collection's."""
        found = self.store.get(request.interaction_id) if self.store is not None else None
        if found is None or (site is not None and found.collection != site.collection):
            raise NotFoundError(f"no interaction {request.interaction_id}")
        now = utc_timestamp()
        changes: dict[str, object] = {}
        if request.helpful is not None:
            changes |= {"helpful": request.helpful, "feedback_at": now}
        if request.comment:
            changes |= {"comment": self.keep(request.comment), "feedback_at": now}
        interaction = found.model_copy(update=changes)
        result = None
        if request.handoff:
            interaction, result = self._hand_off(interaction, request, now)
        if interaction != found:  # feedback with nothing in it writes nothing
            self._put(interaction)
        return FeedbackResponse(
            interaction_id=interaction.interaction_id,
            decision=interaction.decision,
            helpful=interaction.helpful,
            comment_saved=bool(request.comment),
            handoff=result,
        )

    def _hand_off(
        self, interaction: Interaction, request: FeedbackRequest, now: str
    ) -> tuple[Interaction, HandoffResult]:
        target = self.settings.collection(interaction.collection).handoff
        if not target:
            raise NotFoundError("this collection has no handoff configured")
        kind = handoff_kind(target)
        if kind != "webhook":
            offer = handoff_offer(
                target,
                question=interaction.question,
                interaction_id=interaction.interaction_id,
                page=interaction.page_url,
            )
            done = interaction.model_copy(update={"handoff_kind": kind, "handoff_at": now})
            return done, HandoffResult(kind=kind, url=offer.url if offer else None)
        if interaction.handoff_delivered:  # idempotent: one ticket per interaction
            return interaction, HandoffResult(kind="webhook", delivered=True)
        delivered = self._send_ticket(target.removeprefix("webhook:"), interaction, request)
        done = interaction.model_copy(
            update={"handoff_kind": kind, "handoff_at": now, "handoff_delivered": delivered}
        )
        return done, HandoffResult(kind="webhook", delivered=delivered)

    def _send_ticket(self, url: str, interaction: Interaction, request: FeedbackRequest) -> bool:
        if self.tickets is None:
            return False
        ticket: dict[str, object] = {
            "interaction_id": interaction.interaction_id,
            "created_at": interaction.created_at,
            "collection": interaction.collection,
            "site": interaction.site,
            "question": interaction.question,
            "decision": interaction.decision,
            "answer_shown": interaction.answer,
            "confidence": interaction.confidence,
            "citations": [c.model_dump() for c in interaction.citations],
            "page_url": interaction.page_url,
            "helpful": interaction.helpful,
            "comment": request.comment or interaction.comment,
            "contact": request.contact,
        }
        try:
            self.tickets.send(url, ticket)
        except DeliveryError as exc:
            log.warning(
                "support ticket for interaction %s not delivered: %s", interaction.interaction_id, exc
            )
            return False
        return True

    # ------------------------------------------------------------------ reports

    def _period(self, since: str, until: str | None) -> tuple[str, str]:
        start = parse_since(since)
        return max(start, self.retention_cutoff()), parse_since(until) if until else iso(datetime.now(UTC))

    def _interactions(self, start: str, end: str, collection: str | None) -> list[Interaction]:
        if self.store is None:
            return []
        return list(self.store.scan(since=start, until=end, collection=collection))

    def summary(
        self, *, since: str = "7d", until: str | None = None, collection: str | None = None
    ) -> AnalyticsSummary:
        """The deflection funnel, rates by day and collection, latency and weak pages for a period."""
        start, end = self._period(since, until)
        items = self._interactions(start, end, collection)
        return summarize(items, since=start, until=end, collection=collection)

    def gaps(
        self,
        *,
        embedder: Embedder,
        search: Callable[[str], list[SearchHit]],
        since: str = "7d",
        until: str | None = None,
        collection: str | None = None,
        max_distance: float = DEFAULT_MAX_DISTANCE,
        max_questions: int = DEFAULT_MAX_QUESTIONS,
    ) -> GapsReport:
        """Refused and rated-down questions grouped by meaning, with the pages that nearly answered."""
        start, end = self._period(since, until)
        items = self._interactions(start, end, collection)
        return find_gaps(
            items,
            embedder=embedder,
            search=search,
            since=start,
            until=end,
            collection=collection,
            max_distance=max_distance,
            max_questions=max_questions,
        )
