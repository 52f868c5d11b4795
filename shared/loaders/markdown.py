"""Markdown loader: sections from ATX and setext headings, YAML front matter for title, tags and url.

A heading may give its id as an explicit attribute, ``## Title {#my-id}`` (Pandoc, kramdown, Python-Markdown
``attr_list``, MkDocs): the id becomes the section's anchor and leaves the heading text. Ids are never
made up from the heading text: each site generator slugs differently.
"""

from __future__ import annotations

import re
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
)

# Every pattern here is linear on hostile lines: no lazy group before "[ \t]*$", no "[^x]*" that can
# rescan the rest of the line from each of a million opening brackets.
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_NOT_PARAGRAPH = re.compile(r"^(?: {4}|\t| {0,3}(?:>|[-*+](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$)|\||<))")
_FM_KEY = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:(?:[ \t]+(.*))?$")
_FM_ITEM = re.compile(r"^[ \t]*-[ \t]+(.*)$")
_LINK = re.compile(r"!?\[([^\[\]]*)\]\([^()]*\)")
#: A heading's attribute block, ``{#id}`` or ``{#id .class key=value}``, matched on the text from its last
#: ``{`` (found with rfind, so no pattern ever rescans a long heading).
_ATTRS = re.compile(r"\{[ \t]*#([^\s{}#]+)(?:[ \t]+[^{}]*)?\}")


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _split_front_matter(text: str) -> tuple[dict[str, str | list[str]], str]:
    """Strip a leading ``---`` YAML block; a tiny parser for ``key: value`` and ``key:`` + ``- item``."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        return {}, text
    meta: dict[str, str | list[str]] = {}
    list_key: str | None = None
    for line in lines[1:end]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = _FM_ITEM.match(line)
        if item and list_key is not None:
            value = meta[list_key]
            if isinstance(value, list):
                value.append(_unquote(item.group(1)))
            continue
        m = _FM_KEY.match(line)
        if not m:
            list_key = None  # nested mappings and the like are ignored
            continue
        key, raw = m.group(1).lower(), (m.group(2) or "").strip()
        if not raw:
            meta[key] = []
            list_key = key
        elif raw.startswith("[") and raw.endswith("]"):
            meta[key] = [_unquote(v) for v in raw[1:-1].split(",") if v.strip()]
            list_key = None
        else:
            meta[key] = _unquote(raw)
            list_key = None
    return meta, "\n".join(lines[end + 1 :])


def _tags(meta: dict[str, str | list[str]]) -> list[str]:
    value = meta.get("tags", [])
    items = value if isinstance(value, list) else value.split(",")
    return [t.strip() for t in items if t.strip()]


def _strip_closing(text: str) -> str:
    """Drop an ATX heading's closing ``#``s: the whole text, or ``#``s after a space or tab."""
    body = text.rstrip("#")
    if body == text or not body:
        return body
    return body.rstrip(" \t") if body[-1] in " \t" else text


def split_heading_id(text: str) -> tuple[str, str | None]:
    """``"Title {#my-id}"`` -> ``("Title", "my-id")``; a heading without an attribute block has no id."""
    body = text.rstrip(" \t")
    if not body.endswith("}"):
        return text, None
    start = body.rfind("{")
    m = _ATTRS.fullmatch(body, start) if start >= 0 else None
    if m is None:
        return text, None
    return body[:start].rstrip(" \t"), clean_anchor(m.group(1))


def _clean_heading(text: str) -> str:
    text = _LINK.sub(r"\1", text)
    text = text.replace("`", "").replace("**", "").replace("__", "")
    return " ".join(text.split())


class _Builder:
    """Accumulates body lines under the current heading stack."""

    def __init__(self, max_sections: int) -> None:
        self.sections: list[Section] = []
        self.stack = HeadingStack()
        self.lines: list[str] = []
        self.max_sections = max_sections
        self.capped = False

    @property
    def full(self) -> bool:
        """No more sections: further headings stay in the body as text."""
        if len(self.sections) >= self.max_sections:
            self.capped = True
        return self.capped

    def flush(self) -> None:
        body = normalise("\n".join(self.lines))
        if not is_blank(body):
            self.sections.append(Section(text=body, heading_path=self.stack.path, anchor=self.stack.anchor))
        self.lines = []

    def heading(self, level: int, text: str) -> None:
        text, anchor = split_heading_id(text)
        text = _clean_heading(text)
        if not text:
            return
        self.flush()
        self.stack.push(level, text, anchor)


def parse_markdown(text: str, budget: Budget | None = None) -> tuple[list[Section], str | None]:
    """Split normalised markdown into sections; returns them and the first H1."""
    b = _Builder(budget.max_sections if budget is not None else 2**62)
    fence: tuple[str, int] | None = None  # (char, length) of the open code fence
    prev_kind = prev2_kind = "start"  # kinds: start, blank, text, heading, fence
    for line in text.split("\n"):
        if budget is not None:
            budget.check()
        kind = "text"
        if fence is not None:
            b.lines.append(line)
            m = _FENCE_OPEN.match(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1] and not m.group(2).strip():
                fence = None
            kind = "fence"
        elif m := _FENCE_OPEN.match(line):
            if m.group(1)[0] == "`" and "`" in m.group(2):
                b.lines.append(line)  # inline code span, not a fence
            else:
                fence = (m.group(1)[0], len(m.group(1)))
                b.lines.append(line)
                kind = "fence"
        elif (m := _ATX.match(line)) and not b.full:
            content = _strip_closing((m.group(2) or "").rstrip(" \t"))
            b.heading(len(m.group(1)), content)
            kind = "heading"
        elif (
            (m := _SETEXT.match(line))
            and prev_kind == "text"
            and prev2_kind in ("start", "blank", "heading", "fence")
            and b.lines
            and not _NOT_PARAGRAPH.match(b.lines[-1])
            and not b.full
        ):
            heading_text = b.lines.pop()
            b.heading(1 if m.group(1)[0] == "=" else 2, heading_text)
            kind = "heading"
        else:
            # a link reads as its text: its target ("cli/reference.md#hatch-build") is neither content
            # nor something to quote, and its path words would match questions about other pages
            b.lines.append(_LINK.sub(r"\1", line) if "](" in line else line)
            kind = "blank" if not line.strip() else "text"
        prev2_kind, prev_kind = prev_kind, kind
    b.flush()
    if b.capped and budget is not None:
        budget.notes.append(budget.sections_warning())
    return b.sections, b.stack.first_h1


def load_markdown(path: Path, data: bytes, source: str, budget: Budget) -> list[Document]:
    raw, warnings = decode_text(data, source)
    text = normalise(budget.cap(raw, warnings))
    if is_blank(text):
        raise LoaderError("empty file", source=source)
    meta, body = _split_front_matter(text)
    sections, first_h1 = parse_markdown(body, budget)
    if not sections:
        if is_blank(body):
            raise LoaderError("empty file (front matter only)", source=source)
        # only headings: keep them as the text rather than lose the document
        sections = [Section(text=normalise(body))]
    fm_title = meta.get("title")
    title = fm_title.strip() if isinstance(fm_title, str) and fm_title.strip() else None
    url = document_url(meta.get("url"), "front matter url", warnings)
    return [
        make_document(
            source=source,
            title=title or first_h1 or path.stem,
            doc_type="markdown",
            sections=sections,
            tags=_tags(meta),
            warnings=warnings,
            url=url,
        )
    ]
