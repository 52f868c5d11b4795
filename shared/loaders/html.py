"""HTML loader: visible text only, sections from h1–h6, paragraph breaks kept.

The markup is read as a stream of tags and text (the standard library's ``html.parser``, the parser
BeautifulSoup's "html.parser" builder wraps, with the same tree rules: void elements close at once, an
end tag closes every element opened after the most recent one of its name, an end tag with no open
element is ignored). No tree is built, so memory holds only the open elements and the text kept, very
deeply nested markup is fine, and the input is fed in slices; the time budget is checked at every tag and
text run, and reading stops once ``max_document_chars`` of text have been collected.

Links: the page's ``<link rel="canonical" href>`` is its public address when it is an absolute http(s) URL,
and a heading's ``id`` (or the ``id``/``name`` of an ``<a>`` inside it, or the ``#fragment`` of its
permalink, as Sphinx and MkDocs write it) is its section's anchor. Nothing is made up from the text.
"""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

from shared.errors import LoaderError
from shared.models import Document, Section

from ._common import (
    Budget,
    HeadingStack,
    clean_anchor,
    decode_text,
    document_url,
    is_blank,
    make_document,
    normalise,
    short_error,
)

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
#: Elements that never have content: closed as soon as they open (as BeautifulSoup does).
_VOID = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "menuitem",
        "meta", "param", "source", "track", "wbr", "basefont", "bgsound", "command", "frame",
        "image", "isindex", "nextid", "spacer",
    }
)  # fmt: skip
_MAX_HEADING_CHARS = 300
_MAX_TITLE_CHARS = 1000
#: Open elements kept track of; start tags nested deeper are ignored (their text is kept). Bounds memory
#: for millions of unclosed tags; real pages nest a few dozen deep, hostile ones 50,000 still work.
_MAX_OPEN = 100_000
#: Characters fed to the parser at a time; the time budget and the text limit are checked in between.
_SLICE = 1 << 20
_WS = re.compile(r"\s+")
_DISPLAY_NONE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
#: ARIA roles of page chrome: site navigation, search boxes, site header and footer.
_CHROME_ROLES = frozenset({"navigation", "search", "banner", "contentinfo"})
#: Class names that documentation generators (Sphinx, DocBook, MkDocs, Read the Docs) give their chrome:
#: sidebars, "previous / next" bars, breadcrumbs, permalink anchors. Their words would otherwise be
#: indexed with every page and match questions about the neighbouring pages.
_CHROME_CLASSES = frozenset(
    {
        "sphinxsidebar", "related", "navheader", "navfooter", "breadcrumb", "breadcrumbs",
        "headerlink", "navbar", "skip-link", "md-sidebar", "md-header", "md-footer", "md-nav",
        "wy-nav-side", "rst-versions", "rst-footer-buttons", "prev-next-area",
    }
)  # fmt: skip
#: Classes of the permalink a documentation generator puts inside a heading (``<a class="headerlink"
#: href="#install">¶</a>``): its fragment is the heading's id.
_PERMALINK_CLASSES = frozenset({"headerlink", "anchor", "hash-link", "permalink", "anchorjs-link"})
#: Fence that marks a preformatted block (<pre>) in the text, as Markdown does, so that chunking keeps
#: it whole and answers quote it verbatim.
CODE_FENCE = "```"


def _hidden(attrs: dict[str, str | None]) -> bool:
    if "hidden" in attrs or str(attrs.get("aria-hidden", "")).lower() == "true":
        return True
    style = attrs.get("style")
    return isinstance(style, str) and bool(_DISPLAY_NONE.search(style))


def _hidden_or_chrome(attrs: dict[str, str | None]) -> bool:
    if _hidden(attrs):
        return True
    if str(attrs.get("role") or "").lower() in _CHROME_ROLES:
        return True
    classes = str(attrs.get("class") or "").lower().split()
    return any(c in _CHROME_CLASSES for c in classes)


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
        if not text.isprintable() or "  " in text:  # most text has no whitespace run to collapse
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


class _Open:
    """An open element. ``kind``: "drop" starts a dropped subtree, "inert" is inside one, "live" else."""

    __slots__ = ("kind", "name")

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind


class _Extractor(HTMLParser):
    def __init__(self, budget: Budget) -> None:
        super().__init__(convert_charrefs=True)
        self.budget = budget
        self.sections: list[Section] = []
        self.stack = HeadingStack()
        self.body = _Text()
        self.headings: list[str] = []
        self.truncated = False
        self.capped = False
        self.title: str | None = None
        self._open: list[_Open] = []
        self._open_names: Counter[str] = Counter()
        self._dropped = 0  # open elements that start a dropped subtree
        self._pre = 0
        self._content = 0  # depth inside <article>/<main>/<section>
        self._heading: tuple[int, _Text, _Open] | None = None
        self._heading_anchor: str | None = None  # the id of the open heading, once one is found
        self.canonical: str | None = None  # href of the first <link rel="canonical">
        self._title: tuple[list[str], _Open] | None = None  # the first <title>, while it is open
        self._title_seen = False
        self._collected = 0  # characters of text seen (before whitespace is collapsed)

    # ------------------------------------------------------------------ driving

    def run(self, text: str) -> None:
        for start in range(0, len(text), _SLICE):
            self.budget.check()
            self.feed(text[start : start + _SLICE])
            if self.truncated:
                break
        else:
            self.close()
        while self._open:  # the end of the document closes every open element
            self._pop()
        if self._heading is not None:  # stopped inside a heading
            self._finish_heading()
        self.flush()

    @property
    def _out(self) -> _Text:
        return self._heading[1] if self._heading is not None else self.body

    def flush(self) -> None:
        text = self.body.take()
        if not is_blank(text):
            self.sections.append(Section(text=text, heading_path=self.stack.path, anchor=self.stack.anchor))

    # ------------------------------------------------------------------ parser events

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.budget.check()
        if self.truncated or len(self._open) >= _MAX_OPEN:
            return
        name = tag.lower()
        if attrs and (name == "link" or (name == "a" and self._heading is not None)):
            self._link_attrs(name, dict(attrs))
        if self._dropped:
            kind = "inert"
        elif (
            name in _DROP
            or (name in _CHROME and self._content == 0)
            or (bool(attrs) and _hidden_or_chrome(dict(attrs)))
        ):
            kind = "drop"
        else:
            kind = "live"
        element = _Open(name, kind)
        if name == "title" and not self._title_seen:
            self._title_seen = True
            self._title = ([], element)
        if kind == "drop":
            self._dropped += 1
        elif kind == "live":
            out = self._out
            if name in _HEADINGS and self._heading is None and len(self.sections) < self.budget.max_sections:
                self._heading = (_HEADINGS[name], _Text(), element)
                self._heading_anchor = clean_anchor(dict(attrs).get("id")) if attrs else None
            elif name in _HEADINGS and self._heading is None:  # over the section limit: kept as text
                if not self.capped:
                    self.budget.notes.append(self.budget.sections_warning())
                self.capped = True
                out.brk("\n\n")
            elif name in _PARAGRAPH:
                out.brk("\n\n")
            elif name in _LINE:
                out.brk("\n")
            elif name in _CELL:
                out.space()
            if name == "pre":
                if not self._pre:
                    out.inline(CODE_FENCE + "\n", pre=True)
                self._pre += 1
            if name in _CONTENT_ROOTS:
                self._content += 1
        if name in _VOID:
            self._end(element)
            return
        self._open.append(element)
        self._open_names[name] += 1

    def _link_attrs(self, name: str, attrs: dict[str, str | None]) -> None:
        """What a ``<link>`` or an ``<a>`` inside a heading tells about addresses: the canonical URL, the
        heading's id (an anchor's own id or name first, else a permalink's fragment)."""
        if name == "link":
            rel = str(attrs.get("rel") or "").lower().split()
            if "canonical" in rel and self.canonical is None:
                self.canonical = str(attrs.get("href") or "")
            return
        if self._heading_anchor is not None:
            return
        own = clean_anchor(attrs.get("id")) or clean_anchor(attrs.get("name"))
        href = str(attrs.get("href") or "")
        classes = str(attrs.get("class") or "").lower().split()
        if own is None and href.startswith("#") and any(c in _PERMALINK_CLASSES for c in classes):
            own = clean_anchor(href[1:])
        self._heading_anchor = own

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag.lower() not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        self.budget.check()
        name = tag.lower()
        if self.truncated or not self._open_names[name]:
            return  # nothing of that name is open: ignored
        while self._open:
            if self._pop().name == name:
                break

    def handle_data(self, data: str) -> None:
        self.budget.check()
        if self.truncated:
            return
        if self._title is not None:
            parts, _ = self._title
            if sum(map(len, parts)) < _MAX_TITLE_CHARS:
                parts.append(data[:_MAX_TITLE_CHARS])
        if self._dropped:
            return
        room = self.budget.max_chars - self._collected + 1
        if len(data) >= room:  # one more character than allowed: the document is cut off
            data = data[:room]
            self.truncated = True
        out = self._out
        if self._pre and data[:1] == "\n" and out.parts and out.parts[-1] == CODE_FENCE + "\n":
            data = data[1:]  # the newline right after <pre> is not content (HTML's own rule)
        out.inline(data, self._pre > 0)
        self._collected += len(data)

    # ------------------------------------------------------------------ elements

    def _pop(self) -> _Open:
        element = self._open.pop()
        self._open_names[element.name] -= 1
        self._end(element)
        return element

    def _end(self, element: _Open) -> None:
        if self._title is not None and element is self._title[1]:
            self.title = " ".join(" ".join(self._title[0]).split()) or None
            self._title = None
        if element.kind == "drop":
            self._dropped -= 1
            return
        if element.kind == "inert":
            return
        name = element.name
        if name == "pre":
            self._pre -= 1
            if not self._pre:
                out = self._out
                if out.parts and not out.parts[-1].endswith("\n"):
                    out.inline("\n", pre=True)
                out.inline(CODE_FENCE, pre=True)
        if name in _CONTENT_ROOTS:
            self._content -= 1
        if self._heading is not None and element is self._heading[2]:
            self._finish_heading()
        elif name in _PARAGRAPH or (self.capped and name in _HEADINGS):
            self._out.brk("\n\n")
        elif name in _LINE:
            self._out.brk("\n")

    def _finish_heading(self) -> None:
        assert self._heading is not None
        level, buf, _ = self._heading
        anchor, self._heading, self._heading_anchor = self._heading_anchor, None, None
        raw = buf.take()
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
        self.stack.push(level, text, anchor)


def _choose_title(title: str | None, h1: str | None) -> str | None:
    """The page's own name: the first <h1> when the <title> is that plus the site's name (``"borg prune —
    Borg 1.2 documentation"``), which every page of the site repeats and would otherwise be indexed with
    every chunk; else the <title>, else the <h1>."""
    if title and h1:
        head = h1.rstrip("¶#").strip()
        if head and head != title and (title.startswith(head) or title.endswith(head)):
            return head
    return title or h1


def load_html(path: Path, data: bytes, source: str, budget: Budget) -> list[Document]:
    raw, warnings = decode_text(data, source)
    text = normalise(raw)
    if is_blank(text):
        raise LoaderError("empty file", source=source)
    parser = _Extractor(budget)
    try:
        parser.run(text)
    except LoaderError:
        raise
    except RecursionError:
        raise LoaderError("HTML is too deeply nested", source=source) from None
    except Exception as exc:  # the parser is lenient, but never let it escape as anything else
        raise LoaderError(f"HTML could not be parsed: {short_error(exc)}", source=source) from None
    if not parser.sections and parser.headings:  # headings only: keep their text
        parser.sections.append(Section(text="\n".join(parser.headings)))
    if not parser.sections:
        raise LoaderError("no visible text in HTML", source=source)
    if parser.truncated:
        warnings.append(budget.truncated_warning())
    url = document_url(parser.canonical, "canonical link", warnings)
    return [
        make_document(
            source=source,
            title=_choose_title(parser.title, parser.stack.first_h1) or path.stem,
            doc_type="html",
            sections=parser.sections,
            warnings=warnings,
            url=url,
        )
    ]
