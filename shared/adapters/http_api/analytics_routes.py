"""``GET /analytics/summary`` and ``GET /analytics/gaps``: what ``rag-explorer report --json`` prints.

Secret keys only: a publishable key is refused (403) by the access rules, since these routes are not
among the widget's (:mod:`shared.adapters.http_api.access`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BeforeValidator

from shared.adapters.http_api.context import ApiContext
from shared.adapters.http_api.spec import error_responses, ok_response
from shared.analytics import AnalyticsSummary, iso
from shared.gaps import GapsReport
from shared.models import COLLECTION_PATTERN, SearchFilter, SearchHit

SINCE = "Start of the period, an RFC 3339 date-time (default: 7 days ago; never before the retention period)."
#: Distinct gap questions one API request clusters (the CLI on a local home takes up to 4,000): embedding
#: them must fit well within API Gateway's 29 s (bench/analytics_scale.py: 4,000 took 40 s on 2 cores,
#: nearly all of it embedding; 1,000 is about a quarter of that).
API_MAX_GAP_QUESTIONS = 1000
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
UNTIL = "End of the period, an RFC 3339 date-time (default: now)."


def _not_a_number(value: object) -> object:
    """pydantic also reads a number as a Unix time; the API takes RFC 3339 only, as documented."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("give an RFC 3339 date-time such as 2026-12-01T00:00:00Z")
    return value


Instant = Annotated[datetime, BeforeValidator(_not_a_number)]


def _iso(value: datetime | None, *, end: bool = False) -> str | None:
    """As the store compares times; a date-time so near year 1 or 9999 that UTC leaves the calendar is
    the earliest or latest instant."""
    if value is None:
        return None
    try:
        return iso(value if value.tzinfo else value.replace(tzinfo=UTC))
    except OverflowError:
        return "9999-12-31T23:59:59.999Z" if end else "0001-01-01T00:00:00.000Z"


def analytics_router(ctx: ApiContext) -> Router:
    router = Router()
    errors = error_responses(422, 503, 500)

    @router.get(
        "/analytics/summary",
        summary="Deflection funnel, answer rate, feedback, handoffs and latency, by day and by collection",
        responses={**ok_response(AnalyticsSummary, "The summary of the period"), **errors},
        tags=["analytics"],
    )
    def summary(
        since: Annotated[Instant | None, Query(description=SINCE)] = None,
        until: Annotated[Instant | None, Query(description=UNTIL)] = None,
        collection: Annotated[str | None, Query(pattern=COLLECTION_PATTERN)] = None,
    ) -> AnalyticsSummary:
        return ctx.desk.summary(since=_iso(since) or "7d", until=_iso(until, end=True), collection=collection)

    @router.get(
        "/analytics/gaps",
        summary="Coverage gaps: refused and rated-down questions grouped by meaning, biggest first",
        responses={**ok_response(GapsReport, "The groups, with the pages that nearly answered"), **errors},
        tags=["analytics"],
    )
    def gaps(
        since: Annotated[Instant | None, Query(description=SINCE)] = None,
        until: Annotated[Instant | None, Query(description=UNTIL)] = None,
        collection: Annotated[str | None, Query(pattern=COLLECTION_PATTERN)] = None,
    ) -> GapsReport:
        def search(text: str) -> list[SearchHit]:
            return ctx.service.search(text, k=3, filters=SearchFilter(collection=collection)).hits

        return ctx.desk.gaps(
            embedder=ctx.service.embedder,
            search=search,
            since=_iso(since) or "7d",
            until=_iso(until, end=True),
            collection=collection,
            max_questions=API_MAX_GAP_QUESTIONS,
        )

    ctx.register("GET", "/analytics/summary", "/analytics/gaps")
    return router
