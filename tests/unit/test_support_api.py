"""Sites, publishable keys, CORS, feedback and handoff through the HTTP API resolver (no sockets): API
Gateway REST events from tests/events, a RagService over MemoryStore + HashingEmbedder, interactions in
memory and a fake ticket sender."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from shared.adapters.http_api import create_app
from shared.chunking import embedding_text
from shared.embeddings.hashing import HashingEmbedder
from shared.errors import DeliveryError
from shared.feedback import FeedbackResponse, MemoryInteractionStore
from shared.models import AskResponse, Chunk
from shared.service import RagService
from shared.settings import Settings
from shared.stores.memory import MemoryStore
from shared.support import SupportDesk
from tests.unit.test_http_api import assert_error, call, event

ORIGIN = "https://help.example.com"
PUBLIC = (
    "To rotate your API key, open the console and choose Regenerate key. "
    "The old key stops working one hour later."
)
INTERNAL = (
    "Staff reset a customer's two-factor device from the admin console under Users, Security, Reset device."
)
SITE = {"name": "help", "collection": "public", "origins": [ORIGIN], "key_id": "k7x2m9q4z1"}


class FakeTickets:
    """Records tickets; fails while ``down`` is set, as an unreachable support system would."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, object]]] = []
        self.down = False

    def send(self, url: str, ticket: dict[str, object]) -> None:
        if self.down:
            raise DeliveryError("the webhook answered 502")
        self.sent.append((url, ticket))


def make(metrics: Any = None, **settings: Any) -> tuple[Any, MemoryInteractionStore, FakeTickets]:
    emb = HashingEmbedder(256)
    store = MemoryStore(dimension=256, lexical_text=embedding_text)
    chunks = [
        Chunk(
            chunk_id="p1",
            source="docs/keys.md",
            title="API keys",
            text=PUBLIC,
            position=0,
            content_hash="p",
            collection="public",
            url="https://docs.example.com/keys#rotate",
        ),
        Chunk(
            chunk_id="i1",
            source="staff/2fa.md",
            title="Two-factor",
            text=INTERNAL,
            position=0,
            content_hash="i",
            collection="internal",
        ),
    ]
    store.upsert(chunks, np.asarray(emb.embed_documents([embedding_text(c) for c in chunks])))
    store.flush()
    config = {
        "embedder": "hash:256",
        "sites": [SITE],
        "collections": {
            "public": {
                "handoff": "https://support.example.com/new?q={question}&ref={interaction_id}",
                "escalation": "Ask us at support.example.com.",
            },
            "internal": {"handoff": "webhook:https://hooks.example.com/tickets"},
        },
        **settings,
    }
    service = RagService(Settings(**config), embedder=emb, store=store)
    interactions, tickets = MemoryInteractionStore(), FakeTickets()
    app = create_app(service, metrics=metrics, desk=SupportDesk(service.settings, interactions, tickets))
    return app, interactions, tickets


def publishable(body: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    ev = event("query_publishable_event.json", **changes)
    if body is not None:
        ev["body"] = json.dumps(body)
    return ev


def with_origin(ev: dict[str, Any], origin: str) -> dict[str, Any]:
    ev["headers"]["Origin"] = origin
    ev["multiValueHeaders"]["Origin"] = [origin]
    return ev


def test_publishable_key_gets_an_answer_from_its_collection_with_cors_and_a_recorded_interaction(
    lambda_context: Any,
) -> None:
    app, interactions, _ = make()
    status, headers, body = call(app, publishable(), lambda_context)
    assert status == 200, body
    answer = AskResponse.model_validate(body)
    assert answer.decision == "answer"
    assert answer.citations[0].url == "https://docs.example.com/keys#rotate"
    assert headers["access-control-allow-origin"] == [ORIGIN] and headers["vary"] == ["Origin"]
    assert headers["access-control-expose-headers"] == ["Retry-After, x-request-id"]
    stored = interactions.get(answer.interaction_id or "")
    assert stored is not None and stored.site == "help" and stored.collection == "public"
    assert stored.page_url == "https://help.example.com/account"
    assert stored.citations[0].url == "https://docs.example.com/keys#rotate"
    assert answer.handoff is not None and answer.handoff.kind == "form"
    assert answer.handoff.url == (
        "https://support.example.com/new?q=How%20do%20I%20rotate%20my%20API%20key%3F"
        f"&ref={answer.interaction_id}"
    )


def test_publishable_key_cannot_read_another_collection(lambda_context: Any) -> None:
    app, _, _ = make()
    question = "How do staff reset a customer's two-factor device?"
    status, _, body = call(app, publishable({"question": question}), lambda_context)
    assert status == 200
    answer = AskResponse.model_validate(body)
    assert all(c.source != "staff/2fa.md" for c in answer.citations)
    assert answer.decision == "refuse" and answer.escalation == "Ask us at support.example.com."
    for filters in ({"collection": "internal"}, {"collection": "internal", "source_prefix": "staff/"}):
        status, _, body = call(app, publishable({"question": question, "filters": filters}), lambda_context)
        assert_error(status, body, 403, "forbidden")
    # a secret key (any other key API Gateway let through) may choose
    secret = publishable({"question": question, "filters": {"collection": "internal"}})
    secret["requestContext"]["identity"]["apiKeyId"] = "secret-key-id"
    status, headers, body = call(app, secret, lambda_context)
    assert status == 200 and AskResponse.model_validate(body).citations[0].source == "staff/2fa.md"
    assert "access-control-allow-origin" not in headers  # a browser page cannot use a secret key


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/search"), ("GET", "/health/detailed"), ("GET", "/openapi.json")]
)
def test_publishable_key_may_not_call_other_routes(method: str, path: str, lambda_context: Any) -> None:
    app, _, _ = make()
    ev = publishable({"query": "rotate key"}, httpMethod=method, path=path)
    status, _, body = call(app, ev, lambda_context)
    assert_error(status, body, 403, "forbidden")


def test_publishable_key_from_another_origin_is_refused_without_cors(lambda_context: Any) -> None:
    app, interactions, _ = make()
    status, headers, body = call(app, with_origin(publishable(), "https://evil.example"), lambda_context)
    assert_error(status, body, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in headers
    assert not interactions.items


def test_preflight_answers_listed_origins_only(lambda_context: Any) -> None:
    app, _, _ = make()
    status, headers, _ = call(app, event("preflight_event.json"), lambda_context)
    assert status == 204
    assert headers["access-control-allow-origin"] == [ORIGIN]
    assert "x-api-key" in headers["access-control-allow-headers"][0]
    assert "POST" in headers["access-control-allow-methods"][0]
    ev = event("preflight_event.json")
    ev["headers"]["Origin"] = ev["multiValueHeaders"]["Origin"][0] = "https://evil.example"
    ev["multiValueHeaders"]["Origin"] = ["https://evil.example"]
    status, headers, body = call(app, ev, lambda_context)
    assert_error(status, body, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in headers


def ask(app: Any, ctx: Any, question: str = "How do I rotate my API key?") -> AskResponse:
    status, _, body = call(app, publishable({"question": question}), ctx)
    assert status == 200
    return AskResponse.model_validate(body)


def feedback(app: Any, ctx: Any, body: dict[str, Any], *, key_id: str = "k7x2m9q4z1") -> tuple[int, Any]:
    ev = event("feedback_event.json")
    ev["body"] = json.dumps(body)
    ev["requestContext"]["identity"]["apiKeyId"] = key_id
    status, headers, data = call(app, ev, ctx)
    if status == 200 and key_id == SITE["key_id"]:
        assert headers["access-control-allow-origin"] == [ORIGIN]
    return status, data


def test_feedback_is_stored_and_idempotent(lambda_context: Any) -> None:
    app, interactions, _ = make()
    answer = ask(app, lambda_context)
    rating = {"interaction_id": answer.interaction_id, "helpful": False, "comment": "Where is the console?"}
    first = feedback(app, lambda_context, rating)
    again = feedback(app, lambda_context, rating)
    assert first == again and first[0] == 200
    assert FeedbackResponse.model_validate(first[1]).comment_saved
    stored = interactions.get(answer.interaction_id or "")
    assert stored is not None and stored.helpful is False and stored.comment == "Where is the console?"
    feedback(app, lambda_context, {"interaction_id": answer.interaction_id, "helpful": True})
    stored = interactions.get(answer.interaction_id or "")
    assert stored is not None and stored.helpful is True and stored.comment == "Where is the console?"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"interaction_id": "f" * 32, "helpful": True}, 404, "not_found"),
        ({"interaction_id": "nope", "helpful": True}, 422, "validation_error"),
        ({"interaction_id": "f" * 32}, 404, "not_found"),
        ({"interaction_id": "f" * 32, "helpful": "yes"}, 422, "validation_error"),
        ({"interaction_id": "f" * 32, "comment": "x" * 2001}, 422, "validation_error"),
        (
            {"interaction_id": "f" * 32, "helpful": True, "url": "https://evil.example"},
            422,
            "validation_error",
        ),
    ],
)
def test_bad_feedback_gets_the_error_model(
    body: dict[str, Any], status: int, code: str, lambda_context: Any
) -> None:
    app, _, _ = make()
    got, data = feedback(app, lambda_context, body)
    assert_error(got, data, status, code)


def test_feedback_on_another_collections_interaction_is_not_found(lambda_context: Any) -> None:
    app, interactions, _ = make()
    secret = publishable({"question": "reset two-factor device", "filters": {"collection": "internal"}})
    secret["requestContext"]["identity"]["apiKeyId"] = "secret-key-id"
    status, _, body = call(app, secret, lambda_context)
    internal_id = body["interaction_id"]
    assert interactions.get(internal_id) is not None
    status, data = feedback(app, lambda_context, {"interaction_id": internal_id, "helpful": False})
    assert_error(status, data, 404, "not_found")


def test_form_handoff_returns_the_prefilled_link_and_records_it(lambda_context: Any) -> None:
    app, interactions, tickets = make()
    answer = ask(app, lambda_context, "Can I pay by cheque?")
    status, data = feedback(app, lambda_context, {"interaction_id": answer.interaction_id, "handoff": True})
    assert status == 200
    result = FeedbackResponse.model_validate(data)
    assert result.handoff is not None and result.handoff.kind == "form"
    assert result.handoff.url == answer.handoff.url if answer.handoff else False
    assert "Can%20I%20pay%20by%20cheque%3F" in (result.handoff.url or "")
    stored = interactions.get(answer.interaction_id or "")
    assert stored is not None and stored.handoff_kind == "form" and stored.handoff_at
    assert not tickets.sent


def test_webhook_handoff_files_one_ticket_and_retries_after_a_failure(lambda_context: Any) -> None:
    app, interactions, tickets = make()
    secret = publishable({"question": "reset two-factor device", "filters": {"collection": "internal"}})
    secret["requestContext"]["identity"]["apiKeyId"] = "secret-key-id"
    _, _, body = call(app, secret, lambda_context)
    assert body["handoff"] == {"kind": "webhook", "url": None}
    request = {
        "interaction_id": body["interaction_id"],
        "handoff": True,
        "contact": "ana@example.com",
        "comment": "Locked out",
    }
    tickets.down = True
    status, data = feedback(app, lambda_context, request, key_id="secret-key-id")
    assert status == 200 and data["handoff"] == {"kind": "webhook", "url": None, "delivered": False}
    tickets.down = False
    for _ in range(2):
        status, data = feedback(app, lambda_context, request, key_id="secret-key-id")
        assert data["handoff"]["delivered"] is True
    assert len(tickets.sent) == 1
    url, ticket = tickets.sent[0]
    assert url == "https://hooks.example.com/tickets"  # from settings; nothing in the request names a URL
    assert ticket["question"] == "reset two-factor device" and ticket["contact"] == "ana@example.com"
    assert ticket["comment"] == "Locked out" and "answer_shown" in ticket and "confidence" in ticket
    stored = interactions.get(body["interaction_id"])
    assert stored is not None and stored.handoff_delivered is True


def test_recording_off_gives_no_interaction_id_but_keeps_the_handoff(lambda_context: Any) -> None:
    app, interactions, _ = make(record_interactions=False)
    answer = ask(app, lambda_context, "Can I pay by cheque?")
    assert answer.interaction_id is None and not interactions.items
    assert answer.handoff is not None and "ref=" in (answer.handoff.url or "")


def analytics(app: Any, ctx: Any, path: str, params: dict[str, str], key_id: str) -> tuple[int, Any]:
    ev = event("health_event.json", path=path, resource=path, queryStringParameters=params or None)
    ev["multiValueQueryStringParameters"] = {k: [v] for k, v in params.items()} or None
    ev["requestContext"]["identity"]["apiKeyId"] = key_id
    status, _, body = call(app, ev, ctx)
    return status, body


def test_analytics_for_secret_keys_only(lambda_context: Any) -> None:
    app, _, _ = make()
    good = ask(app, lambda_context)
    feedback(app, lambda_context, {"interaction_id": good.interaction_id, "helpful": True})
    for question in ("Can I pay by cheque?", "Do you accept cheques?", "cheque payments accepted?"):
        ask(app, lambda_context, question)
    status, body = analytics(app, lambda_context, "/analytics/summary", {}, "secret-key-id")
    assert status == 200, body
    assert body["totals"]["questions"] == 4 and body["totals"]["helpful"] == 1
    assert body["by_collection"][0]["collection"] == "public"
    status, body = analytics(
        app, lambda_context, "/analytics/gaps", {"collection": "public"}, "secret-key-id"
    )
    assert status == 200 and body["considered"] == 3
    assert body["clusters"] and body["clusters"][0]["size"] >= 2
    status, body = analytics(
        app, lambda_context, "/analytics/summary", {"since": "last week"}, "secret-key-id"
    )
    assert_error(status, body, 422, "validation_error")
    for edge in ("0001-01-01T00:00:00+01:00", "2026-12-01T00:00:00"):  # out of the calendar in UTC; naive
        status, body = analytics(app, lambda_context, "/analytics/summary", {"since": edge}, "secret-key-id")
        assert status == 200 and body["totals"]["questions"] == 4
    for path in ("/analytics/summary", "/analytics/gaps"):
        status, body = analytics(app, lambda_context, path, {}, SITE["key_id"])
        assert_error(status, body, 403, "forbidden")


def test_feedback_and_handoff_metrics(lambda_context: Any) -> None:
    from tests.unit.test_http_api import RecordingMetrics

    metrics = RecordingMetrics()
    app, _, _ = make(metrics)
    refused = ask(app, lambda_context, "Can I pay by cheque?")
    answered = ask(app, lambda_context)
    feedback(app, lambda_context, {"interaction_id": answered.interaction_id, "helpful": False})
    status, data = feedback(app, lambda_context, {"interaction_id": refused.interaction_id, "handoff": True})
    assert status == 200 and data["decision"] == "refuse"
    assert ("Refused", 1, {}) in metrics.points and ("Answered", 1, {}) in metrics.points
    assert ("Feedback", 1, {"Rating": "not_helpful"}) in metrics.points
    assert ("Handoff", 1, {"Kind": "form", "Decision": "refuse"}) in metrics.points
    assert sum(1 for p in metrics.points if p[0] == "Feedback") == 1  # a handoff alone is not a rating
