"""Structure-aware chunking.

Sections (from headings, or PDF pages) are split into paragraphs; paragraphs that exceed the chunk size
are split into sentences, and sentences that still do into token windows of the embedder's tokenizer.
The pieces are then packed greedily into chunks of at most ``chunk_tokens`` tokens, each chunk starting
with up to ``overlap_tokens`` tokens of trailing pieces of the previous one. Chunk ids are stable: they
depend only on the source, the heading path and the chunk's text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from shared.embeddings.base import TokenCounter
from shared.models import DEFAULT_COLLECTION, MAX_URL_CHARS, Chunk, Document, Section, heading_trail
from shared.settings import DEFAULTS
from shared.sites import with_anchor
from shared.text import FENCE_LINE, introduces_block, split_blocks, split_sentences


@dataclass(frozen=True)
class _Piece:
    text: str
    tokens: int
    joiner: str  # what separates it from the previous piece when packed


def embedding_text(chunk: Chunk) -> str:
    """What gets embedded and lexically indexed: title and heading path give the chunk its context."""
    context = heading_trail(chunk.title, chunk.heading_path)
    return (" > ".join(context) + "\n" + chunk.text) if context else chunk.text


def chunk_id(source: str, heading_path: list[str], text: str, occurrence: int) -> str:
    h = hashlib.sha256()
    for part in (source, "\x1f".join(heading_path), text, str(occurrence)):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


class Chunker:
    def __init__(
        self,
        tokenizer: TokenCounter,
        *,
        chunk_tokens: int = DEFAULTS.chunk_tokens,
        overlap_tokens: int = DEFAULTS.chunk_overlap_tokens,
    ) -> None:
        if overlap_tokens >= chunk_tokens:
            raise ValueError("overlap_tokens must be smaller than chunk_tokens")
        self.tokenizer = tokenizer
        self.chunk_tokens = min(chunk_tokens, tokenizer.max_tokens)
        self.overlap_tokens = overlap_tokens

    @property
    def signature(self) -> str:
        """What, besides a document's content, decides its chunks: changing it re-chunks everything."""
        return f"chunker-v2/{self.chunk_tokens}/{self.overlap_tokens}/{self.tokenizer.max_tokens}"

    # ------------------------------------------------------------------ public

    def chunk(self, doc: Document, *, collection: str = DEFAULT_COLLECTION) -> list[Chunk]:
        """The chunks of ``doc`` in ``collection``. Each links to ``doc.url`` at its section's anchor when
        the document has a URL (ingest gives it one from the collection's template when it names none)."""
        chunks: list[Chunk] = []
        seen: dict[str, int] = {}
        budget = self._budget(doc)
        for section in doc.sections:
            url = _link(doc.url, section.anchor)
            for text in self._pack(self._pieces(section, budget), budget):
                key = "\x1f".join(section.heading_path) + "\x1e" + text
                occurrence = seen.get(key, 0)
                seen[key] = occurrence + 1
                chunks.append(
                    Chunk(
                        chunk_id=chunk_id(doc.source, section.heading_path, text, occurrence),
                        source=doc.source,
                        title=doc.title,
                        text=text,
                        heading_path=list(section.heading_path),
                        position=len(chunks),
                        page=section.page,
                        content_hash=doc.content_hash,
                        tags=list(doc.tags),
                        n_tokens=self._count(text),
                        url=url,
                        collection=collection,
                    )
                )
        return chunks

    # ------------------------------------------------------------------ internals

    def _count(self, text: str) -> int:
        return len(self.tokenizer.token_spans(text))

    def _budget(self, doc: Document) -> int:
        """Tokens left for the body once the title/heading context is prepended for embedding."""
        longest_context = max(
            (
                self._count(" > ".join(p for p in [doc.title or "", *s.heading_path] if p))
                for s in doc.sections
            ),
            default=0,
        )
        room = self.tokenizer.max_tokens - 2 - longest_context - 1  # [CLS], [SEP], newline
        return max(16, min(self.chunk_tokens, room))

    def _pieces(self, section: Section, budget: int) -> list[_Piece]:
        """Blocks of the section as pieces: a code block, list or table stays whole when it fits, and a
        paragraph that leads into a block ("run the following:") is glued to it, so that no chunk ends
        on a dangling lead-in and an answer can quote the command with its introduction."""
        pieces: list[_Piece] = []
        lead_in: _Piece | None = None
        for kind, start, end in split_blocks(section.text):
            block = section.text[start:end].strip("\n")
            n = self._count(block)
            if n <= budget:
                new = [_Piece(block, n, "\n\n")]
            elif kind == "code":
                new = self._code_windows(block, budget)
            elif kind == "prose":
                new = self._sentences(block, budget)
            else:
                new = self._lines(block, budget)
            if lead_in is not None and kind != "prose":
                first = new[0]
                if lead_in.tokens + first.tokens + 1 <= budget:
                    pieces.pop()
                    new[0] = _Piece(
                        lead_in.text + "\n\n" + first.text, lead_in.tokens + first.tokens + 1, "\n\n"
                    )
            pieces.extend(new)
            lead_in = new[-1] if kind == "prose" and introduces_block(block) else None
        return pieces

    def _sentences(self, para: str, budget: int) -> list[_Piece]:
        pieces: list[_Piece] = []
        joiner = "\n\n"
        for s, e in split_sentences(para):
            sentence = para[s:e]
            m = self._count(sentence)
            if m <= budget:
                pieces.append(_Piece(sentence, m, joiner))
            else:
                pieces.extend(self._windows(sentence, budget, joiner))
            joiner = " "
        return pieces

    def _lines(self, block: str, budget: int) -> list[_Piece]:
        """A long list or table: runs of whole lines (a line longer than the budget is windowed)."""
        pieces: list[_Piece] = []
        current: list[str] = []
        size = 0
        for line in block.split("\n"):
            m = self._count(line) + 1
            if current and size + m > budget:
                pieces.append(_Piece("\n".join(current), size, "\n"))
                current, size = [], 0
            if m > budget:
                pieces.extend(self._windows(line, budget, "\n"))
                continue
            current.append(line)
            size += m
        if current:
            pieces.append(_Piece("\n".join(current), size, "\n"))
        if pieces:
            pieces[0] = _Piece(pieces[0].text, pieces[0].tokens, "\n\n")
        return pieces

    def _code_windows(self, block: str, budget: int) -> list[_Piece]:
        """A long code block: runs of whole lines, each fenced again so every chunk holds valid blocks."""
        lines = block.split("\n")
        fenced = bool(FENCE_LINE.match(lines[0]))
        opener = lines[0].strip() if fenced else "```"
        if fenced:
            lines = lines[1:-1] if len(lines) > 1 and FENCE_LINE.match(lines[-1]) else lines[1:]
        wrap = self._count(opener) + self._count("```") + 2
        inner = self._lines("\n".join(lines), max(8, budget - wrap))
        return [_Piece(f"{opener}\n{p.text}\n```", min(budget, p.tokens + wrap), "\n\n") for p in inner]

    def _windows(self, text: str, budget: int, joiner: str) -> list[_Piece]:
        """Token windows for text with no usable sentence boundary (code, tables, run-on text)."""
        spans = self.tokenizer.token_spans(text)
        out: list[_Piece] = []
        step = max(1, budget - self.overlap_tokens)
        i = 0
        while i < len(spans):
            window = spans[i : i + budget]
            out.append(_Piece(text[window[0][0] : window[-1][1]], len(window), joiner if i == 0 else " "))
            if i + budget >= len(spans):
                break
            i += step
        return out

    def _pack(self, pieces: list[_Piece], budget: int) -> list[str]:
        chunks: list[str] = []
        current: list[_Piece] = []
        size = 0
        for piece in pieces:
            if current and size + piece.tokens > budget:
                chunks.append(_join(current))
                # carry trailing pieces into the next chunk as overlap
                carry: list[_Piece] = []
                carried = 0
                for prev in reversed(current):
                    if (
                        carried + prev.tokens > self.overlap_tokens
                        or carried + prev.tokens + piece.tokens > budget
                    ):
                        break
                    carry.insert(0, prev)
                    carried += prev.tokens
                current, size = carry, carried
            current.append(piece)
            size += piece.tokens
        if current:
            chunks.append(_join(current))
        return chunks


def _link(page: str | None, anchor: str | None) -> str | None:
    """The page at the anchor; without the anchor when that is too long; None when even the page is."""
    for url in (with_anchor(page, anchor), page) if page else ():
        if len(url) <= MAX_URL_CHARS:
            return url
    return None


def _join(pieces: list[_Piece]) -> str:
    out = pieces[0].text
    for p in pieces[1:]:
        out += p.joiner + p.text
    return out
