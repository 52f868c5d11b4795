"""Deflection analytics over recorded interactions: the funnel, rates by day and by collection, latency,
and the pages most often cited in answers rated down. Pure computation on
:class:`~shared.feedback.Interaction` records; the models are the contract of ``rag-explorer report
--json`` and ``GET /analytics/summary``.

The funnel: **questions** (every recorded ``/query``) → **answered** (not refused) → **not rated down**
(answered, and no "not helpful") → **deflected** (also no handoff to support). A question whose answer
was not rated at all counts as deflected if nobody asked for a person: the customer left with an answer.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from pydantic import Field

from shared.evaluation import percentile
from shared.feedback import Interaction
from shared.gaps import GapsReport
from shared.models import StrictModel

#: ``--since 7d``: a number and a unit (h, d or w).
_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400}
WEAK_PAGES = 10


class Stats(StrictModel):
    questions: int = 0
    answered: int = 0
    not_rated_down: int = 0
    deflected: int = 0
    rated: int = 0
    helpful: int = 0
    handoffs: int = 0
    answer_rate: float | None = Field(default=None, description="answered / questions")
    deflection_rate: float | None = Field(default=None, description="deflected / questions")
    helpful_share: float | None = Field(default=None, description="helpful / rated")
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None


class DayStats(Stats):
    day: str = Field(description="YYYY-MM-DD (UTC)")


class CollectionStats(Stats):
    collection: str


class WeakPage(StrictModel):
    page: str = Field(description="The page's URL when known, else its source.")
    title: str | None = None
    rated_down: int = Field(description="Answers rated not helpful that cited it.")
    cited: int = Field(description="Answers that cited it.")


class AnalyticsSummary(StrictModel):
    since: str
    until: str
    collection: str | None = None
    totals: Stats
    by_day: list[DayStats]
    by_collection: list[CollectionStats]
    weak_pages: list[WeakPage]


class DeflectionReport(StrictModel):
    """What ``rag-explorer report --json`` prints: the summary and the coverage gaps of one period."""

    summary: AnalyticsSummary
    gaps: GapsReport


def parse_since(text: str, now: datetime | None = None) -> str:
    """``7d``, ``24h``, ``2w`` or an ISO date/time → the ISO 8601 UTC instant it means."""
    now = now or datetime.now(UTC)
    raw = text.strip().lower()
    if raw[:-1].isdigit() and raw[-1:] in _UNITS:
        return iso(now - timedelta(seconds=int(raw[:-1]) * _UNITS[raw[-1]]))
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r}: give a period like 7d, 24h or 2w, or a date like 2026-12-01") from None
    return iso(when if when.tzinfo else when.replace(tzinfo=UTC))


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _percentile(values: list[float], q: float) -> float | None:
    return round(percentile(values, q), 1) if values else None


class _Tally:
    """Counts for one group (a day, a collection, everything)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.latencies: list[float] = []

    def add(self, item: Interaction) -> None:
        answered = item.decision == "answer"
        up = answered and item.helpful is not False
        self.counts.update(
            questions=1,
            answered=answered,
            not_rated_down=up,
            deflected=up and item.handoff_at is None,
            rated=item.helpful is not None,
            helpful=item.helpful is True,
            handoffs=item.handoff_at is not None,
        )
        if item.latency_ms is not None:
            self.latencies.append(item.latency_ms)

    def stats(self) -> dict[str, object]:
        c = self.counts
        return {
            **{k: c[k] for k in ("questions", "answered", "not_rated_down", "deflected", "rated", "helpful")},
            "handoffs": c["handoffs"],
            "answer_rate": _share(c["answered"], c["questions"]),
            "deflection_rate": _share(c["deflected"], c["questions"]),
            "helpful_share": _share(c["helpful"], c["rated"]),
            "latency_p50_ms": _percentile(self.latencies, 50),
            "latency_p95_ms": _percentile(self.latencies, 95),
        }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarize(
    interactions: Iterable[Interaction], *, since: str, until: str, collection: str | None = None
) -> AnalyticsSummary:
    """The summary of the interactions given (already limited to the period and collection)."""
    total = _Tally()
    days: defaultdict[str, _Tally] = defaultdict(_Tally)
    collections: defaultdict[str, _Tally] = defaultdict(_Tally)
    cited: Counter[str] = Counter()
    rated_down: Counter[str] = Counter()
    titles: dict[str, str | None] = {}
    for item in interactions:
        total.add(item)
        days[item.created_at[:10]].add(item)
        collections[item.collection or "default"].add(item)
        pages = {c.url or c.source: c.title for c in item.citations}
        titles.update(pages)
        cited.update(pages.keys())
        if item.helpful is False:
            rated_down.update(pages.keys())
    weak = sorted(rated_down, key=lambda p: (-rated_down[p], -cited[p], p))[:WEAK_PAGES]
    return AnalyticsSummary(
        since=since,
        until=until,
        collection=collection,
        totals=Stats.model_validate(total.stats()),
        by_day=[DayStats.model_validate({"day": d, **t.stats()}) for d, t in sorted(days.items())],
        by_collection=[
            CollectionStats.model_validate({"collection": c, **t.stats()})
            for c, t in sorted(collections.items())
        ],
        weak_pages=[
            WeakPage(page=p, title=titles.get(p), rated_down=rated_down[p], cited=cited[p]) for p in weak
        ],
    )
