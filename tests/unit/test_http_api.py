"""The HTTP API resolver with fakes: a RagService over MemoryStore + HashingEmbedder, API Gateway REST
events from tests/events, no sockets."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.health import HealthChecker
from shared.adapters.http_api import MAX_BODY_BYTES, create_app
from shared.chunking import embedding_text
from shared.embeddings.hashing import HashingEmbedder
from shared.errors import StoreUnavailableError
from shared.feedback import MemoryInteractionStore
from shared.models import MAX_FILTER_TAGS, AskResponse, Document, ErrorResponse, SearchResponse, Section
from shared.service import RagService
from shared.settings import Settings
from shared.stores.memory import MemoryStore
from shared.support import SupportDesk

EVENTS = Path(__file__).resolve().parent.parent / "events"

KEYS = (
    "To rotate your API key, open the console and choose Regenerate key. "
    "The old key stops working one hour after you regenerate it."
)
INVOICES = "Invoices are emailed to the account owner on the first day of every month."


class RecordingMetrics:
    def __init__(self) -> None:
        self.points: list[tuple[str, float, dict[str, str]]] = []

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        self.points.append((name, value, dimensions))

    def milliseconds(self, name: str, value: float) -> None:
        self.points.append((name, value, {}))

    def names(self) -> list[str]:
        return [p[0] for p in self.points]


class DownStore(MemoryStore):
    """Every read fails as an unreachable cluster would."""

    def _down(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailableError("connection refused")

    dense_search = lexical_search = count_chunks = count_documents = _down  # type: ignore[assignment]


class BrokenStore(MemoryStore):
    def dense_search(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail in /srv/app/store.py")


class FailingS3:
    def head_bucket(self, **kwargs: Any) -> None:
        raise RuntimeError("An error occurred (403) when calling the HeadBucket operation: Forbidden")


class OkS3:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def head_bucket(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {}


def make_service(store_cls: type[MemoryStore] = MemoryStore, **settings: Any) -> RagService:
    emb = HashingEmbedder(256)
    store = store_cls(dimension=256, lexical_text=embedding_text)
    service = RagService(Settings(embedder="hash:256", **settings), embedder=emb, store=store)
    docs = [
        Document(
            source="s3://docs/account/keys.md",
            title="API keys",
            doc_type="markdown",
            sections=[Section(text=KEYS, heading_path=["API keys"])],
            content_hash="k1",
        ),
        Document(
            source="s3://docs/billing/invoices.md",
            title="Invoices",
            doc_type="markdown",
            sections=[Section(text=INVOICES, heading_path=["Invoices"])],
            content_hash="i1",
            tags=["billing"],
        ),
    ]
    if store_cls is not DownStore:
        service.ingestor.index_documents(docs)
        store.flush()
    return service


def event(name: str, **changes: Any) -> dict[str, Any]:
    ev = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    for key, value in changes.items():
        if key == "json":
            ev["body"] = json.dumps(value)
        else:
            ev[key] = value
    return ev


def call(app: Any, ev: dict[str, Any], ctx: Any) -> tuple[int, dict[str, Any], Any]:
    result = app.resolve(ev, ctx)
    headers = {k.lower(): v for k, v in (result.get("multiValueHeaders") or {}).items()}
    headers.update({k.lower(): [v] for k, v in (result.get("headers") or {}).items()})
    body = result["body"]
    if headers.get("content-type", [""])[0].startswith("application/json"):
        body = json.loads(body)
    return result["statusCode"], headers, body


def assert_error(status: int, body: Any, expected_status: int, code: str) -> ErrorResponse:
    assert status == expected_status, body
    err = ErrorResponse.model_validate(body)
    assert err.error == code
    assert err.request_id == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef" or err.request_id
    assert err.timestamp.endswith("Z")
    assert "Traceback" not in json.dumps(body)
    return err


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


@pytest.fixture
def app(metrics: RecordingMetrics) -> Any:
    service = make_service()
    return create_app(
        service,
        metrics=metrics,
        health=HealthChecker(service, bucket="docs", s3_client=OkS3()),
        desk=SupportDesk(service.settings, MemoryInteractionStore()),
    )


# --------------------------------------------------------------------------- query / search


def test_query_answers_with_citations_like_ask_json(
    app: Any, lambda_context: Any, metrics: RecordingMetrics
) -> None:
    question = "How do I rotate my API key?"
    status, _, body = call(app, event("query_event.json", json={"question": question}), lambda_context)
    assert status == 200
    response = AskResponse.model_validate(body)
    assert response.decision == "answer"
    assert response.citations and response.citations[0].source == "s3://docs/account/keys.md"
    # exactly the model the CLI prints with `ask --json` (same keys, nulls included)
    assert set(body) == set(AskResponse.model_fields)
    expected = make_service().ask(question).model_dump(mode="json")
    assert len(body["interaction_id"]) == 32  # the API records the interaction; `ask` alone does not
    assert {**body, "interaction_id": None} == expected
    assert {"QuerySuccess", "QueryLatency", "Answered"} <= set(metrics.names())
    assert "Refused" not in metrics.names()


def test_query_refuses_out_of_scope_and_honours_options(
    app: Any, lambda_context: Any, metrics: RecordingMetrics
) -> None:
    ev = event(
        "query_event.json",
        json={
            "question": "What is the capital of Mongolia?",
            "max_chunks": 2,
            "confidence_threshold": 0.9,
            "filters": {"source_prefix": "s3://docs/billing/", "tags": []},
        },
    )
    status, _, body = call(app, ev, lambda_context)
    assert status == 200
    assert body["decision"] == "refuse"
    assert body["answer"] is None and body["citations"] == []
    assert body["escalation"]
    assert "Refused" in metrics.names() and "Answered" not in metrics.names()  # a refusal is not an answer


def test_search_returns_hits_and_filters(app: Any, lambda_context: Any) -> None:
    status, _, body = call(
        app, event("search_event.json", json={"query": "invoices", "k": 1}), lambda_context
    )
    assert status == 200
    response = SearchResponse.model_validate(body)
    assert len(response.hits) == 1 and response.hits[0].source == "s3://docs/billing/invoices.md"
    ev = event(
        "search_event.json", json={"query": "invoices", "filters": {"source_prefix": "s3://docs/account/"}}
    )
    status, _, body = call(app, ev, lambda_context)
    assert status == 200 and {h["source"] for h in body["hits"]} == {"s3://docs/account/keys.md"}


# --------------------------------------------------------------------------- errors


def test_validation_errors_list_every_field(app: Any, lambda_context: Any, metrics: RecordingMetrics) -> None:
    ev = event(
        "query_event.json",
        json={"question": "x" * 10_001, "max_chunks": 0, "confidence_threshold": 2, "colour": "red"},
    )
    status, _, body = call(app, ev, lambda_context)
    err = assert_error(status, body, 422, "validation_error")
    fields = {tuple(d.loc): d.type for d in err.details}
    assert fields == {
        ("body", "question"): "string_too_long",
        ("body", "max_chunks"): "greater_than_equal",
        ("body", "confidence_threshold"): "less_than_equal",
        ("body", "colour"): "extra_forbidden",
    }
    assert ("QueryRejected", 1, {"ErrorType": "validation_error"}) in metrics.points
    assert "QueryFailure" not in metrics.names()  # an invalid request is not a failure of ours


@pytest.mark.parametrize(
    ("payload", "loc", "type_"),
    [
        ({}, ["body", "question"], "missing"),
        ({"question": ""}, ["body", "question"], "string_too_short"),
        ({"question": "   "}, ["body", "question"], "string_too_short"),
        ({"question": "why " * 600}, ["body", "question"], "string_too_long"),  # > max_question_chars
        ({"question": 42}, ["body", "question"], "string_type"),
        ({"question": "ok?", "filters": {"tags": "api"}}, ["body", "filters", "tags"], "list_type"),
    ],
)
def test_query_field_errors(
    app: Any, lambda_context: Any, payload: dict[str, Any], loc: list[str], type_: str
) -> None:
    status, _, body = call(app, event("query_event.json", json=payload), lambda_context)
    err = assert_error(status, body, 422, "validation_error")
    assert [d.loc for d in err.details] == [loc]
    assert err.details[0].type == type_


def test_search_k_is_bounded(app: Any, lambda_context: Any) -> None:
    status, _, body = call(app, event("search_event.json", json={"query": "x", "k": 101}), lambda_context)
    err = assert_error(status, body, 422, "validation_error")
    assert err.details[0].loc == ["body", "k"]


def test_configured_question_limit_is_enforced(lambda_context: Any) -> None:
    app = create_app(make_service(max_question_chars=20))
    status, _, body = call(app, event("query_event.json", json={"question": "a" * 21}), lambda_context)
    err = assert_error(status, body, 422, "validation_error")
    assert err.details[0].type == "string_too_long"
    assert "the limit is 20" in err.message


@pytest.mark.parametrize("raw", ["{not json", '{"question": "a"', "", "null"])
def test_malformed_or_missing_json(app: Any, lambda_context: Any, raw: str) -> None:
    status, _, body = call(app, event("query_event.json", body=raw), lambda_context)
    if raw in ("", "null"):  # no body at all is a missing field, not malformed JSON
        assert_error(status, body, 422, "validation_error")
    else:
        assert_error(status, body, 400, "malformed_json")


def test_tags_are_capped_and_deduplicated(app: Any, lambda_context: Any) -> None:
    """9,000 tags once segfaulted serve inside ChromaDB; now more than the cap is a 422."""
    many = {"query": "invoices", "filters": {"tags": [f"t{i}" for i in range(MAX_FILTER_TAGS + 1)]}}
    status, _, body = call(app, event("search_event.json", json=many), lambda_context)
    err = assert_error(status, body, 422, "validation_error")
    assert err.details[0].loc[-2:] == ["filters", "tags"] and err.details[0].type == "too_long"
    repeated = {"query": "invoices", "filters": {"tags": ["billing"] * 4000}}
    status, _, body = call(app, event("search_event.json", json=repeated), lambda_context)
    assert status == 200 and {h["source"] for h in body["hits"]} == {"s3://docs/billing/invoices.md"}


@pytest.mark.parametrize("depth", [1000, 20_000])
def test_deeply_nested_json_is_400(app: Any, lambda_context: Any, depth: int) -> None:
    raw = '{"question": "hi", "filters": ' + "[" * depth + "]" * depth + "}"
    status, _, body = call(app, event("query_event.json", body=raw), lambda_context)
    err = assert_error(status, body, 400, "malformed_json")
    assert "nested too deeply" in err.message


def test_body_too_large(app: Any, lambda_context: Any) -> None:
    ev = event("query_event.json", json={"question": "a" * (MAX_BODY_BYTES + 1)})
    status, _, body = call(app, ev, lambda_context)
    err = assert_error(status, body, 413, "payload_too_large")
    assert str(MAX_BODY_BYTES) in err.message


def test_form_content_type_is_415(app: Any, lambda_context: Any) -> None:
    ev = event("query_event.json", json={"question": "hi"})
    ev["headers"] = {**ev["headers"], "Content-Type": "application/x-www-form-urlencoded"}
    ev["multiValueHeaders"] = {
        **ev["multiValueHeaders"],
        "Content-Type": ["application/x-www-form-urlencoded"],
    }
    status, _, body = call(app, ev, lambda_context)
    assert_error(status, body, 415, "unsupported_media_type")


def test_unknown_route_404_and_wrong_method_405(app: Any, lambda_context: Any) -> None:
    status, _, body = call(app, event("health_event.json", path="/nope"), lambda_context)
    assert_error(status, body, 404, "not_found")
    status, headers, body = call(app, event("query_event.json", httpMethod="GET", body=None), lambda_context)
    assert_error(status, body, 405, "method_not_allowed")
    assert headers["allow"] == ["OPTIONS, POST"]
    status, headers, body = call(app, event("health_event.json", httpMethod="DELETE"), lambda_context)
    assert_error(status, body, 405, "method_not_allowed")
    assert headers["allow"] == ["GET"]


def test_store_unavailable_is_503(lambda_context: Any, metrics: RecordingMetrics) -> None:
    app = create_app(make_service(DownStore), metrics=metrics)
    status, _, body = call(app, event("query_event.json"), lambda_context)
    assert_error(status, body, 503, "store_unavailable")
    assert ("QueryFailure", 1, {"ErrorType": "store_unavailable"}) in metrics.points
    status, _, body = call(app, event("search_event.json"), lambda_context)
    assert_error(status, body, 503, "store_unavailable")


def test_unexpected_error_is_500_without_details(lambda_context: Any) -> None:
    app = create_app(make_service(BrokenStore))
    status, _, body = call(app, event("query_event.json"), lambda_context)
    err = assert_error(status, body, 500, "internal_error")
    assert "secret" not in json.dumps(body) and "/srv" not in json.dumps(body)
    assert err.request_id == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


# --------------------------------------------------------------------------- health


def test_health_is_cheap(lambda_context: Any) -> None:
    service = RagService(Settings(embedder="hash:256"))  # touching embedder or store would build them
    app = create_app(service)
    status, _, body = call(app, event("health_event.json"), lambda_context)
    assert status == 200 and body["status"] == "ok" and body["version"]
    assert "embedder" not in service.__dict__ and "store" not in service.__dict__


def test_detailed_health_ok(app: Any, lambda_context: Any) -> None:
    status, _, body = call(app, event("health_detailed_event.json"), lambda_context)
    assert status == 200, body
    assert body["status"] == "ok" and body["failing"] == []
    assert body["store"]["documents"] == 2 and body["store"]["chunks"] >= 2
    assert body["embedder"]["loaded"] and body["embedder"]["name"] == "hash:256"
    assert body["document_bucket"] == {
        **body["document_bucket"],
        "ok": True,
        "status": "ok",
        "bucket": "docs",
    }
    assert body["llm_providers"] == []


def test_detailed_health_names_what_is_down(lambda_context: Any) -> None:
    service = make_service(DownStore)
    app = create_app(service, health=HealthChecker(service, bucket="docs", s3_client=FailingS3()))
    status, _, body = call(app, event("health_detailed_event.json"), lambda_context)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["failing"] == ["store", "document_bucket"]
    assert "connection refused" in body["store"]["detail"]
    assert "403" in body["document_bucket"]["detail"]


def test_detailed_health_without_bucket(lambda_context: Any) -> None:
    service = make_service()
    app = create_app(service, health=HealthChecker(service, bucket=None))
    status, _, body = call(app, event("health_detailed_event.json"), lambda_context)
    assert status == 200 and body["document_bucket"]["status"] == "not_configured"


# --------------------------------------------------------------------------- docs


def test_openapi_document_has_the_models(app: Any, lambda_context: Any) -> None:
    ev = event("health_event.json", path="/openapi.json")
    status, _, spec = call(app, ev, lambda_context)
    assert status == 200
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "RAG Explorer API"
    assert {"/query", "/search", "/health", "/health/detailed"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"QueryRequest", "SearchRequest", "AskResponse", "SearchResponse", "ErrorResponse"} <= set(schemas)
    query = spec["paths"]["/query"]["post"]
    assert query["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/QueryRequest")
    assert query["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/AskResponse")
    for code in ("400", "413", "422", "503"):
        assert query["responses"][code]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/ErrorResponse"
        )
    assert schemas["QueryRequest"]["additionalProperties"] is False
    # one error model: the framework's own 422 schema is not advertised anywhere
    assert "HTTPValidationError" not in json.dumps(spec)
    assert list(spec["paths"]["/health"]["get"]["responses"]) == ["200"]
    assert set(spec["paths"]["/health/detailed"]["get"]["responses"]) == {"200", "503"}


def test_swagger_ui(app: Any, lambda_context: Any) -> None:
    result = app.resolve(event("health_event.json", path="/docs"), lambda_context)
    assert result["statusCode"] == 200
    assert "<html" in result["body"].lower() and "swagger" in result["body"].lower()
    result = app.resolve(
        event("health_event.json", path="/docs", queryStringParameters={"format": "json"}), lambda_context
    )
    spec = json.loads(result["body"])
    assert spec["paths"]["/query"] and "HTTPValidationError" not in result["body"]


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_powertools_metrics_emit_emf(capsys: pytest.CaptureFixture[str], lambda_context: Any) -> None:
    from aws_lambda_powertools import Metrics

    from shared.adapters.telemetry import PowertoolsMetrics

    metrics = Metrics(namespace="RagExplorer", service="test")
    app = create_app(make_service(), metrics=PowertoolsMetrics(metrics))

    @metrics.log_metrics
    def handler(ev: dict[str, Any], ctx: Any) -> dict[str, Any]:
        return app.resolve(ev, ctx)

    handler(event("query_event.json", json={"question": "How do I rotate my API key?"}), lambda_context)
    handler(event("query_event.json", json={}), lambda_context)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    names = {m["Name"] for b in blobs for d in b["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"QuerySuccess", "QueryLatency", "QueryRejected", "Answered"} <= names
    failure = next(b for b in blobs if "QueryRejected" in b)
    assert failure["ErrorType"] == "validation_error"
    assert any("ErrorType" in dims for dims in failure["_aws"]["CloudWatchMetrics"][0]["Dimensions"])
    latency = next(b for b in blobs if "QueryLatency" in b)
    assert "ErrorType" not in latency


def test_events_are_independent(app: Any, lambda_context: Any) -> None:
    first = copy.deepcopy(event("query_event.json"))
    call(app, first, lambda_context)
    assert first == event("query_event.json")  # the resolver does not mutate the event
