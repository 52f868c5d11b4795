"""Generated answers: an LLM writes the answer from the retrieved chunks, then every sentence is checked.

Flow of :meth:`GenerativeAnswerer.answer` (and of :meth:`~GenerativeAnswerer.stream`):

1. **Gate.** The extractive answerer runs first. If the evidence is below the confidence threshold the
   question is refused exactly as the extractive answerer refuses it, and no LLM is called (no cost, nothing
   to hallucinate from). Otherwise its answer is kept as the fallback.
2. **Generate.** The provider chain gets the grounded prompt (:mod:`shared.llm.prompt`) with the retrieved
   chunks as sources ``[1]..[k]``. When every provider fails, the extractive answer is returned with the
   failures in ``reasons`` ("openai:gpt-4o-mini failed: rate_limit (429)").
3. **Refusal.** A reply that is just the refusal marker becomes ``decision="refuse"``.
4. **Verify** (:class:`~shared.answering.verify.CitationVerifier`): every sentence must cite a source
   that supports it (terms, numbers, links and code verbatim, no added negation); the others are removed
   and the removal stated in ``reasons``. The kept sentences must also address the question: at least one
   shares a topic term with it.
5. **Nothing survives** → the extractive answer (quoted sentences, grounded by construction) with the reason.
   The gate has already established that the documentation covers the question, so the failure is the
   generator's; refusing would throw away an answer the documents do support.
6. **Citations** are those the kept sentences use, renumbered ``1..n`` in order of first use, each with a
   quote: the sentence of the chunk that best matches the sentences citing it.

Streaming: :meth:`GenerativeAnswerer.stream` yields the model's raw text deltas as they arrive (nothing is
held back except while the reply could still be the bare refusal marker, which is never shown), so the
concatenated deltas equal the unverified reply. The final item is the response (``provider`` inside):
the verified answer. It differs from what was streamed when sentences were removed, citations
renumbered, the reply was a refusal, or a provider failed mid-stream (then it is the extractive answer); a
client should show the final ``response.answer`` and its citations whenever
``response.answer != "".join(deltas)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from shared.answering.extractive import ExtractiveAnswerer
from shared.answering.verify import (
    DEFAULT_EMBEDDING_THRESHOLD,
    DEFAULT_SUPPORT_THRESHOLD,
    CitationVerifier,
    addresses_question,
)
from shared.embeddings.base import Embedder
from shared.llm.base import ChatMessage
from shared.llm.prompt import REFUSAL_MARKER, build_messages, could_become_refusal, is_refusal
from shared.llm.resilience import AllProvidersFailed, ProviderChain, ProviderFailure
from shared.models import AskResponse, Chunk
from shared.retrieval import Retrieved

EXTRACTIVE = "extractive"


class GenerativeAnswerer:
    """LLM answers on top of the extractive answerer: gated, verified, and falling back to it."""

    name = "generative"

    def __init__(
        self,
        chain: ProviderChain,
        embedder: Embedder | None,
        *,
        extractive: ExtractiveAnswerer,
        support_threshold: float = DEFAULT_SUPPORT_THRESHOLD,
        embedding_threshold: float = DEFAULT_EMBEDDING_THRESHOLD,
        max_sources: int | None = None,
        max_sentences: int = 4,
        max_tokens: int = 400,
        temperature: float = 0.0,
        fallback_to_extractive: bool = True,
    ) -> None:
        self.chain = chain
        self.extractive = extractive
        self.verifier = CitationVerifier(
            embedder, support_threshold=support_threshold, embedding_threshold=embedding_threshold
        )
        self.max_sources = max_sources
        self.max_sentences = max_sentences
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.fallback_to_extractive = fallback_to_extractive

    # ------------------------------------------------------------------ public

    def answer(
        self, question: str, retrieved: list[Retrieved], *, threshold: float | None = None
    ) -> AskResponse:
        """The verified answer or a refusal; ``provider`` says what produced it (e.g.
        ``"openai:gpt-4o-mini"``, or ``"extractive"`` for the gate's refusal or a fallback)."""
        gate = self.extractive.answer(question, retrieved, threshold=threshold)
        if gate.decision == "refuse":
            return self._as(gate, EXTRACTIVE)
        sources = self._sources(retrieved)
        try:
            text, provider, failures = self.chain.complete(
                self.messages(question, sources), max_tokens=self.max_tokens, temperature=self.temperature
            )
        except AllProvidersFailed as exc:
            return self._all_failed(gate, exc)
        return self._finish(question, gate, sources, text, provider, failures)

    def stream(
        self, question: str, retrieved: list[Retrieved], *, threshold: float | None = None
    ) -> Iterator[str | AskResponse]:
        """Text deltas as the model writes them, then the verified response (see the module docstring
        for how the two relate)."""
        gate = self.extractive.answer(question, retrieved, threshold=threshold)
        if gate.decision == "refuse":
            yield self._as(gate, EXTRACTIVE)
            return
        sources = self._sources(retrieved)
        stream = self.chain.stream(
            self.messages(question, sources), max_tokens=self.max_tokens, temperature=self.temperature
        )
        held = ""
        holding = True  # while the reply may still be the bare refusal marker
        try:
            for delta in stream:
                if not holding:
                    yield delta
                    continue
                held += delta
                if not could_become_refusal(held):
                    holding = False
                    yield held
        except AllProvidersFailed as exc:
            yield self._all_failed(gate, exc)
            return
        if holding and held and not is_refusal(held):
            yield held
        assert stream.provider is not None
        yield self._finish(question, gate, sources, stream.text, stream.provider, stream.failures)

    def messages(self, question: str, sources: Sequence[Chunk]) -> list[ChatMessage]:
        return build_messages(question, sources, max_sentences=self.max_sentences)

    # ------------------------------------------------------------------ internals

    def _sources(self, retrieved: list[Retrieved]) -> list[Chunk]:
        chosen = retrieved if self.max_sources is None else retrieved[: self.max_sources]
        return [r.chunk for r in chosen]

    @staticmethod
    def _as(response: AskResponse, provider: str) -> AskResponse:
        response.provider = provider
        return response

    def _all_failed(self, gate: AskResponse, exc: AllProvidersFailed) -> AskResponse:
        what = "a provider failed mid-answer" if exc.partial_text else "every LLM provider failed"
        reasons = [f.reason for f in exc.failures]
        if not self.fallback_to_extractive:
            refused = AskResponse(
                question=gate.question,
                decision="refuse",
                confidence=gate.confidence,
                reasons=[f"no answer could be generated: {what}", *reasons, *gate.reasons],
                provider=EXTRACTIVE,
            )
            return refused
        fallback = gate.model_copy(deep=True)
        fallback.reasons = [f"answered with quoted sentences: {what}", *reasons, *gate.reasons]
        return self._as(fallback, EXTRACTIVE)

    def _finish(
        self,
        question: str,
        gate: AskResponse,
        sources: Sequence[Chunk],
        text: str,
        provider: str,
        failures: list[ProviderFailure],
    ) -> AskResponse:
        earlier = [f.reason for f in failures]
        body = text.replace(REFUSAL_MARKER, " ").strip()
        if is_refusal(text) or not body:
            why = "the sources do not contain the answer" if is_refusal(text) else "the reply was empty"
            refused = AskResponse(
                question=question,
                decision="refuse",
                confidence=gate.confidence,
                reasons=[f"{provider}: {why}", *earlier, *gate.reasons],
                provider=provider,
            )
            return refused
        result = self.verifier.verify(body, sources)
        notes = list(result.notes)
        if result.answer is not None and not addresses_question(question, result.kept):
            notes.append("the generated answer does not address the question")
            result.answer = None
        if result.answer is None:
            fallback = gate.model_copy(deep=True)
            fallback.reasons = [
                f"the answer generated by {provider} did not pass verification; answered with quoted "
                "sentences instead",
                *notes,
                *earlier,
                *gate.reasons,
            ]
            return self._as(fallback, EXTRACTIVE)
        response = AskResponse(
            question=question,
            decision="answer",
            answer=result.answer,
            confidence=gate.confidence,
            reasons=[
                f"generated by {provider}; each sentence checked against the source it cites",
                *result.notes,
                *earlier,
                *gate.reasons,
            ],
            citations=result.citations,
            provider=provider,
        )
        return response
