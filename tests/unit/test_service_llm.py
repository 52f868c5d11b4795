"""LLM failures reach the metrics sink (LLMFailure by provider and error type), sockets off."""

from __future__ import annotations

from pathlib import Path

from shared.embeddings.hashing import HashingEmbedder
from shared.models import Document, Section
from shared.service import RagService
from shared.settings import Settings
from shared.stores.memory import MemoryStore


class Recorder:
    def __init__(self) -> None:
        self.counts: list[tuple[str, dict[str, str]]] = []

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        self.counts.append((name, dimensions))

    def milliseconds(self, name: str, value: float) -> None:
        pass


def test_llm_failures_are_counted_and_the_extractive_answer_is_the_floor(tmp_path: Path) -> None:
    from shared.llm.resilience import reset_breakers

    reset_breakers()
    emb = HashingEmbedder()
    settings = Settings(
        home=tmp_path,
        answer_providers=["openai:gpt-test", "extractive"],
        openai_base_url="http://127.0.0.1:9/v1",  # sockets are disabled: the call fails to connect
        openai_api_key="sk-test",
        llm_max_attempts=1,
        confidence_threshold=0.0,
    )
    metrics = Recorder()
    service = RagService(settings, embedder=emb, store=MemoryStore(dimension=emb.dimension), metrics=metrics)
    text = "To rotate your API key, open the console and choose Regenerate key."
    service.ingestor.index_documents(
        [
            Document(
                source="/d/keys.md",
                title="Keys",
                doc_type="markdown",
                sections=[Section(text=text)],
                content_hash="h",
            )
        ]
    )
    service.store.flush()
    response = service.ask("How do I rotate my API key?")
    assert response.provider == "extractive" and response.decision == "answer"
    # (pytest-socket's SocketBlockedError stands in for the network; its error class is not the point here)
    [(name, dims)] = [c for c in metrics.counts if not c[0].startswith("AnswerCache")]
    assert name == "LLMFailure" and dims["Provider"] == "openai:gpt-test" and dims["ErrorType"]
    assert any("openai:gpt-test failed" in reason for reason in response.reasons)
