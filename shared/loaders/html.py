"""HTML loader: visible text only, sections from h1–h6, paragraph breaks kept.

The tree is walked with an explicit stack (no recursion), so very deeply nested markup is fine.
"""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup
from bs4.element import (
    CData,
    Comment,
    Declaration,
    Doctype,
    NavigableString,
    PageElement,
    ProcessingInstruction,
    Tag,
)

from shared.errors import LoaderError
from shared.models import Document, Section

from ._common import HeadingStack, decode_text, is_blank, make_document, normalise, short_error

#: Never visible, or page chrome rather than content.
_DROP = frozenset(
    {
        "script", "style", "noscript", "nav", "aside", "form", "svg", "template",
        "head", "title", "meta", "link", "iframe", "object", "embed", "canvas",
        "button", "select", "option", "textarea", "input", "audio", "video", "map",
    }
)  # fmt: skip
#: Page header/footer: dropped, except inside <article>/<main>/<section> where they hold content.
_CHROME = frozenset({"header", "footer"})
_CONTENT_ROOTS = frozenset({"article", "main", "section"})
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
#: Block elements separated by a blank line (a paragraph break for the chunker) ...
_PARAGRAPH = frozenset(
    {
        "p", "div", "section", "article", "main", "blockquote", "pre", "table", "ul", "ol", "dl",
        "figure", "address", "details", "fieldset", "header", "footer", "hr", "body", "html",
    }
)  # fmt: skip
#: ... and those on a line of their own.
_LINE = frozenset({"li", "tr", "br", "dt", "dd", "figcaption", "summary", "caption", "legend"})
_CELL = frozenset({"td", "th"})
_SKIP_STRINGS = (Comment, Doctype, Declaration, CData, ProcessingInstruction)
_MAX_HEADING_CHARS = 300
_WS = re.compile(r"\s+")
_DISPLAY_NONE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


def _hidden(tag: Tag) -> bool:
    attrs = tag.attrs or {}
    if "hidden" in attrs or str(attrs.get("aria-hidden", "")).lower() == "true":
        return True
    style = attrs.get("style")
    return isinstance(style, str) and bool(_DISPLAY_NONE.search(style))


class _Text:
    """A text buffer that collapses whitespace except inside <pre>."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def _at_line_start(self) -> bool:
        return not self.parts or self.parts[-1].endswith("\n")

    def inline(self, text: str, pre: bool) -> None:
        if pre:
            self.parts.append(text)
            return
        text = _WS.sub(" ", text)
        if self._at_line_start() or self.parts[-1].endswith(" "):
            text = text.lstrip(" ")
        if text:
            self.parts.append(text)

    def brk(self, newlines: str) -> None:
        """End the current line (``"\\n"``) or paragraph (``"\\n\\n"``); breaks do not add up."""
        if not self.parts:
            return
        have = 0
        for part in reversed(self.parts):
            stripped = part.rstrip("\n")
            have += len(part) - len(stripped)
            if stripped:
                break
        if have < len(newlines):
            self.parts.append("\n" * (len(newlines) - have))

    def space(self) -> None:
        if self.parts and not self._at_line_start() and not self.parts[-1].endswith(" "):
            self.parts.append(" ")

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts = []
        text = normalise("\n".join(line.rstrip() for line in text.split("\n")))
        return re.sub(r"\n{3,}", "\n\n", text)


class _Walker:
    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.stack = HeadingStack()
        self.body = _Text()
        self.headings: list[str] = []

    def flush(self) -> None:
        text = self.body.take()
        if not is_blank(text):
            self.sections.append(Section(text=text, heading_path=self.stack.path))

    def walk(self, root: Tag) -> None:
        # Work items: (node, None) to enter a node, (tag, "end") to leave a tag.
        todo: list[tuple[PageElement, str | None]] = [(root, None)]
        pre = 0
        content = 0  # depth inside <article>/<main>/<section>
        heading: tuple[int, _Text, Tag] | None = None
        while todo:
            node, action = todo.pop()
            out = heading[1] if heading is not None else self.body
            if action == "end":
                assert isinstance(node, Tag)
                name = node.name.lower()
                if name == "pre":
                    pre -= 1
                if name in _CONTENT_ROOTS:
                    content -= 1
                if heading is not None and node is heading[2]:
                    level, buf, _ = heading
                    heading = None
                    self._heading(level, buf.take())
                elif name in _PARAGRAPH:
                    out.brk("\n\n")
                elif name in _LINE:
                    out.brk("\n")
                continue
            if isinstance(node, NavigableString):
                if not isinstance(node, _SKIP_STRINGS):
                    out.inline(str(node), pre > 0)
                continue
            if not isinstance(node, Tag):
                continue
            name = (node.name or "").lower()
            if name in _DROP or (name in _CHROME and content == 0) or _hidden(node):
                continue
            if name in _HEADINGS and heading is None:
                heading = (_HEADINGS[name], _Text(), node)
            elif name in _PARAGRAPH:
                out.brk("\n\n")
            elif name in _LINE:
                out.brk("\n")
            elif name in _CELL:
                out.space()
            if name == "pre":
                pre += 1
            if name in _CONTENT_ROOTS:
                content += 1
            todo.append((node, "end"))
            todo.extend((child, None) for child in reversed(node.contents))
        if heading is not None:  # unclosed heading at the end of the document
            self._heading(heading[0], heading[1].take())
        self.flush()

    def _heading(self, level: int, raw: str) -> None:
        text = " ".join(raw.split())
        if not text:
            return
        self.headings.append(text)
        if len(text) > _MAX_HEADING_CHARS:  # e.g. an unclosed <h2> that swallowed the page: keep as body
            self.body.brk("\n\n")
            self.body.inline(raw, pre=True)
            self.body.brk("\n\n")
            return
        self.flush()
        self.stack.push(level, text)


def _title(soup: BeautifulSoup) -> str | None:
    tag = soup.find("title")
    if tag is None:
        return None
    text = " ".join(tag.get_text(" ").split())
    return text or None


def load_html(path: Path, data: bytes, source: str) -> list[Document]:
    raw, warnings = decode_text(data, source)
    text = normalise(raw)
    if is_blank(text):
        raise LoaderError("empty file", source=source)
    walker = _Walker()
    try:
        soup = BeautifulSoup(text, "html.parser")
        title = _title(soup)
        walker.walk(soup)
    except RecursionError:
        raise LoaderError("HTML is too deeply nested", source=source) from None
    except Exception as exc:  # the parser is lenient, but never let it escape as anything else
        raise LoaderError(f"HTML could not be parsed: {short_error(exc)}", source=source) from None
    if not walker.sections and walker.headings:  # headings only: keep their text
        walker.sections.append(Section(text="\n".join(walker.headings)))
    if not walker.sections:
        raise LoaderError("no visible text in HTML", source=source)
    return [
        make_document(
            source=source,
            title=title or walker.stack.first_h1 or path.stem,
            doc_type="html",
            sections=walker.sections,
            warnings=warnings,
        )
    ]
