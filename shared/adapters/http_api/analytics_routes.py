"""``GET /analytics/summary`` and ``GET /analytics/gaps``: what ``rag-explorer report --json`` prints.

Secret keys only: a publishable key is refused (403) by the access rules, since these routes are not
among the widget's (:mod:`shared.adapters.http_api.access`).
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from shared.adapters.http_api.context import ApiContext
from shared.adapters.http_api.requests import FieldValidationError
from shared.adapters.http_api.spec import error_responses, ok_response
from shared.analytics import AnalyticsSummary, parse_since
from shared.gaps import GapsReport
from shared.models import COLLECTION_PATTERN, SearchFilter, SearchHit

PERIOD = "A period back from now (7d, 24h, 2w) or an ISO date/time (UTC)."


def _checked(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        parse_since(value)
    except ValueError as exc:
        raise FieldValidationError(["query", name], "value_error", str(exc)) from None
    return value


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
        since: Annotated[str, Query(max_length=40, description=PERIOD)] = "7d",
        until: Annotated[str | None, Query(max_length=40, description=PERIOD)] = None,
        collection: Annotated[str | None, Query(pattern=COLLECTION_PATTERN)] = None,
    ) -> AnalyticsSummary:
        return ctx.desk.summary(
            since=_checked(since, "since") or "7d", until=_checked(until, "until"), collection=collection
        )

    @router.get(
        "/analytics/gaps",
        summary="Coverage gaps: refused and rated-down questions grouped by meaning, biggest first",
        responses={**ok_response(GapsReport, "The groups, with the pages that nearly answered"), **errors},
        tags=["analytics"],
    )
    def gaps(
        since: Annotated[str, Query(max_length=40, description=PERIOD)] = "7d",
        until: Annotated[str | None, Query(max_length=40, description=PERIOD)] = None,
        collection: Annotated[str | None, Query(pattern=COLLECTION_PATTERN)] = None,
    ) -> GapsReport:
        def search(text: str) -> list[SearchHit]:
            return ctx.service.search(text, k=3, filters=SearchFilter(collection=collection)).hits

        return ctx.desk.gaps(
            embedder=ctx.service.embedder,
            search=search,
            since=_checked(since, "since") or "7d",
            until=_checked(until, "until"),
            collection=collection,
        )

    ctx.register("GET", "/analytics/summary", "/analytics/gaps")
    return router
