"""Plain-text loader (.txt, .text) and reStructuredText (.rst, underlined/overlined titles → sections).

An explicit RST label right before a title (``.. _install-guide:``) is the section's anchor, as docutils
renders it (``install-guide``); the label line leaves the text.
"""

from __future__ import annotations

import re
from pathlib import Path

from shared.errors import LoaderError
from shared.models import Document, Section

from ._common import Budget, decode_text, docutils_id, first_line_title, is_blank, make_document, normalise

# An RST adornment line: one punctuation character repeated (at least 3 times, to avoid "--" or "..").
_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}$")
#: An internal hyperlink target: ``.. _label:`` or ``.. _`a label`:`` with nothing after the colon.
_LABEL = re.compile(r"^\.\. _(?:`([^`]+)`|([^`:\s][^:]*)):[ \t]*$")


def _take_label(body: list[str]) -> str | None:
    """The anchor of a title from the label lines right before it (blank lines between are allowed);
    those lines are removed from ``body``. The label closest to the title wins."""
    i = len(body)
    while i and not body[i - 1].strip():
        i -= 1
    anchor: str | None = None
    cut: int | None = None
    while i and (m := _LABEL.match(body[i - 1])):
        anchor = anchor or docutils_id(m.group(1) or m.group(2))
        i -= 1
        cut = i
        while i and not body[i - 1].strip():  # blank lines between stacked labels
            i -= 1
    if cut is None:
        return None
    del body[cut:]
    return anchor


def _rst_title(lines: list[str], i: int) -> tuple[str, tuple[str, bool], int] | None:
    """The title starting at line ``i`` (over- and underlined, or underlined): text, style, lines used."""
    line = lines[i]
    nxt = lines[i + 1] if i + 1 < len(lines) else ""
    prev_blank = i == 0 or not lines[i - 1].strip()
    over = _ADORNMENT.match(line)
    if (
        over
        and i + 2 < len(lines)
        and lines[i + 1].strip()
        and lines[i + 2] == line
        and len(line) >= len(lines[i + 1].rstrip())
    ):
        return lines[i + 1].strip(), (over.group(1), True), 3
    if (
        prev_blank
        and line.strip()
        and not line.startswith((" ", "\t"))
        and not _ADORNMENT.match(line)
        and (under := _ADORNMENT.match(nxt))
        and len(nxt) >= len(line.rstrip())
    ):
        return line.strip(), (under.group(1), False), 2
    return None


def _parse_rst(text: str, budget: Budget | None = None) -> tuple[list[Section], str | None]:
    """Sections from RST titles. Levels follow the order in which adornment styles first appear."""
    lines = text.split("\n")
    styles: list[tuple[str, bool]] = []  # (char, has_overline) in order of first appearance
    stack: list[tuple[int, str, str | None]] = []
    sections: list[Section] = []
    body: list[str] = []
    first_title: str | None = None
    capped = False

    def flush() -> None:
        chunk = normalise("\n".join(body))
        if not is_blank(chunk):
            anchor = next((a for _, _, a in reversed(stack) if a), None)
            sections.append(Section(text=chunk, heading_path=[t for _, t, _ in stack], anchor=anchor))
        body.clear()

    i = 0
    while i < len(lines):
        if budget is not None:
            budget.check()
        line = lines[i]
        title, style, consumed = _rst_title(lines, i) or (None, None, 1)
        if (
            title is not None
            and style is not None
            and budget is not None
            and len(sections) >= budget.max_sections
        ):
            if not capped:
                budget.notes.append(budget.sections_warning())
            capped = True
            body.extend(lines[i : i + consumed])
        elif title is not None and style is not None:
            if style not in styles:
                styles.append(style)
            level = styles.index(style) + 1
            anchor = _take_label(body)
            flush()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title, anchor))
            if first_title is None:
                first_title = title
        else:
            body.append(line)
        i += consumed
    flush()
    return sections, first_title


def load_text(path: Path, data: bytes, source: str, budget: Budget) -> list[Document]:
    raw, warnings = decode_text(data, source)
    text = normalise(budget.cap(raw, warnings))
    if is_blank(text):
        raise LoaderError("empty file", source=source)
    if path.suffix.lower() == ".rst":
        sections, first_title = _parse_rst(text, budget)
        if sections:
            return [
                make_document(
                    source=source,
                    title=first_title or first_line_title(text, path.stem),
                    doc_type="text",
                    sections=sections,
                    warnings=warnings,
                )
            ]
    return [
        make_document(
            source=source,
            title=first_line_title(text, path.stem),
            doc_type="text",
            sections=[Section(text=text)],
            warnings=warnings,
        )
    ]
