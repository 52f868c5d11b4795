"""The application service: one object that the CLI, the local server and the Lambdas share.

Everything heavy (embedder weights, the store client) is built lazily, once, on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from shared.answer_cache import AnswerCache, answer_key, make_answer_cache, settings_fingerprint
from shared.answering.base import Answerer
from shared.answering.extractive import ExtractiveAnswerer
from shared.chunking import Chunker
from shared.embeddings.base import Embedder
from shared.errors import RagExplorerError
from shared.ingest import Ingestor, ProgressCallback
from shared.models import (
    DEFAULT_COLLECTION,
    AskResponse,
    Chunk,
    IngestSummary,
    RemoveSummary,
    RequestTextError,
    SearchFilter,
    SearchResponse,
    StatusResponse,
    check_request_text,
)
from shared.retrieval import HybridRetriever

if TYPE_CHECKING:
    from shared.observability import MetricsSink
from shared.settings import Settings
from shared.stores.base import VectorStore

log = logging.getLogger(__name__)

#: The collection the current question is held to (None: all), for the answerer's vocabulary lookup.
_ASKED_COLLECTION: ContextVar[str | None] = ContextVar("asked_collection", default=None)
#: LLM providers that failed while answering the current question (an answer after a failure is not cached).
_PROVIDER_FAILURES: ContextVar[list[str] | None] = ContextVar("provider_failures", default=None)


class InvalidRequestError(RagExplorerError):
    """The request itself is unusable (empty question, too long, ...)."""


class RagService:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        store: VectorStore | None = None,
        metrics: MetricsSink | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        if embedder is not None:
            self.__dict__["embedder"] = embedder
        if store is not None:
            self.__dict__["store"] = store

    # ------------------------------------------------------------------ components

    @cached_property
    def embedder(self) -> Embedder:
        from shared.embeddings.factory import make_embedder

        s = self.settings
        embedder = make_embedder(
            s.embedder,
            batch_size=s.embed_batch_size,
            threads=s.embed_threads,
            openai_base_url=s.openai_base_url,
            openai_api_key=s.openai_api_key,
            aws_region=s.aws_region,
        )
        if not s.embedding_cache:
            return embedder
        from shared.embeddings.cache import CachingEmbedder, EmbeddingCache

        return CachingEmbedder(embedder, EmbeddingCache(embedder.name, path=s.embedding_cache_path))

    @cached_property
    def store(self) -> VectorStore:
        from shared.stores.factory import make_store

        return make_store(self.settings, self.embedder)

    @cached_property
    def retriever(self) -> HybridRetriever:
        s = self.settings
        return HybridRetriever(
            self.embedder,
            self.store,
            candidates=s.candidates,
            rrf_k=s.rrf_k,
            dense_weight=s.dense_weight,
            lexical_weight=s.lexical_weight,
        )

    @cached_property
    def extractive(self) -> ExtractiveAnswerer:
        s = self.settings
        return ExtractiveAnswerer(
            self.embedder,
            max_sentences=s.max_answer_sentences,
            threshold=s.confidence_threshold,
            vocabulary=self._vocabulary,
        )

    def _vocabulary(self, terms: Sequence[str]) -> dict[str, int]:
        """The store's term counts within the collection being asked (see :meth:`ask`): whether a word is
        used elsewhere in the index is no business of a question held to one collection."""
        return self.store.term_counts(terms, _ASKED_COLLECTION.get())

    @cached_property
    def answerer(self) -> Answerer:
        """The extractive answerer, or, when LLM providers are configured, the generative one on top."""
        from shared.llm.factory import ProviderAccess, make_chain, plan_providers
        from shared.remote.retry import RetryPolicy

        s = self.settings
        llms, _ = plan_providers(s.answer_providers)
        if not llms:
            return self.extractive
        from shared.answering.generative import GenerativeAnswerer

        chain = make_chain(
            llms,
            access=ProviderAccess.from_settings(s),  # base URL and key per provider (and the LLM secret)
            timeout_s=s.llm_timeout_s,
            retry=RetryPolicy(max_attempts=s.llm_max_attempts),
            failure_threshold=s.llm_breaker_failures,
            cooldown_s=s.llm_breaker_cooldown_s,
            on_error=self._llm_failed,
        )
        return GenerativeAnswerer(chain, self.embedder, extractive=self.extractive)

    def _llm_failed(self, provider: str, kind: str) -> None:
        failures = _PROVIDER_FAILURES.get()
        if failures is not None:
            failures.append(provider)
        if self.metrics is not None:
            self.metrics.count("LLMFailure", Provider=provider, ErrorType=kind)

    @cached_property
    def answer_cache(self) -> AnswerCache | None:
        """Answers remembered until the index changes (:mod:`shared.answer_cache`); None when off."""
        return make_answer_cache(self.settings)

    @cached_property
    def _fingerprint(self) -> str:
        return settings_fingerprint(self.settings)

    @cached_property
    def ingestor(self) -> Ingestor:
        s = self.settings
        chunker = Chunker(self.embedder, chunk_tokens=s.chunk_tokens, overlap_tokens=s.chunk_overlap_tokens)
        from shared.loaders import LoadLimits

        return Ingestor(
            self.embedder,
            self.store,
            chunker,
            max_file_bytes=s.max_file_bytes,
            limits=LoadLimits.from_settings(s),
            on_embedded=self.embed_answer_sentences,
        )

    def embed_answer_sentences(self, chunks: Sequence[Chunk]) -> None:
        """With the embedding cache, embed at ingest the sentences answers may quote (see
        :mod:`shared.embeddings.cache`): a question then looks them up instead of computing them."""
        from shared.answering.compose import unit_texts
        from shared.embeddings.cache import CachingEmbedder

        if isinstance(self.embedder, CachingEmbedder):
            texts = list(dict.fromkeys(u for c in chunks for u in unit_texts(c.text)))
            if texts:
                self.embedder.embed_documents(texts)

    # ------------------------------------------------------------------ use cases

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        prune: bool = False,
        on_file: ProgressCallback | None = None,
        files: Sequence[Path] | None = None,
        collection: str = DEFAULT_COLLECTION,
    ) -> IngestSummary:
        """Index ``paths`` into ``collection``, its chunks linked by the collection's ``url_template``."""
        from shared.ingest import Placement

        placement = Placement(collection, self.settings.collection(collection).url_template)
        return self.ingestor.ingest_paths(
            paths, prune=prune, on_file=on_file, files=files, placement=placement
        )

    def remove(self, paths: Sequence[Path]) -> RemoveSummary:
        return self.ingestor.remove_paths(paths)

    def _check_text(self, text: str, what: str) -> str:
        try:
            return check_request_text(text, what, self.settings.max_question_chars)
        except RequestTextError as exc:
            raise InvalidRequestError(str(exc)) from None

    def search(
        self, query: str, *, k: int | None = None, filters: SearchFilter | None = None
    ) -> SearchResponse:
        query = self._check_text(query, "query")
        hits = self.retriever.retrieve(query, k or self.settings.search_k, filters)
        return SearchResponse(query=query, hits=[h.to_hit() for h in hits])

    def ask(
        self,
        question: str,
        *,
        max_chunks: int | None = None,
        confidence_threshold: float | None = None,
        filters: SearchFilter | None = None,
    ) -> AskResponse:
        question = self._check_text(question, "question")
        key = self._cache_key(question, max_chunks, confidence_threshold, filters)
        cached = self._cached(key, question)
        if cached is not None:
            return cached
        retrieved = self.retriever.retrieve(question, max_chunks or self.settings.max_chunks, filters)
        scope = _ASKED_COLLECTION.set(filters.collection if filters else None)
        failures = _PROVIDER_FAILURES.set([])
        try:
            response = self._escalate(
                self.answerer.answer(question, retrieved, threshold=confidence_threshold), filters
            )
            self._remember(key, response)
        finally:
            _PROVIDER_FAILURES.reset(failures)
            _ASKED_COLLECTION.reset(scope)
        return response

    def ask_stream(
        self,
        question: str,
        *,
        max_chunks: int | None = None,
        confidence_threshold: float | None = None,
        filters: SearchFilter | None = None,
    ) -> Iterator[str | AskResponse]:
        """Like :meth:`ask`, but yields the generated text as it arrives, then the verified response.
        A cached answer comes whole: the response alone, as the extractive answerer streams."""
        question = self._check_text(question, "question")
        key = self._cache_key(question, max_chunks, confidence_threshold, filters)
        cached = self._cached(key, question)
        if cached is not None:
            yield cached
            return
        retrieved = self.retriever.retrieve(question, max_chunks or self.settings.max_chunks, filters)
        scope = _ASKED_COLLECTION.set(filters.collection if filters else None)
        failures = _PROVIDER_FAILURES.set([])
        try:
            for item in self.answerer.stream(question, retrieved, threshold=confidence_threshold):
                if isinstance(item, str):
                    yield item
                    continue
                response = self._escalate(item, filters)
                self._remember(key, response)
                yield response
        finally:
            _PROVIDER_FAILURES.reset(failures)
            _ASKED_COLLECTION.reset(scope)

    # ------------------------------------------------------------------ answer cache

    def _cache_key(
        self,
        question: str,
        max_chunks: int | None,
        confidence_threshold: float | None,
        filters: SearchFilter | None,
    ) -> str | None:
        """The question's cache key, with the index version read *before* retrieval (an answer is never
        filed under a version newer than the index it was read from); None: no caching for this question
        (the cache is off, or the version cannot be read: the question then meets the store's own error)."""
        if self.answer_cache is None:
            return None
        try:
            version = self.store.index_version()
        except RagExplorerError as exc:
            log.warning("answer cache skipped: cannot read the index version: %s", exc)
            return None
        s = self.settings
        return answer_key(
            question,
            fingerprint=self._fingerprint,
            index_version=version,
            filters=filters,
            max_chunks=max_chunks or s.max_chunks,
            threshold=s.confidence_threshold if confidence_threshold is None else confidence_threshold,
        )

    def _cached(self, key: str | None, question: str) -> AskResponse | None:
        if key is None or self.answer_cache is None:
            return None
        found = self.answer_cache.get(key)
        self._count("AnswerCacheHit" if found is not None else "AnswerCacheMiss")
        return None if found is None else found.model_copy(update={"question": question})

    def _remember(self, key: str | None, response: AskResponse) -> None:
        """Cache ``response`` unless a provider failed on the way (a fallback answer is not the answer the
        configuration gives once the provider is back)."""
        if key is not None and self.answer_cache is not None and not _PROVIDER_FAILURES.get():
            self.answer_cache.put(key, response)

    def _count(self, name: str) -> None:
        if self.metrics is not None:
            self.metrics.count(name)

    def _escalate(self, response: AskResponse, filters: SearchFilter | None) -> AskResponse:
        if response.decision == "refuse":
            collection = self.settings.collection(filters.collection if filters else None)
            response.escalation = collection.escalation or self.settings.escalation
        return response

    def status(self) -> StatusResponse:
        store = self.store
        s = self.settings
        return StatusResponse(
            home=str(s.home_path),
            store_path={
                "chroma": str(s.store_path),
                "opensearch": f"{s.opensearch_url}/{s.opensearch_index}",
                "s3vectors": f"s3vectors://{s.s3vectors_bucket}/{s.s3vectors_index}",
            }[s.store],
            embedder=self.embedder.name,
            embedder_dimension=self.embedder.dimension,
            documents=store.count_documents(),
            chunks=store.count_chunks(),
            lexical_chunks=store.lexical_count(),
            health=store.health(),
        )
