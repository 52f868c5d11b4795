"""Composing an extractive answer: the passage that does the job, quoted verbatim, with its citations.

Candidate units are the sentences of a chunk's paragraphs and the items of its lists; code blocks and
tables are never split into sentences. A unit that introduces a block ("run the following:", "for
example:") carries that block with it, verbatim, in a fenced block; a lead-in whose block is not in the
chunk is never quoted, so an answer never ends on a dangling colon. The best unit is extended with the
sentences next to it in the same chunk while they stay relevant (one passage reads better than scattered
sentences); a unit from elsewhere is added only when it is nearly as good. Prose is capped at about
:data:`MAX_PROSE_WORDS` words; blocks come on top.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from shared.models import Citation
from shared.retrieval import Retrieved
from shared.text import FENCE_LINE, introduces_block, split_blocks, split_sentences

MAX_PROSE_WORDS = 120
MAX_BLOCK_LINES = 30
_MIN_WORDS = 3
_MAX_QUOTE_CHARS = 400
_WS = re.compile(r"\s+")
_LIST_MARKER = re.compile(r"^(?:[-*+•]|\d{1,3}[.)])\s+")
_LEADS_IN = re.compile(r"\b(?:following|for example|for instance|as follows|like this|e\.g\.)", re.I)
#: How much a unit loses per rank of its chunk: the passage comes from the best-ranked chunk unless another
#: chunk holds a clearly better sentence (measured on the bench/quality sets: the retrieval's own order is
#: the better guide to the right page than sentence similarity alone)
_RANK_PENALTY = 0.1
_NEAR_DUPLICATE = 0.92  # cosine above which two sentences say the same thing
_NEIGHBOUR_MARGIN = 0.15  # a neighbouring sentence joins the passage if it scores within this of the best
_ELSEWHERE_MARGIN = 0.05  # a sentence from elsewhere joins only if it scores within this of the best


@dataclass
class Unit:
    """A quotable sentence or list item, with the block it introduces (if any)."""

    text: str
    rank: int  # rank of its chunk in the retrieval
    order: int  # position within the chunk
    item: Retrieved
    block: str | None = None  # a code block / list / table it leads into, verbatim
    cosine: float = 0.0
    overlap: float = 0.0
    vector: np.ndarray | None = None

    @property
    def score(self) -> float:
        return self.cosine + 0.25 * self.overlap - _RANK_PENALTY * self.rank

    @property
    def dangling(self) -> bool:
        """A lead-in whose block is not here: quoting it alone would end on a colon."""
        return introduces_block(self.text) and self.block is None

    @property
    def words(self) -> int:
        return len(self.text.split())


def _units_in(text: str) -> Iterator[tuple[str, int, str | None]]:
    """The quotable units of one chunk's text: ``(sentence, order, block it leads into)``."""
    blocks = split_blocks(text)
    order = 0
    for b, (kind, start, end) in enumerate(blocks):
        if kind in ("code", "table"):
            continue
        body = text[start:end]
        spans = split_sentences(body)
        following = _block_after(text, blocks, b)
        for i, (s, e) in enumerate(spans):
            sentence = _LIST_MARKER.sub("", _WS.sub(" ", body[s:e]).strip())
            order += 1
            if len(sentence.split()) < _MIN_WORDS:
                continue
            block = None
            leads_in = introduces_block(sentence) or bool(_LEADS_IN.search(sentence))
            if i == len(spans) - 1 and kind == "prose" and following is not None and leads_in:
                block = following
            yield sentence, order, block


def unit_texts(text: str) -> list[str]:
    """The sentences answering may quote from a chunk: what ingest embeds ahead of the questions."""
    return [sentence for sentence, _, _ in _units_in(text)]


def units_of(retrieved: list[Retrieved]) -> list[Unit]:
    """The quotable units of the retrieved chunks, in retrieval order; exact repeats are dropped."""
    out: list[Unit] = []
    seen: set[str] = set()
    for rank, item in enumerate(retrieved):
        for sentence, order, block in _units_in(item.chunk.text):
            key = sentence.lower()
            if key in seen:
                continue
            seen.add(key)
            out.append(Unit(text=sentence, rank=rank, order=order, item=item, block=block))
    return out


def _block_after(text: str, blocks: list[tuple[str, int, int]], b: int) -> str | None:
    """The code block, list or table right after block ``b``, verbatim (fenced if it is code)."""
    if b + 1 >= len(blocks):
        return None
    kind, start, end = blocks[b + 1]
    if kind == "prose":
        return None
    block = text[start:end].strip("\n")
    lines = block.split("\n")
    if kind == "code" and not FENCE_LINE.match(lines[0]):  # an indented block: fence it
        indent = min(len(x) - len(x.lstrip()) for x in lines if x.strip())
        lines = ["```", *(x[indent:] for x in lines), "```"]
    if len(lines) > MAX_BLOCK_LINES:
        closing = [lines[-1]] if kind == "code" else []
        lines = [*lines[: MAX_BLOCK_LINES - 1], "…", *closing]
    return "\n".join(lines)


def choose(units: list[Unit], max_units: int) -> list[Unit]:
    """The passage to quote: the best unit, its relevant neighbours, and near-equals from elsewhere."""
    ranked = sorted((u for u in units if not u.dangling), key=lambda u: -u.score)
    if not ranked:
        return []
    best = ranked[0]
    chosen = [best]
    words = best.words
    # neighbours in the same chunk, outward from the best unit, while they stay relevant
    same = {u.order: u for u in units if u.item is best.item and not u.dangling}
    for step in (1, -1):
        order = best.order + step
        while order in same and len(chosen) < max_units:
            u = same[order]
            if u.score < best.score - _NEIGHBOUR_MARGIN or words + u.words > MAX_PROSE_WORDS:
                break
            if not any(_similar(u, c) for c in chosen):
                chosen.append(u)
                words += u.words
            order += step
    for u in ranked[1:]:
        if len(chosen) >= max_units or u.score < best.score - _ELSEWHERE_MARGIN:
            break
        if u in chosen or words + u.words > MAX_PROSE_WORDS or any(_similar(u, c) for c in chosen):
            continue
        chosen.append(u)
        words += u.words
    return sorted(chosen, key=lambda u: (u.rank, u.order))


def render(chosen: list[Unit]) -> tuple[str, list[Citation]]:
    """The answer text (units with ``[n]`` markers, blocks fenced after their lead-in) and citations."""
    numbers: dict[str, int] = {}
    citations: list[Citation] = []
    paragraphs: list[str] = []
    current: list[str] = []
    previous: Unit | None = None
    for u in chosen:
        chunk = u.item.chunk
        if chunk.chunk_id not in numbers:
            numbers[chunk.chunk_id] = len(numbers) + 1
            citations.append(Citation.for_chunk(numbers[chunk.chunk_id], chunk, quote=""))
        n = numbers[chunk.chunk_id]
        cit = citations[n - 1]
        quote = u.text if len(u.text) <= _MAX_QUOTE_CHARS else u.text[: _MAX_QUOTE_CHARS - 1] + "…"
        cit.quote = quote if not cit.quote else f"{cit.quote} … {quote}"
        adjacent = previous is not None and previous.item is u.item and u.order == previous.order + 1
        if current and not adjacent:
            paragraphs.append(" ".join(current))
            current = []
        current.append(f"{u.text} [{n}]")
        if u.block is not None:
            paragraphs.append(" ".join(current))
            paragraphs.append(u.block)
            current = []
        previous = u
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs), citations


def _similar(a: Unit, b: Unit) -> bool:
    if a.vector is None or b.vector is None:
        return False
    return float(a.vector @ b.vector) >= _NEAR_DUPLICATE
