"""What is kept of an interaction: redaction before storage (a table of inputs), retention that really
deletes, reading a period back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.feedback import FeedbackRequest, Interaction, MemoryInteractionStore
from shared.interactions_sqlite import SqliteInteractionStore
from shared.models import AskResponse
from shared.redaction import redact
from shared.settings import Settings
from shared.support import SupportDesk


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Mail me at ana.lopez+test@example.co.uk please", "Mail me at [email] please"),
        ("Call +44 20 7946 0958 or (555) 123-4567", "Call [phone] or [phone]"),
        ("phone 555-123-4567, mobile 06 12 34 56 78", "phone [phone], mobile [phone]"),
        ("My card 4111 1111 1111 1111 was charged twice", "My card [number] was charged twice"),
        ("Order 12345678 failed, account 123456", "Order [number] failed, account [number]"),
        ("call 0612345678", "call [number]"),
        # what reports need stays: versions, dates, times, ports, addresses, small numbers, error codes
        ("Error 404 on v3.11.2 since 2026-12-05 10:30", "Error 404 on v3.11.2 since 2026-12-05 10:30"),
        (
            "Port 8080 on 127.0.0.1 with 3 apps and 12 users",
            "Port 8080 on 127.0.0.1 with 3 apps and 12 users",
        ),
        ("Upgrade from 2.13.0 to 2.14.1 fails", "Upgrade from 2.13.0 to 2.14.1 fails"),
        ("", ""),
    ],
)
def test_redaction(text: str, kept: str) -> None:
    assert redact(text) == kept


def answer(question: str) -> AskResponse:
    return AskResponse(question=question, decision="refuse", confidence=0.1)


def test_desk_redacts_questions_and_comments_unless_turned_off() -> None:
    store = MemoryInteractionStore()
    desk = SupportDesk(Settings(), store)
    shown = desk.record(answer("Refund to ana@example.com for order 98765432?"), collection=None)
    assert shown.question == "Refund to ana@example.com for order 98765432?"  # the customer sees their own
    kept = store.get(shown.interaction_id or "")
    assert kept is not None and kept.question == "Refund to [email] for order [number]?"
    desk.feedback(
        FeedbackRequest(interaction_id=kept.interaction_id, helpful=False, comment="call 555-123-4567")
    )
    assert (store.get(kept.interaction_id) or kept).comment == "call [phone]"
    raw = SupportDesk(Settings(redact_interactions=False), store)
    shown = raw.record(answer("order 98765432"), collection=None)
    assert (store.get(shown.interaction_id or "") or kept).question == "order 98765432"


def stamp(days_ago: float) -> str:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def old(n: int, days_ago: float, collection: str = "default") -> Interaction:
    return Interaction(
        interaction_id=f"{n:032x}",
        created_at=stamp(days_ago),
        collection=collection,
        question=f"q{n}",
        decision="answer",
        confidence=0.9,
    )


def test_retention_prunes_on_the_first_write(tmp_path: Path) -> None:
    store = SqliteInteractionStore(tmp_path / "interactions.sqlite3")
    for n, days in enumerate([400, 31, 29, 1], 1):
        store.put(old(n, days))
    desk = SupportDesk(Settings(interaction_retention_days=30), store)
    desk.record(answer("new"), collection=None)
    left = sorted(i.question for i in store.scan())
    assert left == ["new", "q3", "q4"]  # really deleted, not hidden
    assert store.count() == 3


def test_scan_reads_a_period_and_a_collection_oldest_first(tmp_path: Path) -> None:
    for store in (MemoryInteractionStore(), SqliteInteractionStore(tmp_path / "i.sqlite3")):
        for n, (days, coll) in enumerate([(10, "a"), (5, "b"), (3, "a"), (1, "a")], 1):
            store.put(old(n, days, coll))
        got = [i.question for i in store.scan(since=stamp(6), collection="a")]
        assert got == ["q3", "q4"]
        assert [i.question for i in store.scan(until=stamp(4))] == ["q1", "q2"]
