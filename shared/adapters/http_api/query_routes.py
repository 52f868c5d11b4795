"""``POST /query`` and ``POST /search``: what ``rag-explorer ask --json`` and ``search --json`` print."""

from __future__ import annotations

import time
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from shared.adapters.http_api.context import ApiContext
from shared.adapters.http_api.requests import QueryRequest, SearchRequest
from shared.adapters.http_api.spec import QUERY_ERRORS, error_responses, ok_response
from shared.models import AskResponse, SearchResponse


def query_router(ctx: ApiContext) -> Router:
    router = Router()

    @router.post(
        "/query",
        summary="Answer a question with citations, or refuse with reasons",
        description="Returns exactly what `rag-explorer ask --json` prints.",
        responses={**ok_response(AskResponse, "An answer or a refusal"), **error_responses(*QUERY_ERRORS)},
        tags=["query"],
    )
    def query(request: Annotated[QueryRequest, Body()]) -> AskResponse:
        filters = ctx.scope(request.filters)
        started = time.perf_counter()
        response = ctx.run_query(
            request.question,
            "question",
            lambda: ctx.service.ask(
                request.question,
                max_chunks=request.max_chunks,
                confidence_threshold=request.confidence_threshold,
                filters=filters,
            ),
        )
        ctx.sink.count("Answered" if response.decision == "answer" else "Refused")
        return ctx.desk.record(
            response,
            collection=filters.collection if filters else None,
            site=ctx.site(),
            page_url=request.page_url,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    @router.post(
        "/search",
        summary="The chunks that best match a query (hybrid: embeddings + BM25)",
        description="Returns exactly what `rag-explorer search --json` prints.",
        responses={**ok_response(SearchResponse, "The hits, best first"), **error_responses(*QUERY_ERRORS)},
        tags=["query"],
    )
    def search(request: Annotated[SearchRequest, Body()]) -> SearchResponse:
        return ctx.run_query(
            request.query,
            "query",
            lambda: ctx.service.search(request.query, k=request.k, filters=ctx.scope(request.filters)),
        )

    ctx.register("POST", "/query", "/search")
    return router
