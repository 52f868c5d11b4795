"""Extractive answers: quoted, cited sentences from the retrieved chunks — or an honest refusal.

Confidence is a logistic function of three pieces of evidence, each in [0, 1]:

* ``passage``: the best cosine similarity between the question and a retrieved chunk (dense leg);
* ``sentence``: the best cosine similarity between the question and one sentence of those chunks;
* ``coverage``: the largest share of the question's topic terms that occur together in one retrieved
  chunk (a question about "Netflix passwords" against a manual that never says "Netflix" is out of
  scope, however close its embedding lands).

The weights were fitted on the development set in ``bench/devset`` (answerable Python-manual questions
against clearly out-of-scope ones); ``bench/devset/tune_threshold.py`` refits them and reports how well
the confidence separates the two groups.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from shared.embeddings.base import Embedder
from shared.models import AskResponse, Citation
from shared.retrieval import Retrieved
from shared.text import content_term_words, content_terms, split_sentences


@dataclass(frozen=True)
class ConfidenceModel:
    # fitted by bench/devset/tune_threshold.py (L2 0.1); see bench/RESULTS.md for how well it separates
    bias: float = -8.54
    passage: float = 8.59
    sentence: float = 6.59
    coverage: float = 4.33

    def __call__(self, passage: float, sentence: float, coverage: float) -> float:
        z = self.bias + self.passage * passage + self.sentence * sentence + self.coverage * coverage
        return 1.0 / (1.0 + math.exp(-z))


DEFAULT_CONFIDENCE = ConfidenceModel()

_MIN_WORDS = 3
_MAX_QUOTE_CHARS = 400
_WS = re.compile(r"\s+")
_LIST_MARKER = re.compile(r"^(?:[-*+•]|\d{1,3}[.)])\s+")
_NEAR_DUPLICATE = 0.92  # cosine above which two sentences say the same thing


@dataclass
class _Sentence:
    text: str
    rank: int  # rank of its chunk in the retrieval
    order: int  # position within the chunk
    item: Retrieved
    cosine: float = 0.0
    overlap: float = 0.0
    vector: np.ndarray | None = None

    @property
    def score(self) -> float:
        return self.cosine + 0.25 * self.overlap - 0.02 * self.rank


@dataclass
class Evidence:
    passage: float
    sentence: float
    coverage: float
    missing_terms: list[str]


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(
        self,
        embedder: Embedder,
        *,
        max_sentences: int = 3,
        threshold: float = 0.55,
        confidence: ConfidenceModel = DEFAULT_CONFIDENCE,
    ) -> None:
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.threshold = threshold
        self.confidence = confidence

    def assess(self, question: str, retrieved: list[Retrieved]) -> tuple[Evidence, list[_Sentence]]:
        """Score the candidate sentences and gather the evidence the confidence is computed from."""
        qvec = self.embedder.embed_query(question)
        sentences = self._sentences(retrieved)
        q_terms = content_terms(question)
        if sentences:
            vecs = self.embedder.embed_documents([s.text for s in sentences])
            cosines = vecs @ qvec
            for s, vec, cos in zip(sentences, vecs, cosines, strict=True):
                s.vector = vec
                s.cosine = float(cos)
                if q_terms:
                    s.overlap = len(q_terms & content_terms(s.text)) / len(q_terms)
        return self._evidence(question, qvec, q_terms, retrieved, sentences), sentences

    def answer(
        self, question: str, retrieved: list[Retrieved], *, threshold: float | None = None
    ) -> AskResponse:
        threshold = self.threshold if threshold is None else threshold
        if not retrieved:
            return AskResponse(
                question=question,
                decision="refuse",
                confidence=0.0,
                reasons=["nothing in the indexed documentation matches the question"],
            )
        evidence, sentences = self.assess(question, retrieved)
        conf = self.confidence(evidence.passage, evidence.sentence, evidence.coverage)
        reasons = self._reasons(evidence)
        if conf < threshold or not sentences:
            reasons.insert(0, f"confidence {conf:.2f} is below the threshold {threshold:.2f}")
            return AskResponse(
                question=question, decision="refuse", confidence=round(conf, 4), reasons=reasons
            )
        answer, citations = self._compose(sentences)
        return AskResponse(
            question=question,
            decision="answer",
            answer=answer,
            confidence=round(conf, 4),
            reasons=reasons,
            citations=citations,
        )

    # ------------------------------------------------------------------ evidence

    def _sentences(self, retrieved: list[Retrieved]) -> list[_Sentence]:
        out: list[_Sentence] = []
        seen: set[str] = set()
        for rank, item in enumerate(retrieved):
            text = item.chunk.text
            for order, (s, e) in enumerate(split_sentences(text)):
                sentence = _LIST_MARKER.sub("", _WS.sub(" ", text[s:e]).strip())
                key = sentence.lower()
                if len(sentence.split()) < _MIN_WORDS or key in seen:
                    continue
                seen.add(key)
                out.append(_Sentence(text=sentence, rank=rank, order=order, item=item))
        return out

    def _evidence(
        self,
        question: str,
        qvec: np.ndarray,
        q_terms: set[str],
        retrieved: list[Retrieved],
        sentences: list[_Sentence],
    ) -> Evidence:
        passage = max((r.dense_score for r in retrieved if r.dense_score is not None), default=None)
        if passage is None:  # the dense leg found none of them: measure the top chunks directly
            vecs = self.embedder.embed_documents([r.chunk.text for r in retrieved[:3]])
            passage = float(np.max(vecs @ qvec))
        sentence = max((s.cosine for s in sentences), default=0.0)
        # coverage: the share of the question's terms found together in one retrieved passage (terms
        # scattered over unrelated passages, e.g. "capital" here and "Australia" there, don't count)
        found: set[str] = set()
        best_together = 0
        for r in retrieved:
            terms = content_terms(" ".join([r.chunk.title or "", *r.chunk.heading_path, r.chunk.text]))
            found |= terms
            best_together = max(best_together, len(q_terms & terms))
        shown = content_term_words(question)
        missing = sorted(shown.get(t, t) for t in q_terms - found)
        coverage = best_together / len(q_terms) if q_terms else 0.5
        return Evidence(
            passage=max(0.0, float(passage)),
            sentence=max(0.0, sentence),
            coverage=coverage,
            missing_terms=missing,
        )

    @staticmethod
    def _reasons(ev: Evidence) -> list[str]:
        reasons = [
            f"best passage similarity {ev.passage:.2f}, best sentence similarity {ev.sentence:.2f}",
            f"{ev.coverage:.0%} of the question's key terms occur in the retrieved passages",
        ]
        if ev.missing_terms:
            reasons.append("not found in the documentation: " + ", ".join(ev.missing_terms[:8]))
        return reasons

    # ------------------------------------------------------------------ composing

    def _compose(self, sentences: list[_Sentence]) -> tuple[str, list[Citation]]:
        ranked = sorted(sentences, key=lambda s: -s.score)
        best = ranked[0].score
        chosen: list[_Sentence] = []
        for s in ranked:
            if len(chosen) == self.max_sentences or s.score < best - 0.12:
                break
            if any(_similar(s, c) for c in chosen):
                continue
            chosen.append(s)
        chosen.sort(key=lambda s: (s.rank, s.order))
        numbers: dict[str, int] = {}
        citations: list[Citation] = []
        parts: list[str] = []
        for s in chosen:
            chunk = s.item.chunk
            if chunk.chunk_id not in numbers:
                numbers[chunk.chunk_id] = len(numbers) + 1
                citations.append(
                    Citation(
                        n=numbers[chunk.chunk_id],
                        chunk_id=chunk.chunk_id,
                        source=chunk.source,
                        quote="",
                        title=chunk.title,
                        page=chunk.page,
                    )
                )
            cit = citations[numbers[chunk.chunk_id] - 1]
            quote = s.text if len(s.text) <= _MAX_QUOTE_CHARS else s.text[: _MAX_QUOTE_CHARS - 1] + "…"
            cit.quote = quote if not cit.quote else f"{cit.quote} … {quote}"
            parts.append(f"{s.text} [{numbers[chunk.chunk_id]}]")
        return " ".join(parts), citations


def _similar(a: _Sentence, b: _Sentence) -> bool:
    if a.vector is None or b.vector is None:
        return False
    return float(a.vector @ b.vector) >= _NEAR_DUPLICATE
