"""Small text utilities shared by chunking, lexical search and answering."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from shared.extras import needs_extra

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
#: Verbs and nouns of asking for help, which say nothing of the topic: a question may use them whether
#: or not the documentation does ("my backup keeps failing", "having trouble with").
GENERIC_WORDS: frozenset[str] = frozenset(
    """
    keep keeps kept trying try tried tries work works worked working problem problems issue issues
    trouble help stuck wrong right fine ok okay thing stuff guys hi hello thanks thank anyone somebody
    everything nothing still already again anymore instead actually really basically currently
    suddenly recently today yesterday tomorrow week weeks day days month months year years time times
    every always never sometimes often usually lot lots bit little much many new old good bad better
    worse fast slow quick quickly easy easily simple simply correct correctly properly automatically
    manually possible impossible supposed seem seems seemed look looks looked like go goes going went
    come comes see saw seen say says said put give take takes took start started stop stopped
    dont doesnt cant wont isnt arent didnt wasnt werent shouldnt couldnt wouldnt hasnt havent hadnt
    doesn didn isn aren wasn weren shouldn couldn wouldn hasn haven hadn im ive youre thats theres whats
    """.split()
)


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    with needs_extra("local", "stemming"):
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


def salient(word: str) -> bool:
    """Whether a question word names a topic the documentation should mention (not a stop word, a
    generic word of asking for help, a number or a fragment)."""
    w = word.lower()
    return len(w) >= 3 and not w.isdigit() and w not in QUESTION_STOPWORDS and w not in GENERIC_WORDS


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Everyday English words: the whole words of the MiniLM WordPiece vocabulary (about 22,000, built
    from Wikipedia and books), read from the model package. Empty when the package is not installed."""
    try:
        from shared.embeddings.minilm import default_model_dir

        lines = (default_model_dir() / "vocab.txt").read_text(encoding="utf-8").split("\n")
    except (OSError, ImportError):
        return frozenset()
    return frozenset(w for w in lines if len(w) > 1 and w.isalpha() and w.isascii() and w.islower())


_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_SUFFIXES = (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"))


def _known_form(word: str, common: frozenset[str]) -> bool:
    """The word, an inflection of it, or a typo of it (a letter missing, doubled or swapped) is an
    everyday word."""
    if word in common or any(
        word.endswith(suffix) and word[: -len(suffix)] + stem_end in common for suffix, stem_end in _SUFFIXES
    ):
        return True
    if len(word) < 6:  # a short word one letter away from an everyday one is usually a name of its own
        return False
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    edits = {a + b[1:] for a, b in splits if b}  # deletions
    edits |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}  # transpositions
    edits |= {a + c + b for a, b in splits for c in _ALPHABET}  # insertions
    return not edits.isdisjoint(common)


def specific(word: str) -> bool:
    """Whether a question word names something specific (a product, a format, a service: "restic",
    "QuickBooks", "sigstore") rather than everyday English, a typo of it, a number with a unit ("2tb"),
    an identifier ("django_settings_module") or a placeholder name ("mytool"). A specific word that the
    documentation never uses is good evidence that the question is about something it does not cover."""
    w = word.lower()
    if not salient(w) or not w.isalpha() or (w.startswith("my") and len(w) > 4):
        return False
    common = common_words()
    return not common or not _known_form(w, common)


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


# --------------------------------------------------------------------------- blocks

BlockKind = str  # "prose" | "code" | "list" | "table"

#: The opening (or closing) line of a fenced code block.
FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^\s{0,6}(?:[-*+•]|\d{1,3}[.)])\s+\S")
_TABLE_ROW = re.compile(r"^\s{0,3}\|")
_INDENTED = re.compile(r"^(?: {4}|\t)\S")


def split_blocks(text: str) -> list[tuple[str, int, int]]:
    """``(kind, start, end)`` character spans of the blocks of ``text``, in order.

    Kinds: ``code`` (a fenced block, fences included, or lines indented by four spaces after a blank
    line), ``list`` (consecutive list items with their continuation lines), ``table`` (lines starting
    with ``|``) and ``prose`` (a paragraph). Blank lines separate blocks, except inside a fence.
    """
    blocks: list[tuple[str, int, int]] = []
    lines = text.split("\n")
    offsets: list[int] = []
    pos = 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        start = offsets[i]
        if m := FENCE_LINE.match(line):
            marker = m.group(1)
            j = i + 1
            while j < len(lines) and not (
                lines[j].strip().startswith(marker[0] * len(marker)) and not lines[j].strip().strip(marker[0])
            ):
                j += 1
            j = min(j, len(lines) - 1)
            blocks.append(("code", start, offsets[j] + len(lines[j])))
            i = j + 1
            continue
        kind = _line_kind(line, after_blank=i == 0 or not lines[i - 1].strip())
        j = i
        while j + 1 < len(lines) and lines[j + 1].strip() and not FENCE_LINE.match(lines[j + 1]):
            nxt = _line_kind(lines[j + 1], after_blank=False)
            if (kind == "list" and nxt in ("prose", "list")) or nxt == kind:
                j += 1
            elif kind == "prose" and nxt == "list":
                break
            elif kind == "code" and lines[j + 1].startswith((" ", "\t")):
                j += 1
            else:
                break
        if kind == "list":  # a list goes on across blank lines while items (or indented text) follow
            while True:
                k = j + 1
                while k < len(lines) and not lines[k].strip():
                    k += 1
                if k < len(lines) and (_LIST_ITEM.match(lines[k]) or lines[k].startswith("  ")):
                    j = k
                    while j + 1 < len(lines) and lines[j + 1].strip() and not FENCE_LINE.match(lines[j + 1]):
                        j += 1
                else:
                    break
        blocks.append((kind, start, offsets[j] + len(lines[j])))
        i = j + 1
    return blocks


def _line_kind(line: str, *, after_blank: bool) -> BlockKind:
    if _TABLE_ROW.match(line):
        return "table"
    if _LIST_ITEM.match(line):
        return "list"
    if after_blank and _INDENTED.match(line):
        return "code"
    return "prose"


def introduces_block(sentence: str) -> bool:
    """Whether a sentence leads into what follows it ("run the following:", "for example:")."""
    return sentence.rstrip().endswith(":")


# Terminal control: escape sequences (CSI ``ESC [ ... final``, OSC/DCS/APC/PM ``ESC ] ... BEL|ST``, and
# two-character ``ESC x``), the C0 and C1 control characters but tab and newline (a carriage return can
# overwrite a printed line), and the bidirectional overrides that reorder what a line appears to say.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).{0,1024}?(?:\x07|\x1b\\|\x9c)"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|\x1b[ -/]*[0-~]?",
    re.DOTALL,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to print to a terminal: no escape sequences or control characters but tab and newline.

    File names and document text come from whoever wrote the documents; printed raw, they can clear the
    screen, fake output lines or set the window title.
    """
    if text.isprintable():
        return text
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text))


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 document"``, ``"2 documents"``; ``many`` for words that do not just take an s."""
    return f"{n} {word if n == 1 else many or word + 's'}"
