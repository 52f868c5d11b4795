"""Bedrock over real HTTP: boto3's ``bedrock-runtime`` client (Converse, ConverseStream with the binary
event-stream encoding, InvokeModel for Titan embeddings) against a scripted local server."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from shared.answering.extractive import ExtractiveAnswerer
from shared.answering.generative import GenerativeAnswerer
from shared.embeddings.bedrock_embedder import BedrockTitanEmbedder
from shared.embeddings.hashing import HashingEmbedder
from shared.errors import EmbedderError
from shared.llm.base import LLM, ChatMessage, LLMError
from shared.llm.bedrock_provider import BedrockChat
from shared.llm.factory import ProviderAccess, make_chain
from shared.llm.openai_provider import OpenAIChat
from shared.llm.resilience import ProviderChain, ResilientLLM, reset_breakers
from shared.models import AskResponse
from shared.remote.retry import RetryPolicy
from shared.retrieval import Retrieved
from tests.fakes import (
    BILLING_DOC,
    HASHING_GATE_THRESHOLD,
    INJECTION_DOC,
    PASSWORD_DOC,
    Reply,
    make_retrieved,
)
from tests.fakes.bedrock_server import FakeBedrockServer
from tests.fakes.openai_server import FakeOpenAIServer

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
EMB = HashingEmbedder(256)
QUESTION = "How do I reset my password?"
DOCS = [("Passwords", PASSWORD_DOC), ("Billing", BILLING_DOC), ("Delete account", INJECTION_DOC)]
GOOD = (
    "Open Settings and choose Account to reset your password [1]. "
    "Then click Reset password and follow the emailed link [1]."
)
MSGS = [ChatMessage("system", "rules"), ChatMessage("user", "question")]
TIMEOUT = 0.3


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    reset_breakers()
    yield
    reset_breakers()


@pytest.fixture
def bedrock() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as s:
        yield s


def chat(server: FakeBedrockServer, model: str = MODEL) -> BedrockChat:
    return BedrockChat(model, region="us-east-1", endpoint_url=server.url, timeout=TIMEOUT)


def answerer(*providers: LLM) -> GenerativeAnswerer:
    return GenerativeAnswerer(
        ProviderChain(list(providers)),
        EMB,
        extractive=ExtractiveAnswerer(EMB, threshold=HASHING_GATE_THRESHOLD),
    )


def retrieved() -> list[Retrieved]:
    return make_retrieved(EMB, QUESTION, DOCS)


def test_converse(bedrock: FakeBedrockServer) -> None:
    bedrock.chat(Reply.answer("Hello from Claude [1]."))
    llm = chat(bedrock)
    assert llm.name == f"bedrock:{MODEL}"
    assert llm.complete(MSGS, max_tokens=64, temperature=0.0) == "Hello from Claude [1]."
    (call,) = bedrock.requests
    assert call.path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    assert bedrock.model_ids() == [MODEL]
    assert call.body == {
        "messages": [{"role": "user", "content": [{"text": "question"}]}],
        "system": [{"text": "rules"}],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.0},
    }
    assert call.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")


def test_converse_stream_is_parsed_by_boto3(bedrock: FakeBedrockServer) -> None:
    text = "Streaming works through the AWS event-stream encoding [1]."
    bedrock.chat(Reply.answer(text, chunk_chars=5))
    deltas = list(chat(bedrock).stream(MSGS))
    assert len(deltas) == len(text) // 5 + 1
    assert "".join(deltas) == text
    assert bedrock.requests[0].path.endswith("/converse-stream")


@pytest.mark.parametrize(
    ("reply", "kind", "status", "retry_after"),
    [
        (
            Reply.fail(429, "Too many requests", code="ThrottlingException", headers={"Retry-After": "1"}),
            "rate_limit",
            429,
            1.0,
        ),
        (Reply.fail(403, "not authorized", code="AccessDeniedException"), "auth", 403, None),
        (Reply.fail(403, "invalid token", code="UnrecognizedClientException"), "auth", 403, None),
        (Reply.fail(400, "bad input", code="ValidationException"), "bad_request", 400, None),
        (Reply.fail(400, "quota", code="ServiceQuotaExceededException"), "quota", 400, None),
        (Reply.fail(408, "model timed out", code="ModelTimeoutException"), "timeout", 408, None),
        (Reply.fail(503, "unavailable", code="ServiceUnavailableException"), "server", 503, None),
        (Reply.fail(500, "internal", code="InternalServerException"), "server", 500, None),
        (Reply.fail(429, "warming up", code="ModelNotReadyException"), "server", 429, None),
        (Reply.slow(2.0), "timeout", None, None),
        (Reply.malformed(b'{"output": 3}'), "malformed", None, None),
        (Reply.answer("blocked", finish="guardrail_intervened"), "content_filter", None, None),
    ],
)
def test_converse_errors_are_classified(
    bedrock: FakeBedrockServer, reply: Reply, kind: str, status: int | None, retry_after: float | None
) -> None:
    bedrock.chat(reply)
    with pytest.raises(LLMError) as info:
        chat(bedrock).complete(MSGS)
    assert (info.value.kind, info.value.status, info.value.retry_after) == (kind, status, retry_after)
    assert len(bedrock.requests) == 1  # boto3's own retries are off


def test_stream_errors_are_classified(bedrock: FakeBedrockServer) -> None:
    bedrock.chat(
        Reply.fail(429, "slow", code="ThrottlingException"),
        Reply.answer("abcdefghijkl", stream_exception="throttlingException", break_after=1),
        Reply.answer("abcdefghijkl", stream_exception="modelStreamErrorException"),
        Reply.answer("blocked", finish="content_filtered"),
    )
    llm = chat(bedrock)
    seen = []
    for _ in range(4):
        deltas: list[str] = []
        with pytest.raises(LLMError) as info:
            for d in llm.stream(MSGS):
                deltas.append(d)
        seen.append((info.value.kind, "".join(deltas)))
    assert seen == [
        ("rate_limit", ""),
        ("rate_limit", "abcdefg"),
        ("server", "abcdefghijkl"),
        ("content_filter", "blocked"),
    ]


def test_unreachable_endpoint() -> None:
    llm = BedrockChat(MODEL, region="us-east-1", endpoint_url="http://127.0.0.1:9", timeout=TIMEOUT)
    with pytest.raises(LLMError) as info:
        llm.complete(MSGS)
    assert info.value.kind == "connection"


def test_throttling_is_retried_then_answers(bedrock: FakeBedrockServer) -> None:
    bedrock.chat(
        Reply.fail(429, "slow", code="ThrottlingException", headers={"Retry-After": "2"}), Reply.answer("ok")
    )
    sleeps: list[float] = []
    llm = ResilientLLM(chat(bedrock), RetryPolicy(max_attempts=3), sleep=sleeps.append)
    assert llm.complete(MSGS) == "ok"
    assert sleeps == [2.0]


def _collect(gen: GenerativeAnswerer) -> tuple[str, AskResponse, str]:
    text = ""
    final = None
    for item in gen.stream(QUESTION, retrieved()):
        if isinstance(item, str):
            text += item
        else:
            final = item
    assert isinstance(final, AskResponse)
    return text, final, final.provider


def test_openai_falls_back_to_bedrock_and_streams_the_same(bedrock: FakeBedrockServer) -> None:
    with FakeOpenAIServer() as openai_server:
        openai_server.chat(*[Reply.fail(500, "down")] * 2)
        reply = GOOD + " It also works on Windows 95 [1]."
        bedrock.chat(Reply.answer(reply), Reply.answer(reply, chunk_chars=4))
        primary = OpenAIChat("gpt-4o-mini", base_url=openai_server.base_url, api_key="k", timeout=TIMEOUT)
        response = answerer(primary, chat(bedrock)).answer(QUESTION, retrieved())
        provider = response.provider
        assert provider == response.provider == f"bedrock:{MODEL}"
        assert response.answer == GOOD
        assert response.reasons[1:3] == [
            "removed 1 sentence stating a number the cited source lacks",
            "openai:gpt-4o-mini failed: server (500)",
        ]
        streamed, final, stream_provider = _collect(answerer(primary, chat(bedrock)))
        assert streamed == reply
        assert (final, stream_provider) == (response, provider)


def test_factory_builds_bedrock_providers(bedrock: FakeBedrockServer) -> None:
    bedrock.chat(Reply.fail(503, "down", code="ServiceUnavailableException"), Reply.answer("second try"))
    sleeps: list[float] = []
    chain = make_chain(
        [f"bedrock:{MODEL}"],
        access=ProviderAccess(aws_region="us-east-1", bedrock_endpoint_url=bedrock.url),
        timeout_s=TIMEOUT,
        retry=RetryPolicy(max_attempts=2, base_delay=0.01),
        sleep=sleeps.append,
    )
    assert chain.complete(MSGS)[:2] == ("second try", f"bedrock:{MODEL}")
    assert len(sleeps) == 1


# --------------------------------------------------------------------------- Titan embeddings


def test_titan_embeddings(bedrock: FakeBedrockServer) -> None:
    emb = BedrockTitanEmbedder(region="us-east-1", endpoint_url=bedrock.url, dimensions=256, concurrency=3)
    assert (emb.name, emb.dimension) == ("bedrock:amazon.titan-embed-text-v2:0", 256)
    texts = ["reset password", "billing invoices", "", "delete account"]
    vectors = emb.embed_documents(texts)
    assert vectors.shape == (4, 256) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for text, vec in zip(texts, vectors, strict=True):
        assert np.allclose(vec, EMB.embed_query(text or " "), atol=1e-5)  # the rows stay in order
    calls = sorted(bedrock.requests, key=lambda r: str(r.body["inputText"]))
    assert calls[0].body == {"inputText": " ", "dimensions": 256, "normalize": True}
    assert {c.path for c in calls} == {"/model/amazon.titan-embed-text-v2%3A0/invoke"}
    assert emb.embed_documents([]).shape == (0, 256)


def test_titan_retries_and_errors(bedrock: FakeBedrockServer) -> None:
    sleeps: list[float] = []
    emb = BedrockTitanEmbedder(
        region="us-east-1", endpoint_url=bedrock.url, dimensions=256, sleep=sleeps.append
    )
    bedrock.invoke(Reply.fail(429, "slow", code="ThrottlingException", headers={"Retry-After": "1"}))
    assert emb.embed_query("x").shape == (256,)
    assert sleeps == [1.0]
    bedrock.invoke(Reply.fail(403, "denied", code="AccessDeniedException"))
    with pytest.raises(EmbedderError, match=r"auth \(403\): AccessDeniedException: denied"):
        emb.embed_query("x")
    with pytest.raises(EmbedderError, match="dimensions"):
        BedrockTitanEmbedder(dimensions=300)


def test_titan_embedder_drives_the_whole_answer(bedrock: FakeBedrockServer) -> None:
    """Titan (fake vectors = the hashing embedder's) as the embedder of both gate and verifier."""
    titan = BedrockTitanEmbedder(region="us-east-1", endpoint_url=bedrock.url, dimensions=256)
    bedrock.chat(Reply.answer(GOOD))
    items = make_retrieved(titan, QUESTION, DOCS)
    gen = GenerativeAnswerer(
        ProviderChain([chat(bedrock)]),
        titan,
        extractive=ExtractiveAnswerer(titan, threshold=HASHING_GATE_THRESHOLD),
    )
    response = gen.answer(QUESTION, items)
    assert (response.answer, response.provider) == (GOOD, f"bedrock:{MODEL}")
