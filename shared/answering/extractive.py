"""Extractive answers: quoted, cited passages from the retrieved chunks — or an honest refusal.

The confidence is the estimated probability that the answer is right (answered, with its first citation
on a page that answers the question). It is a logistic function of six pieces of evidence:

* ``passage``: the best cosine similarity between the question and a retrieved chunk (dense leg);
* ``sentence``: the best cosine similarity between the question and one sentence of those chunks;
* ``coverage``: the largest share of the question's topic terms that occur together in one retrieved
  chunk, title and headings included;
* ``unknown``: specific question terms (product and service names, not everyday words; see
  :func:`shared.text.specific`) that the whole index never uses, as the store's vocabulary says: a
  question about "restic" to Borg's manual is about something the manual does not cover;
* ``agree``: whether the top chunk is in the first five of both the dense and the BM25 leg;
* ``focus``: the share of the next four chunks that come from the top chunk's page.

The weights are fitted by ``bench/quality/run.py`` on five documentation sets of different shapes, each
set weighted equally; the bench reports every set scored by a model fitted on the *other* sets, so the
figures in bench/RESULTS.md are for documentation the model was not fitted on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from shared.answering.compose import Unit, choose, render, units_of
from shared.answering.literals import link_hosts
from shared.embeddings.base import Embedder
from shared.models import AskResponse
from shared.retrieval import Retrieved
from shared.settings import DEFAULT_CONFIDENCE_THRESHOLD
from shared.text import content_term_words, content_terms, specific


@dataclass
class Evidence:
    passage: float
    sentence: float
    coverage: float
    missing_terms: list[str]  # question terms in none of the retrieved passages
    covered_terms: list[str] = field(default_factory=list)  # ... and those in at least one
    unknown_terms: list[str] = field(default_factory=list)  # ... and nowhere in the whole index
    question_terms: int = 0
    agree: float = 0.0  # 1.0 when the top passage is in the first five of both retrieval legs
    focus: float = 0.0  # share of the next four passages that come from the top passage's document

    def features(self) -> dict[str, float]:
        """What the confidence is computed from, each roughly in [0, 1]."""
        return {
            "passage": self.passage,
            "sentence": self.sentence,
            "coverage": self.coverage,
            "unknown": min(len(self.unknown_terms), 2) / 2,
            "agree": self.agree,
            "focus": self.focus,
        }


@dataclass(frozen=True)
class ConfidenceModel:
    """A logistic function of the evidence's features: the probability that the answer is right.

    Fitted by ``bench/quality/run.py`` on several documentation sets (see bench/RESULTS.md for how it
    does on the sets it was not fitted on).
    """

    bias: float = -3.745
    weights: tuple[tuple[str, float], ...] = (
        ("passage", 1.837),
        ("sentence", 2.38),
        ("coverage", 2.015),
        ("unknown", -2.118),
        ("agree", 0.887),
        ("focus", 0.891),
    )
    #: Below this best-passage similarity nothing in the documentation is about the question (no correct
    #: answer on the quality sets had less; unrelated questions land at 0.1-0.35): the confidence is then
    #: capped at the similarity itself, as a linear model cannot say "nothing else matters".
    floor: float = 0.30

    def __call__(self, evidence: Evidence) -> float:
        return self.score(evidence.features())

    def score(self, features: Mapping[str, float]) -> float:
        z = self.bias + sum(w * features[name] for name, w in self.weights)
        p = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
        return min(p, features["passage"]) if features["passage"] < self.floor else p


DEFAULT_CONFIDENCE = ConfidenceModel()

_LEGS = ("dense", "lexical")
_AGREE_RANK = 5
_FOCUS_DEPTH = 5  # the top passage and the four after it (fewer retrieved chunks give a lower focus)

#: Looks up how many indexed chunks hold each term (a store's ``term_counts``).
Vocabulary = Callable[[Sequence[str]], dict[str, int]]


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(
        self,
        embedder: Embedder,
        *,
        max_sentences: int = 3,
        threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
        confidence: ConfidenceModel = DEFAULT_CONFIDENCE,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        self.embedder = embedder
        self.vocabulary = vocabulary
        self.max_sentences = max_sentences
        self.threshold = threshold
        self.confidence = confidence

    def assess(self, question: str, retrieved: list[Retrieved]) -> tuple[Evidence, list[Unit]]:
        """Score the candidate sentences and gather the evidence the confidence is computed from."""
        qvec = self.embedder.embed_query(question)
        sentences = units_of(retrieved)
        shown = content_term_words(question)  # stem -> the word the question used
        q_terms = set(shown)
        if sentences:
            vecs = self.embedder.embed_documents([s.text for s in sentences])
            cosines = vecs @ qvec
            for s, vec, cos in zip(sentences, vecs, cosines, strict=True):
                s.vector = vec
                s.cosine = float(cos)
                if q_terms:
                    s.overlap = len(q_terms & content_terms(s.text)) / len(q_terms)
        return self._evidence(qvec, shown, retrieved, sentences), sentences

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
        conf = self.confidence(evidence)
        reasons = self._reasons(evidence)
        if conf < threshold or not sentences:
            reasons.insert(0, f"confidence {conf:.2f} is below the threshold {threshold:.2f}")
            return AskResponse(
                question=question, decision="refuse", confidence=round(conf, 4), reasons=reasons
            )
        chosen = choose(self._without_lone_links(sentences), self.max_sentences)
        if not chosen:
            reasons.insert(0, "no passage of the retrieved documentation can be quoted on its own")
            return AskResponse(
                question=question, decision="refuse", confidence=round(conf, 4), reasons=reasons
            )
        answer, citations = render(chosen)
        if evidence.unknown_terms:  # say which part of the question is covered, and which is not
            covered = evidence.covered_terms
            unknown = ", ".join(f"'{w}'" for w in evidence.unknown_terms[:8])
            part = f"covers {', '.join(repr(w) for w in covered[:8])} but " if covered else ""
            reasons.insert(
                0, f"answers only part of the question: the documentation {part}never mentions {unknown}"
            )
        return AskResponse(
            question=question,
            decision="answer",
            answer=answer,
            confidence=round(conf, 4),
            reasons=reasons,
            citations=citations,
        )

    def _without_lone_links(self, units: list[Unit]) -> list[Unit]:
        """Units that send the reader to a host no other indexed chunk mentions are not quoted: a link
        planted in one page ("verify your account at https://evil.example") is the typical injection,
        while a documentation set names its real sites, addresses and mirrors on several pages."""
        if self.vocabulary is None:
            return units
        hosts = {id(u): link_hosts(u.text) for u in units}
        wanted = sorted(set().union(*hosts.values()))
        if not wanted:
            return units
        counts = self.vocabulary(wanted)
        return [u for u in units if all(counts.get(h, 0) > 1 for h in hosts[id(u)])]

    def stream(
        self, question: str, retrieved: list[Retrieved], *, threshold: float | None = None
    ) -> Iterator[str | AskResponse]:
        """Quoted answers are not generated: the whole response, at once."""
        yield self.answer(question, retrieved, threshold=threshold)

    # ------------------------------------------------------------------ evidence

    def _evidence(
        self, qvec: np.ndarray, shown: dict[str, str], retrieved: list[Retrieved], sentences: list[Unit]
    ) -> Evidence:
        q_terms = set(shown)
        top = retrieved[0].chunk.source
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
        missing = sorted(shown[t] for t in q_terms - found)
        coverage = best_together / len(q_terms) if q_terms else 0.5
        return Evidence(
            passage=max(0.0, float(passage)),
            sentence=max(0.0, sentence),
            coverage=coverage,
            missing_terms=missing,
            covered_terms=[w for t, w in shown.items() if t in found],
            unknown_terms=self._unknown(missing),
            question_terms=len(q_terms),
            agree=float(all(retrieved[0].ranks.get(leg, _AGREE_RANK + 1) <= _AGREE_RANK for leg in _LEGS)),
            focus=sum(r.chunk.source == top for r in retrieved[1:_FOCUS_DEPTH]) / (_FOCUS_DEPTH - 1),
        )

    def _unknown(self, missing: list[str]) -> list[str]:
        """The question's topic terms that the whole documentation never uses (only terms missing from
        the retrieved passages can be: the index is asked about those alone)."""
        if self.vocabulary is None or not missing:
            return []
        counts = self.vocabulary([w for w in missing if specific(w)])
        return [w for w, n in counts.items() if n == 0]

    @staticmethod
    def _reasons(ev: Evidence) -> list[str]:
        reasons = [
            f"best passage similarity {ev.passage:.2f}, best sentence similarity {ev.sentence:.2f}",
            f"{ev.coverage:.0%} of the question's key terms occur in the retrieved passages",
        ]
        if ev.unknown_terms:
            words = ", ".join(f"'{w}'" for w in ev.unknown_terms[:8])
            reasons.append(f"the documentation never mentions {words}")
        others = [w for w in ev.missing_terms if w not in ev.unknown_terms]
        if others:
            reasons.append("not in the retrieved passages: " + ", ".join(others[:8]))
        return reasons
