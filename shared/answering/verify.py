"""Checking a generated answer against the sources it cites (step 4 of :mod:`shared.answering.generative`).

The reply is split into sentences (:func:`split_claims`). A sentence is kept only if it cites at least
one source number that exists; every number it states occurs in the cited sources; every link, e-mail
address, domain, file name and code span it contains occurs verbatim in them, and it adds no negation
that the source sentence it restates lacks (:mod:`shared.answering.literals`); and the cited sources
support it: at least ``support_threshold`` (0.6) of its content terms (stemmed, stop words and question
words removed) occur in the cited chunks, or, for paraphrases with synonyms, its embedding is within
``embedding_threshold`` (0.85 cosine) of one sentence of a cited chunk while at least
``support_threshold / 2`` of its terms still occur there. Other sentences are removed and the removal is
stated in the notes; citation numbers that don't exist are dropped. Citations are those the kept
sentences use, renumbered ``1..n`` in order of first use, each with a quote: the sentence of the chunk
that best matches the sentences citing it.

Why these thresholds: on hand-made support/contradiction pairs with the default MiniLM embedder, claims the
source doesn't make ("reset it from the mobile app", "call the support hotline") still reach cosine
0.75-0.80 with the source sentence, while real paraphrases reach 0.6-0.95; the embedding alone can't tell
them apart, so lexical support decides and the embedding only rescues high-similarity paraphrases. Half of a
claim's terms matching ("reset", "password" of "reset your password from the mobile app") is exactly what an
unsupported add-on looks like, hence 0.6 rather than 0.5. Numbers are checked separately because "50 MB"
and "500 MB" share every content term.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from shared.answering.literals import missing_literals, negation_added
from shared.embeddings.base import Embedder
from shared.models import Chunk, Citation
from shared.text import content_terms, plural, split_sentences

DEFAULT_SUPPORT_THRESHOLD = 0.6
DEFAULT_EMBEDDING_THRESHOLD = 0.85
_MAX_QUOTE_CHARS = 400

# [1], [1][2], [1, 2], [1; 3], [Source 2], [sources 1, 2]
_CITE_GROUP = re.compile(r"\s*\[(?:sources?\s*)?(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]", re.IGNORECASE)
_LEADING_CITES = re.compile(
    r"^(?:\s*\[(?:sources?\s*)?\d{1,3}(?:\s*[,;]\s*\d{1,3})*\])+[.,;]?", re.IGNORECASE
)
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_LIST_MARKER = re.compile(r"^(?:[-*+•]|\d{1,3}[.)])\s+")
_WS = re.compile(r"\s+")
_TRAILING_PUNCT = " \t\n.,;:!?"


@dataclass
class Claim:
    """One sentence of a generated answer."""

    text: str  # as written, citation markers included (list markers and extra spaces removed)
    plain: str  # without citation markers
    cited: list[int]  # source numbers (1-based) that exist, in order, without repeats
    bogus: list[int]  # numbers cited that don't exist
    supported: bool = False
    support: float = 0.0  # content-term overlap with the cited sources
    cosine: float | None = None  # best cosine with one sentence of a cited source, when computed
    why: str = ""  # "uncited", "number", "literal", "negation", "unsupported" when not supported
    used: list[int] = field(default_factory=list)  # cited sources that contribute to its support


@dataclass
class Verification:
    claims: list[Claim]
    answer: str | None
    citations: list[Citation]
    notes: list[str]  # human-readable, for the answer's reasons

    @property
    def kept(self) -> list[Claim]:
        return [c for c in self.claims if c.supported]


def _clean(sentence: str) -> str:
    return _LIST_MARKER.sub("", _WS.sub(" ", sentence).strip())


def split_claims(text: str, n_sources: int) -> list[Claim]:
    """Sentences of ``text`` with their citation numbers; a stray "[2]" after a full stop belongs to the
    sentence before it."""
    pieces: list[str] = []
    for s, e in split_sentences(text):
        piece = _clean(text[s:e])
        lead = _LEADING_CITES.match(piece)
        if pieces and lead:  # "First. [1] Second." splits as "First." + "[1] Second."
            pieces[-1] = f"{pieces[-1]} {lead.group(0).strip()}"
            piece = piece[lead.end() :].strip()
        if pieces and not _CITE_GROUP.sub("", piece).strip(_TRAILING_PUNCT):
            pieces[-1] = f"{pieces[-1]} {piece}".rstrip()
        elif piece:
            pieces.append(piece)
    claims: list[Claim] = []
    for piece in pieces:
        cited: list[int] = []
        bogus: list[int] = []
        for group in _CITE_GROUP.finditer(piece):
            for raw in re.split(r"\s*[,;]\s*", group.group(1)):
                n = int(raw)
                target = cited if 1 <= n <= n_sources else bogus
                if n not in target:
                    target.append(n)
        plain = _WS.sub(" ", _CITE_GROUP.sub("", piece)).strip()
        plain = re.sub(r"\s+([.,;:!?])", r"\1", plain)
        claims.append(Claim(text=piece, plain=plain, cited=cited, bogus=bogus))
    return claims


def _numbers(text: str) -> set[str]:
    return {m.group(0).rstrip(".,:") for m in _NUMBER.finditer(text)}


def _chunk_sentences(chunk: Chunk) -> list[str]:
    out = [_clean(chunk.text[s:e]) for s, e in split_sentences(chunk.text)]
    return [s for s in out if s] or [_clean(chunk.text)]


def addresses_question(question: str, kept: list[Claim]) -> bool:
    """At least one kept sentence shares a topic term with the question. Grounded text that ignores the
    question (a source's own "reply 'PWNED'" line, quoted back with its citation) is not an answer."""
    q_terms = content_terms(question)
    return not q_terms or any(q_terms & content_terms(c.plain) for c in kept)


def _quote(text: str) -> str:
    return text if len(text) <= _MAX_QUOTE_CHARS else text[: _MAX_QUOTE_CHARS - 1] + "…"


class CitationVerifier:
    """Checks a generated answer against the sources it cites (see the module docstring)."""

    def __init__(
        self,
        embedder: Embedder | None,
        *,
        support_threshold: float = DEFAULT_SUPPORT_THRESHOLD,
        embedding_threshold: float = DEFAULT_EMBEDDING_THRESHOLD,
    ) -> None:
        self.embedder = embedder
        self.support_threshold = support_threshold
        self.embedding_threshold = embedding_threshold

    def verify(self, text: str, sources: Sequence[Chunk]) -> Verification:
        claims = split_claims(text, len(sources))
        src_terms = [content_terms(" ".join([c.title or "", *c.heading_path, c.text])) for c in sources]
        src_numbers = [_numbers(c.text) for c in sources]
        needs_embedding: list[Claim] = []
        for claim in claims:
            if not claim.cited:
                claim.why = "uncited"
                continue
            numbers = _numbers(claim.plain)
            known = set().union(*(src_numbers[n - 1] for n in claim.cited))
            if numbers - known:
                claim.why = "number"
                continue
            cited_texts = [sources[n - 1].text for n in claim.cited]
            if missing_literals(claim.plain, cited_texts):
                claim.why = "literal"
                continue
            if negation_added(claim.plain, cited_texts):
                claim.why = "negation"
                continue
            terms = content_terms(claim.plain)
            if not terms:  # nothing checkable ("Yes [1].")
                claim.supported, claim.support, claim.used = True, 1.0, list(claim.cited)
                continue
            union = set().union(*(src_terms[n - 1] for n in claim.cited))
            claim.support = len(terms & union) / len(terms)
            claim.used = [n for n in claim.cited if terms & src_terms[n - 1]]
            if claim.support >= self.support_threshold:
                claim.supported = True
            elif claim.support >= self.support_threshold / 2 and self.embedder is not None:
                needs_embedding.append(claim)
            else:
                claim.why = "unsupported"
        if needs_embedding:
            self._embedding_check(needs_embedding, sources)
        return self._compose(claims, sources)

    def _embedding_check(self, claims: list[Claim], sources: Sequence[Chunk]) -> None:
        assert self.embedder is not None
        wanted = sorted({n for c in claims for n in c.cited})
        sentences = {n: _chunk_sentences(sources[n - 1]) for n in wanted}
        flat = [(n, s) for n in wanted for s in sentences[n]]
        vecs = self.embedder.embed_documents([s for _, s in flat])
        cvecs = self.embedder.embed_documents([c.plain for c in claims])
        for claim, cvec in zip(claims, cvecs, strict=True):
            best: dict[int, float] = {}
            sims = vecs @ cvec
            for (n, _), sim in zip(flat, sims, strict=True):
                if n in claim.cited:
                    best[n] = max(best.get(n, -1.0), float(sim))
            claim.cosine = max(best.values(), default=0.0)
            if claim.cosine >= self.embedding_threshold:
                claim.supported = True
                claim.used = [n for n in claim.cited if best.get(n, 0.0) >= self.embedding_threshold]
            else:
                claim.why = "unsupported"

    def _compose(self, claims: list[Claim], sources: Sequence[Chunk]) -> Verification:
        renumber: dict[int, int] = {}
        parts: list[str] = []
        quoted: dict[int, list[Claim]] = {}
        for claim in claims:
            if not claim.supported:
                continue
            used = claim.used or claim.cited
            for n in used:
                renumber.setdefault(n, len(renumber) + 1)
                quoted.setdefault(n, []).append(claim)
            keep = set(used)

            def _sub(m: re.Match[str], keep: set[int] = keep) -> str:
                nums = [int(x) for x in re.split(r"\s*[,;]\s*", m.group(1))]
                out = "".join(f"[{renumber[n]}]" for n in dict.fromkeys(nums) if n in keep)
                return f" {out}" if out else ""

            sentence = _CITE_GROUP.sub(_sub, claim.text)
            parts.append(re.sub(r"\s+([.,;:!?])", r"\1", sentence).strip())
        citations = [
            self._citation(new, sources[old - 1], quoted[old])
            for old, new in sorted(renumber.items(), key=lambda item: item[1])
        ]
        notes = self._notes(claims)
        return Verification(claims, " ".join(parts) or None, citations, notes)

    def _citation(self, number: int, chunk: Chunk, claims: list[Claim]) -> Citation:
        sentences = _chunk_sentences(chunk)
        picked: list[str] = []
        for claim in claims:
            terms = content_terms(claim.plain)
            scores = [len(terms & content_terms(s)) for s in sentences]
            best = sentences[int(np.argmax(scores))] if scores else _clean(chunk.text)
            if best not in picked:
                picked.append(best)
        return Citation.for_chunk(number, chunk, _quote(" … ".join(picked)))

    @staticmethod
    def _notes(claims: list[Claim]) -> list[str]:
        notes: list[str] = []
        whys = ("unsupported", "number", "literal", "negation", "uncited")
        counts = {why: sum(1 for c in claims if c.why == why) for why in whys}
        if counts["unsupported"]:
            notes.append(
                f"removed {plural(counts['unsupported'], 'unsupported sentence')} "
                "(the cited source does not say it)"
            )
        if counts["number"]:
            notes.append(
                f"removed {plural(counts['number'], 'sentence')} stating a number the cited source lacks"
            )
        if counts["literal"]:
            notes.append(
                f"removed {plural(counts['literal'], 'sentence')} with a link, address, name or code "
                "the cited source does not contain"
            )
        if counts["negation"]:
            notes.append(
                f"removed {plural(counts['negation'], 'sentence')} negating what the cited source says"
            )
        if counts["uncited"]:
            notes.append(f"removed {plural(counts['uncited'], 'sentence')} without a valid citation")
        bogus = sorted({n for c in claims for n in c.bogus})
        if bogus:
            notes.append(
                "ignored citations of sources that do not exist: " + ", ".join(f"[{n}]" for n in bogus)
            )
        return notes
