"""``POST /feedback`` (rate an answer, ask for a person) and the CORS preflights of the browser routes."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from shared.adapters.http_api.access import CORS_ROUTES
from shared.adapters.http_api.context import ApiContext
from shared.adapters.http_api.requests import FeedbackRequest
from shared.adapters.http_api.spec import error_responses, ok_response
from shared.feedback import FeedbackResponse


def feedback_router(ctx: ApiContext) -> Router:
    router = Router()

    @router.post(
        "/feedback",
        summary="Rate an answer, comment on it, or ask for a person",
        description="Idempotent per interaction: the last rating and comment win; a webhook ticket is filed "
        "at most once. `interaction_id` comes from the `/query` response.",
        responses={
            **ok_response(FeedbackResponse, "Recorded; with `handoff` when one was asked for"),
            **error_responses(400, 404, 413, 415, 422, 503, 500),
        },
        tags=["feedback"],
    )
    def feedback(request: Annotated[FeedbackRequest, Body()]) -> FeedbackResponse:
        result = ctx.desk.feedback(request, site=ctx.site())
        if request.helpful is not None:
            ctx.sink.count("Feedback", Rating="helpful" if request.helpful else "not_helpful")
        if result.handoff is not None:  # after an answer or a refusal: the dashboard's deflection estimate
            ctx.sink.count("Handoff", Kind=result.handoff.kind, Decision=result.decision)
        return result

    for path in CORS_ROUTES:

        @router.route(path, method="OPTIONS", include_in_schema=False)
        def preflight() -> Response[str]:
            headers = ctx.access.preflight_headers(ctx.app.current_event.raw_event)
            if headers is None:
                return ctx.error(HTTPStatus.FORBIDDEN, "origin_not_allowed", "no site allows this origin")
            return Response(status_code=HTTPStatus.NO_CONTENT, body="", headers=headers)

    ctx.register("POST", "/feedback")
    ctx.register("OPTIONS", *CORS_ROUTES)
    return router
