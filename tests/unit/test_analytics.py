"""Deflection analytics: the funnel arithmetic on a hand-built week, weak pages, and coverage gaps that
group questions by meaning the same way whatever their order."""

from __future__ import annotations

import random

import pytest

from shared.analytics import parse_since, summarize
from shared.embeddings.hashing import HashingEmbedder
from shared.feedback import CitedPage, Interaction
from shared.gaps import cluster_labels, find_gaps
from shared.models import SearchHit

KEYS = CitedPage(n=1, source="docs/keys.md", title="API keys", url="https://docs.example.com/keys")
BILLING = CitedPage(n=1, source="docs/billing.md", title="Billing")


def item(
    n: int,
    day: int,
    decision: str = "answer",
    *,
    helpful: bool | None = None,
    handoff: bool = False,
    collection: str = "default",
    latency: float = 100.0,
    cites: tuple[CitedPage, ...] = (),
    question: str | None = None,
) -> Interaction:
    return Interaction(
        interaction_id=f"{n:032x}",
        created_at=f"2026-11-{day:02d}T10:00:00.000Z",
        collection=collection,
        question=question or f"question {n}",
        decision=decision,  # type: ignore[arg-type]
        confidence=0.8 if decision == "answer" else 0.1,
        helpful=helpful,
        handoff_at="2026-11-30T10:00:00.000Z" if handoff else None,
        latency_ms=latency,
        citations=list(cites),
    )


def week() -> list[Interaction]:
    """Day 23: 4 questions (3 answered: one rated down, one handed off after a helpful rating; one
    refused). Day 24: 2 answered (one helpful), in another collection. Day 25: nothing."""
    return [
        item(1, 23, helpful=False, cites=(KEYS,), latency=50),
        item(2, 23, helpful=True, handoff=True, cites=(KEYS, BILLING), latency=150),
        item(3, 23, cites=(BILLING,), latency=250),
        item(4, 23, "refuse", handoff=True, latency=350),
        item(5, 24, helpful=True, collection="internal", cites=(BILLING,), latency=450),
        item(6, 24, collection="internal", latency=550),
    ]


def test_funnel_arithmetic_on_a_hand_built_week() -> None:
    s = summarize(week(), since="2026-11-23T00:00:00.000Z", until="2026-11-30T00:00:00.000Z")
    t = s.totals
    assert (t.questions, t.answered, t.not_rated_down, t.deflected) == (6, 5, 4, 3)  # 2, 3, 5, 6 deflected
    assert (t.rated, t.helpful, t.handoffs) == (3, 2, 2)
    assert (
        t.answer_rate == round(5 / 6, 4) and t.deflection_rate == 0.5 and t.helpful_share == round(2 / 3, 4)
    )
    assert (t.latency_p50_ms, t.latency_p95_ms) == (250.0, 550.0)
    assert [(d.day, d.questions, d.deflected) for d in s.by_day] == [
        ("2026-11-23", 4, 1),
        ("2026-11-24", 2, 2),
    ]
    assert s.by_day[0].deflection_rate == 0.25 and s.by_day[1].answer_rate == 1.0
    assert [(c.collection, c.questions, c.handoffs) for c in s.by_collection] == [
        ("default", 4, 2),
        ("internal", 2, 0),
    ]
    assert [(w.page, w.rated_down, w.cited) for w in s.weak_pages] == [
        ("https://docs.example.com/keys", 1, 2)
    ]


def test_empty_period_has_no_rates() -> None:
    s = summarize([], since="a", until="b")
    assert s.totals.questions == 0 and s.totals.answer_rate is None and s.by_day == []


def test_since() -> None:
    assert parse_since("2026-12-01") == "2026-12-01T00:00:00.000Z"
    from datetime import UTC, datetime

    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    assert parse_since("7d", now) == "2026-11-28T12:00:00.000Z"
    assert parse_since("36h", now) == "2026-12-04T00:00:00.000Z"
    with pytest.raises(ValueError, match="7d"):
        parse_since("last week")


GAPS = {
    "export": [
        "How do I export my invoices to CSV?",
        "export invoices as csv file",
        "Can I export invoices to CSV?",
        "export all invoices csv",
    ],
    "sso": ["Do you support SAML single sign-on?", "SAML single sign-on setup", "single sign-on with SAML"],
    "delete": ["How do I delete my account?"],
}


def gap_items() -> list[Interaction]:
    out, n = [], 0
    for topic, questions in GAPS.items():
        for q in questions:
            n += 1
            out.append(
                item(
                    n,
                    23 + n % 5,
                    "refuse" if topic != "sso" else "answer",
                    helpful=False if topic == "sso" else None,
                    question=q,
                )
            )
    out.append(item(99, 24, question="How do I export my invoices to CSV?", decision="refuse"))  # a repeat
    out.append(item(100, 24, question="What is an API key?", helpful=True))  # answered well: not a gap
    return out


def search(text: str) -> list[SearchHit]:
    return [
        SearchHit(
            chunk_id="c1",
            source="docs/billing.md",
            title="Billing",
            score=0.42,
            text="...",
            url="https://docs.example.com/billing",
        )
    ]


def test_gaps_group_questions_by_meaning_biggest_first() -> None:
    report = find_gaps(gap_items(), embedder=HashingEmbedder(256), search=search, since="s", until="u")
    assert report.considered == 9 and report.clustered == 8  # the repeat is counted, clustered once
    sizes = [(c.size, c.refused, c.rated_down) for c in report.clusters]
    assert sizes[:2] == [(5, 5, 0), (3, 0, 3)]
    assert set(report.clusters[0].questions) <= set(GAPS["export"]) and len(report.clusters[0].questions) == 3
    assert set(report.clusters[1].questions) <= set(GAPS["sso"])
    assert report.clusters[0].closest_pages[0].page == "https://docs.example.com/billing"
    assert all("API key" not in q for c in report.clusters for q in c.questions)


def test_gaps_are_the_same_in_any_order() -> None:
    items = gap_items()
    first = find_gaps(items, embedder=HashingEmbedder(256), search=search, since="s", until="u")
    for seed in range(3):
        shuffled = items[:]
        random.Random(seed).shuffle(shuffled)
        again = find_gaps(shuffled, embedder=HashingEmbedder(256), search=search, since="s", until="u")
        assert again == first


def test_cluster_cut() -> None:
    vectors = [[1, 0], [0.99, 0.14], [0, 1], [0.1, 0.99], [-1, 0]]
    assert cluster_labels(__import__("numpy").array(vectors), 0.1) == [0, 0, 1, 1, 2]
    assert cluster_labels(__import__("numpy").array(vectors), 2.0) == [0, 0, 0, 0, 0]
    assert cluster_labels(__import__("numpy").array(vectors[:1]), 0.1) == [0]
