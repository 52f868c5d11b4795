"""The answer cache: its key, the in-process LRU, and the service answering from it until the index changes.

Whether an answer was computed is read from the store (how many retrievals it served), never from a clock.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shared.adapters.http_api import create_app
from shared.answer_cache import (
    AnswerCache,
    LruAnswerCache,
    TieredAnswerCache,
    answer_key,
    make_answer_cache,
    normalize_question,
    settings_fingerprint,
)
from shared.chunking import embedding_text
from shared.errors import StoreUnavailableError
from shared.feedback import MemoryInteractionStore
from shared.models import AskResponse, Chunk, Document, SearchFilter, Section
from shared.service import RagService
from shared.settings import Settings
from shared.stores.memory import MemoryStore
from shared.support import SupportDesk
from tests.unit.test_http_api import KEYS, call, event, make_service

QUESTION = "How do I rotate my API key?"


class CountingStore(MemoryStore):
    """Counts dense retrievals: one per question actually answered (a cache hit makes none)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retrievals = 0

    def dense_search(self, *args: Any, **kwargs: Any) -> Any:
        self.retrievals += 1
        return super().dense_search(*args, **kwargs)


def service_with(store_cls: type[MemoryStore] = CountingStore, **settings: Any) -> Any:
    service = make_service(store_cls, **settings)
    return service, service.store


def doc(source: str, text: str, content_hash: str = "h1") -> Document:
    return Document(
        source=source,
        title="Doc",
        doc_type="markdown",
        sections=[Section(text=text)],
        content_hash=content_hash,
    )


def answer(text: str = "x") -> AskResponse:
    return AskResponse(question="q", decision="answer", answer=text, confidence=0.9)


# --------------------------------------------------------------------------- key


def test_questions_differing_in_case_and_spacing_share_a_key() -> None:
    assert normalize_question("  How do I\trotate  my API KEY? ") == "how do i rotate my api key?"
    assert normalize_question("Ｋｅｙ") == "key"  # full-width letters (NFKC)
    common: dict[str, Any] = {"fingerprint": "f", "index_version": "v", "max_chunks": 5, "threshold": 0.5}
    key = answer_key("How do I rotate my API key?", filters=None, **common)
    assert answer_key("how do i  rotate my api key?", filters=None, **common) == key
    tags = SearchFilter(tags=["b", "a"])
    assert answer_key("q", filters=tags, **common) == answer_key(
        "q", filters=SearchFilter(tags=["a", "b"]), **common
    )


@pytest.mark.parametrize(
    "change",
    [
        {"index_version": "v2"},
        {"fingerprint": "g"},
        {"max_chunks": 6},
        {"threshold": 0.6},
        {"filters": SearchFilter(collection="billing")},
        {"filters": SearchFilter(source_prefix="/docs/")},
        {"question": "How do I rotate my API keys?"},
    ],
)
def test_anything_that_changes_the_answer_changes_the_key(change: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "question": "How do I rotate my API key?",
        "fingerprint": "f",
        "index_version": "v",
        "filters": None,
        "max_chunks": 5,
        "threshold": 0.5,
    }
    question = base.pop("question")
    other = {**base, **change}
    assert answer_key(other.pop("question", question), **other) != answer_key(question, **base)


def test_the_fingerprint_follows_answer_settings_only() -> None:
    base = Settings(embedder="hash:256")
    assert settings_fingerprint(base) == settings_fingerprint(base.model_copy(update={"llm_timeout_s": 5.0}))
    for update in (
        {"answer_providers": ["openai:gpt-4o-mini", "extractive"]},
        {"max_answer_sentences": 2},
        {"embedder": "hash:64"},
        {"escalation": "Call us."},
        {"opensearch_index": "other"},
    ):
        changed = base.model_copy(update=update)
        if "opensearch_index" in update:
            base_os = base.model_copy(update={"store": "opensearch", "opensearch_url": "http://x:9200"})
            changed = base_os.model_copy(update=update)
            assert settings_fingerprint(changed) != settings_fingerprint(base_os)
        else:
            assert settings_fingerprint(changed) != settings_fingerprint(base), update


# --------------------------------------------------------------------------- LRU


def test_lru_evicts_the_least_recently_used_beyond_its_entries() -> None:
    cache = LruAnswerCache(max_entries=2, max_bytes=10**6, ttl_s=60)
    cache.put("a", answer("A"))
    cache.put("b", answer("B"))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", answer("C"))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.stats.evictions == 1 and len(cache) == 2


def test_lru_stays_within_its_bytes() -> None:
    one = len(answer("x" * 1000).model_dump_json()) + 1
    cache = LruAnswerCache(max_entries=100, max_bytes=3 * one + 10, ttl_s=60)
    for key in "abcdef":
        cache.put(key, answer("x" * 1000))
    assert len(cache) == 3 and cache.stats.bytes <= cache.max_bytes
    assert [k for k in "abcdef" if cache.get(k)] == ["d", "e", "f"]
    cache.put("huge", answer("y" * 10_000))  # larger than the whole cache: not kept, nothing evicted
    assert cache.get("huge") is None and len(cache) == 3


def test_lru_entries_expire_and_hits_are_copies() -> None:
    now = [100.0]
    cache = LruAnswerCache(max_entries=10, max_bytes=10**6, ttl_s=30, clock=lambda: now[0])
    cache.put("k", answer("A"))
    hit = cache.get("k")
    assert hit is not None
    hit.answer = "changed by a caller"
    assert cache.get("k") == answer("A")
    now[0] += 30
    assert cache.get("k") is None and len(cache) == 0
    assert (cache.stats.hits, cache.stats.misses) == (2, 1)


def test_tiered_cache_fills_the_local_tier_from_the_shared_one() -> None:
    shared = LruAnswerCache()
    local = LruAnswerCache()
    tiered = TieredAnswerCache(local, shared)
    assert isinstance(tiered, AnswerCache)
    shared.put("k", answer("A"))
    assert tiered.get("k") == answer("A") and local.get("k") == answer("A")
    tiered.put("j", answer("B"))
    assert shared.get("j") == answer("B")


def test_settings_build_the_cache() -> None:
    assert make_answer_cache(Settings(answer_cache=False)) is None
    cache = make_answer_cache(Settings(answer_cache_entries=7, answer_cache_mb=1, answer_cache_ttl_s=9))
    assert isinstance(cache, LruAnswerCache)
    assert (cache.max_entries, cache.max_bytes, cache.ttl_s) == (7, 1024 * 1024, 9)


# --------------------------------------------------------------------------- the service


def test_a_repeated_question_is_answered_from_the_cache() -> None:
    service, store = service_with()
    first = service.ask(QUESTION)
    assert store.retrievals == 1 and first.decision == "answer"
    again = service.ask("  how do I rotate my api KEY? ")
    assert store.retrievals == 1  # nothing retrieved, nothing answered again
    assert again.question == "how do I rotate my api KEY?"  # the asker's own words
    assert again.model_dump(exclude={"question"}) == first.model_dump(exclude={"question"})
    service.ask(QUESTION, max_chunks=2)  # other answer settings: another answer
    service.ask(QUESTION, filters=SearchFilter(tags=["billing"]))
    assert store.retrievals == 3
    service.ask(QUESTION, confidence_threshold=service.settings.confidence_threshold)  # the default, explicit
    assert store.retrievals == 3


def test_ingest_and_removal_invalidate_cached_answers() -> None:
    service, store = service_with()
    service.ask(QUESTION)
    before = store.index_version()
    service.ingestor.index_documents([doc("/d/new.md", "Rotating an API key takes effect at once.")])
    store.flush()
    assert store.index_version() != before
    service.ask(QUESTION)
    assert store.retrievals == 2
    service.ask(QUESTION)
    assert store.retrievals == 2
    service.ingestor.delete_sources(["/d/new.md"])
    store.flush()
    service.ask(QUESTION)
    assert store.retrievals == 3


def test_an_unchanged_reingest_keeps_the_cache() -> None:
    service, store = service_with()
    service.ask(QUESTION)
    version = store.index_version()
    same = Document(
        source="s3://docs/account/keys.md",
        title="API keys",
        doc_type="markdown",
        sections=[Section(text=KEYS, heading_path=["API keys"])],
        content_hash="k1",
    )
    changed, _ = service.ingestor.index_documents([same])
    store.flush()
    assert changed == 0 and store.index_version() == version
    service.ask(QUESTION)
    assert store.retrievals == 1


class IngestDuringRetrieval(CountingStore):
    """An ingest lands while the question is being answered (another process, in production)."""

    def dense_search(self, *args: Any, **kwargs: Any) -> Any:
        found = super().dense_search(*args, **kwargs)
        if self.retrievals == 1:
            self._changed()
            self.flush()
        return found


def test_an_answer_is_filed_under_the_version_read_before_retrieval() -> None:
    """Else an answer from the old index could be kept under the new version and outlive the ingest."""
    service, store = service_with(IngestDuringRetrieval)
    service.ask(QUESTION)
    service.ask(QUESTION)
    assert store.retrievals == 2


def test_a_cached_answer_gets_its_own_interaction(lambda_context: Any) -> None:
    service, store = service_with()
    interactions = MemoryInteractionStore()
    app = create_app(service, desk=SupportDesk(service.settings, interactions))
    ids = []
    for _ in range(2):
        status, _, body = call(app, event("query_event.json", json={"question": QUESTION}), lambda_context)
        assert status == 200 and body["decision"] == "answer"
        ids.append(body["interaction_id"])
    assert store.retrievals == 1
    assert len(set(ids)) == 2 and set(ids) == set(interactions.items)
    assert all(i.question == QUESTION for i in interactions.items.values())


def test_the_cache_can_be_turned_off() -> None:
    service, store = service_with(answer_cache=False)
    service.ask(QUESTION)
    service.ask(QUESTION)
    assert store.retrievals == 2 and service.answer_cache is None


class NoVersion(CountingStore):
    def index_version(self) -> str:
        raise StoreUnavailableError("connection refused")


def test_an_unreadable_index_version_means_no_caching_not_a_failure() -> None:
    service, store = service_with(NoVersion)
    assert service.ask(QUESTION).decision == "answer"
    service.ask(QUESTION)
    assert store.retrievals == 2


def test_an_answer_after_a_provider_failure_is_not_cached(tmp_path: Any) -> None:
    from shared.llm.resilience import reset_breakers

    reset_breakers()
    service, store = service_with(
        answer_providers=["openai:gpt-test", "extractive"],
        openai_base_url="http://127.0.0.1:9/v1",  # sockets are disabled: every call fails to connect
        openai_api_key="sk-test",
        llm_max_attempts=1,
        confidence_threshold=0.0,
    )
    for _ in range(2):
        response = service.ask(QUESTION)
        assert response.provider == "extractive"
        assert any("openai:gpt-test failed" in r for r in response.reasons)
    assert store.retrievals == 2
    reset_breakers()


def test_streaming_fills_the_cache_and_a_hit_streams_whole() -> None:
    service, store = service_with()
    streamed = list(service.ask_stream(QUESTION))
    assert isinstance(streamed[-1], AskResponse) and store.retrievals == 1
    (hit,) = list(service.ask_stream(QUESTION.upper()))  # the response alone, as extractive answers stream
    assert isinstance(hit, AskResponse) and store.retrievals == 1
    assert hit.answer == streamed[-1].answer and hit.question == QUESTION.upper()
    assert service.ask(QUESTION).answer == hit.answer and store.retrievals == 1


def test_hits_and_misses_are_counted() -> None:
    from tests.unit.test_http_api import RecordingMetrics

    metrics = RecordingMetrics()
    service, _ = service_with()
    service.metrics = metrics
    service.ask(QUESTION)
    service.ask(QUESTION)
    assert [n for n in metrics.names() if n.startswith("AnswerCache")] == [
        "AnswerCacheMiss",
        "AnswerCacheHit",
    ]


def test_memory_store_version_changes_with_writes_only() -> None:
    store = MemoryStore(dimension=4, lexical_text=embedding_text)
    first = store.index_version()
    store.dense_search(np.ones(4, dtype=np.float32), 3)
    store.lexical_search("anything", 3)
    assert store.index_version() == first
    store.upsert(
        [Chunk(chunk_id="c", source="/d", text="alpha", position=0, content_hash="h")], np.ones((1, 4))
    )
    written = store.index_version()
    assert written != first
    store.flush()  # BM25 sees the write now: a version again
    assert store.index_version() not in (first, written)
    assert RagService(Settings(embedder="hash:4"), store=store).store.index_version() == store.index_version()


def test_opensearch_version_is_one_small_search_per_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the query function sends for the version (the wire request, serialized by opensearch-py),
    and that it sends it at most once per VERSION_TTL_S, but again at once after its own write."""
    from shared.stores import opensearch as opensearch_store
    from tests.unit.test_opensearch_requests import INDEX, FakeCluster, make_store

    now = [0.0]
    monkeypatch.setattr(opensearch_store.time, "monotonic", lambda: now[0])
    cluster = FakeCluster()
    answer = {"hits": {"total": {"value": 42}, "hits": []}, "aggregations": {"newest": {"value": 1.8e12}}}
    cluster.on("POST", rf"/{INDEX}/_search", (200, answer))
    store = make_store(cluster)
    assert store.index_version() == "42-1800000000000"
    [request] = cluster.of("POST", f"/{INDEX}/_search")
    assert request.body == {
        "size": 0,
        "track_total_hits": True,
        "aggs": {"newest": {"max": {"field": "indexed_at"}}},
    }
    now[0] += opensearch_store.VERSION_TTL_S - 0.1
    store.index_version()
    assert len(cluster.of("POST", f"/{INDEX}/_search")) == 1
    now[0] += 0.1
    store.index_version()
    assert len(cluster.of("POST", f"/{INDEX}/_search")) == 2
    store.delete_ids(["c1"])
    store.index_version()  # its own write: refreshed, then read again
    assert len(cluster.of("POST", f"/{INDEX}/_search")) == 3 and cluster.of("POST", f"/{INDEX}/_refresh")
