"""Small text utilities shared by chunking, lexical search and answering."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

# Lucene's English stop words (as bm25s and OpenSearch's `english` analyzer use) ...
LEXICAL_STOPWORDS: frozenset[str] = frozenset(
    """
    a an and are as at be but by for if in into is it no not of on or such that the their then there
    these they this to was will with
    """.split()
)
# ... and, for judging whether a question is covered, also the words that carry no topic.
QUESTION_STOPWORDS: frozenset[str] = LEXICAL_STOPWORDS | frozenset(
    """
    i me my we our you your he she him her its them what which who whom whose when where why how
    do does did doing done can could should would may might must shall have has had having am been
    being get gets got make makes use using used want need way ways best good there here so than too
    very just about above below up down out over under again once all any both each few more most
    other some own same only also from off then thing things something anything someone one ones
    please tell know explain mean means difference between vs versus possible able let lets s t
    """.split()
)

_WORD = re.compile(r"(?u)\b\w\w+\b")


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """Lower-cased word tokens of two or more characters (the same pattern BM25 indexing uses)."""
    return _WORD.findall(text.lower())


def stem_all(tokens: list[str]) -> list[str]:
    return list(_stemmer().stemWords(tokens))


def content_terms(text: str) -> set[str]:
    """Stemmed topic-bearing terms of ``text`` (question words and stop words removed)."""
    return set(content_term_words(text))


def content_term_words(text: str) -> dict[str, str]:
    """``stem -> first word`` for the topic-bearing terms of ``text`` (to show users words, not stems)."""
    kept = [w for w in words(text) if w not in QUESTION_STOPWORDS and not w.isdigit()]
    out: dict[str, str] = {}
    for stem, word in zip(stem_all(kept), kept, strict=True):
        out.setdefault(stem, word)
    return out


_SENTENCE_END = re.compile(
    r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9`*_])|\n\s*\n|\n(?=\s*(?:[-*+]|\d+[.)])\s)"
)
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "mr.", "mrs.", "dr.", "no.", "fig.", "approx.")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences (and list items / paragraphs) of ``text``, stripped."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        candidate = text[start : m.start()].rstrip()
        if candidate.lower().endswith(_ABBREVIATIONS):
            continue
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out: list[tuple[int, int]] = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out
