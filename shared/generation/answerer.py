"""Generated answers with the extractive answer as the floor.

1. The extractive answerer judges the evidence first: below the threshold the question is refused
   without calling any LLM (no cost, nothing to hallucinate from).
2. Otherwise the provider chain answers from the numbered sources.
3. Every generated sentence is verified (:class:`~shared.generation.grounding.Verifier`); unsupported
   ones are removed. The model's refusal marker becomes ``decision="refuse"``.
4. If every provider fails, or no generated sentence survives verification, the extractive answer is
   returned, with the reasons saying why.
"""

from __future__ import annotations

from collections.abc import Iterator

from shared.answering.extractive import ExtractiveAnswerer
from shared.generation.grounding import Verifier, build_messages
from shared.generation.resilience import Failure, ProviderChain
from shared.models import AskResponse
from shared.retrieval import Retrieved


class GenerativeAnswerer:
    def __init__(self, chain: ProviderChain, *, extractive: ExtractiveAnswerer, verifier: Verifier) -> None:
        self.chain = chain
        self.extractive = extractive
        self.verifier = verifier

    def answer(
        self, question: str, retrieved: list[Retrieved], *, threshold: float | None = None
    ) -> AskResponse:
        *_, final = self.stream(question, retrieved, threshold=threshold)
        assert isinstance(final, AskResponse)
        return final

    def stream(
        self, question: str, retrieved: list[Retrieved], *, threshold: float | None = None
    ) -> Iterator[str | AskResponse]:
        """Yields the model's text as it arrives, then the verified :class:`AskResponse`. The final answer
        can be shorter than the streamed text: sentences that failed verification are removed."""
        base = self.extractive.answer(question, retrieved, threshold=threshold)
        if base.decision == "refuse":
            yield base
            return
        messages = build_messages(question, retrieved)
        text_parts: list[str] = []
        provider: str | None = None
        failures: list[Failure] = []
        for item in self.chain.stream(messages):
            if isinstance(item, str):
                text_parts.append(item)
                yield item
            else:
                provider, failures = item
        yield self._finish(question, retrieved, base, "".join(text_parts), provider, failures)

    def _finish(
        self,
        question: str,
        retrieved: list[Retrieved],
        base: AskResponse,
        text: str,
        provider: str | None,
        failures: list[Failure],
    ) -> AskResponse:
        reasons = [f.message for f in failures]
        if provider is None:
            return base.model_copy(update={"reasons": [*reasons, "every LLM provider failed", *base.reasons]})
        verified = self.verifier.verify(text, retrieved)
        if verified.refused:
            return AskResponse(
                question=question,
                decision="refuse",
                confidence=base.confidence,
                reasons=[
                    *reasons,
                    f"{provider} found no answer in the retrieved documentation",
                    *base.reasons,
                ],
                provider=provider,
            )
        if verified.answer is None:
            note = f"{provider}'s answer had no sentence supported by its sources; showing quoted sentences"
            return base.model_copy(update={"reasons": [*reasons, note, *verified.removed, *base.reasons]})
        removed = [f"removed {len(verified.removed)} unsupported sentence(s)"] if verified.removed else []
        return AskResponse(
            question=question,
            decision="answer",
            answer=verified.answer,
            confidence=base.confidence,
            reasons=[*reasons, *removed, *verified.removed, *base.reasons],
            citations=verified.citations,
            provider=provider,
        )
