"""The exact things an answer can point a reader to: links, e-mail addresses, domains, file names and
code spans, and whether a sentence is negated.

A verifier that counts shared words lets an injected instruction through: "confirm at
https://evil.example/verify [3]" shares the cited chunk's words, and so does "Never delete the folder"
when the source says "Delete the folder". These literals must appear verbatim in what is cited, and a
negation must be in the source sentence the claim restates. See SECURITY.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shared.text import content_terms, split_sentences

_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>()\[\]{}\"'`]+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# a dotted name with letters in its last part: example.com, docs.example.co.uk, settings.json
_DOTTED = re.compile(r"(?<![\w@/.-])(?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]{1,}(?![\w@-])")
_CODE_SPAN = re.compile(r"`([^`\n]{1,200})`")
_TRAILING = ".,;:!?)]}'\""
# "e.g", "i.e" and friends look dotted but are prose
_PROSE_DOTS = frozenset({"e.g", "i.e", "etc", "vs", "cf", "a.m", "p.m"})
_NEGATION = re.compile(
    r"\b(?:not|never|no|none|nothing|nor|cannot|without|n't|"
    r"don't|doesn't|didn't|won't|can't|isn't|aren't|wasn't|weren't|shouldn't|mustn't|"
    r"dont|doesnt|cant|wont|shouldnt)\b|n't\b",
    re.IGNORECASE,
)


def links(text: str) -> list[str]:
    """URLs and e-mail addresses in ``text`` (a reader could follow them)."""
    return [m.group(0).rstrip(_TRAILING) for m in _URL.finditer(text)] + _EMAIL.findall(text)


def link_hosts(text: str) -> set[str]:
    """The hosts that the links and e-mail addresses of ``text`` lead to (lower case)."""
    hosts: set[str] = set()
    for link in links(text):
        rest = link.split("://", 1)[1] if "://" in link else link.rsplit("@", 1)[-1]
        host = rest.split("/", 1)[0].split("@")[-1].split(":")[0].lower()
        if host:
            hosts.add(host)
    return hosts


def literals(text: str) -> set[str]:
    """Links, e-mail addresses, dotted names (domains, file names) and code spans, as written."""
    found = set(links(text))
    without_links = _EMAIL.sub(" ", _URL.sub(" ", text))
    for m in _DOTTED.finditer(without_links):
        name = m.group(0).rstrip(_TRAILING)
        if name.lower() not in _PROSE_DOTS and not name.replace(".", "").isdigit():
            found.add(name)
    found.update(span.strip() for span in _CODE_SPAN.findall(text) if span.strip())
    return found


def missing_literals(text: str, sources: Iterable[str]) -> list[str]:
    """The literals of ``text`` that appear in none of ``sources`` (compared without case)."""
    haystack = "\n".join(sources).lower()
    return sorted(lit for lit in literals(text) if lit.lower() not in haystack)


def negated(text: str) -> bool:
    return bool(_NEGATION.search(text.replace("’", "'")))


def negation_added(claim: str, sources: Iterable[str]) -> bool:
    """``claim`` is negated but the source sentence it restates (the one sharing most of its content
    terms) is not: "Never delete the folder" from "Delete the folder"."""
    if not negated(claim):
        return False
    terms = content_terms(claim)
    best, best_overlap = "", -1
    for text in sources:
        for s, e in split_sentences(text):
            sentence = text[s:e]
            overlap = len(terms & content_terms(sentence))
            if overlap > best_overlap:
                best, best_overlap = sentence, overlap
    return not negated(best)
