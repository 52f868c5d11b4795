"""Helpers shared by the loaders: limits, bounded reading, text decoding, normalisation, hashing."""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import re
import stat
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shared.errors import LoaderError
from shared.models import MAX_DOCUMENT_TAGS, MAX_TAG_CHARS, MAX_URL_CHARS, Document, Section, unique_tags
from shared.settings import DEFAULTS

if TYPE_CHECKING:
    from shared.settings import Settings

MB = 1024 * 1024
#: How many leading bytes are sniffed for NUL bytes (the usual "is it binary?" heuristic).
SNIFF_BYTES = 8192
#: A first line longer than this is not used as a title.
MAX_TITLE_CHARS = 100

#: Longest heading id kept as an anchor (real ids are short; a longer one is not a usable link target).
MAX_ANCHOR_CHARS = 200
#: Characters no usable URL or id holds as they stand: whitespace, controls, quotes and angle brackets.
_URL_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f<>\"]")

#: Trailing spaces of a line. The lookbehind starts a match only where a run of spaces starts: plain
#: "[ \t]+$" retries from every space of a run inside a line, quadratic on hostile input.
_TRAILING_WS = re.compile(r"(?<![ \t\f\v])[ \t\f\v]+$", re.MULTILINE)


@dataclass(frozen=True)
class LoadLimits:
    """Bounds on the work one untrusted file may cause (the file size itself is ``max_bytes``).

    ``max_document_chars`` cuts the extracted text of each document (a JSON Lines record is a document)
    with a warning; ``max_sections`` bounds the sections (headings) of a file, later headings are kept
    as body text, and the records of a JSON Lines file, later records are not read, each with a warning;
    a PDF of more than ``max_pdf_pages`` pages is rejected; ``max_pdf_stream_bytes`` is the most one PDF
    stream may inflate to (larger ones are not decoded); ``timeout_s`` rejects a file still being parsed
    after that long. The clock is checked between
    pages, lines, records and HTML elements: one PDF page in progress is not interrupted, but the work
    per page is bounded by ``max_pdf_stream_bytes`` and :data:`MAX_PDF_PAGE_OPERANDS`.
    """

    max_document_chars: int = DEFAULTS.max_document_chars
    max_pdf_pages: int = DEFAULTS.max_pdf_pages
    max_pdf_stream_bytes: int = int(DEFAULTS.max_pdf_stream_mb * MB)
    timeout_s: float | None = DEFAULTS.loader_timeout_s
    max_sections: int = DEFAULTS.max_sections_per_file

    @classmethod
    def from_settings(cls, settings: Settings) -> LoadLimits:
        return cls(
            max_document_chars=settings.max_document_chars,
            max_pdf_pages=settings.max_pdf_pages,
            max_pdf_stream_bytes=int(settings.max_pdf_stream_mb * MB),
            timeout_s=settings.loader_timeout_s,
            max_sections=settings.max_sections_per_file,
        )


#: Content-stream tokens (operands and operators) parsed per PDF page (pypdf's own default is 2,000,000,
#: about 17 s and 250 MB of Python objects for one page); a dense real page has a few thousand.
MAX_PDF_PAGE_OPERANDS = 300_000


class Budget:
    """The limits of one ``load_file`` call, and its clock."""

    def __init__(self, limits: LoadLimits, source: str) -> None:
        self.limits = limits
        self.source = source
        self.started = time.monotonic()
        timeout = limits.timeout_s
        self.deadline = self.started + timeout if timeout else math.inf
        self.notes: list[str] = []  # warnings about the file as a whole (a limit that was reached)

    @property
    def max_chars(self) -> int:
        return self.limits.max_document_chars

    def check(self) -> None:
        """Raise ``LoaderError`` once the time budget is spent (cheap enough to call per element)."""
        if time.monotonic() > self.deadline:
            raise LoaderError(
                f"parsing took longer than {self.limits.timeout_s:g} s (limit loader_timeout_s); not indexed",
                source=self.source,
            )

    @property
    def max_sections(self) -> int:
        return self.limits.max_sections

    def sections_warning(self, what: str = "headings") -> str:
        if what == "records":
            return (
                f"records after the first {self.max_sections:,} were not read (limit max_sections_per_file)"
            )
        return (
            f"more than {self.max_sections:,} sections: later headings are kept as text "
            "(limit max_sections_per_file)"
        )

    def truncated_warning(self) -> str:
        return (
            f"text cut off at {self.max_chars:,} characters (limit max_document_chars); "
            "the rest is not indexed"
        )

    def cap(self, text: str, warnings: list[str]) -> str:
        """``text`` cut to ``max_chars`` (at a line break when one is near), with a warning when cut."""
        if len(text) <= self.max_chars:
            return text
        cut = text.rfind("\n", self.max_chars * 9 // 10, self.max_chars)
        warnings.append(self.truncated_warning())
        return text[: cut if cut > 0 else self.max_chars]


def cap_sections(sections: list[Section], max_chars: int) -> tuple[list[Section], bool]:
    """The leading sections holding at most ``max_chars`` characters of text; True if any was cut."""
    kept: list[Section] = []
    left = max_chars
    for section in sections:
        if len(section.text) <= left:
            kept.append(section)
            left -= len(section.text)
            continue
        if left > 0:
            text = section.text[:left].rstrip()
            if text.strip():
                kept.append(section.model_copy(update={"text": text}))
        return kept, True
    return kept, False


def format_size(n_bytes: int) -> str:
    if n_bytes >= MB // 10:
        return f"{n_bytes / MB:.1f} MB"
    if n_bytes >= 1024:
        return f"{n_bytes / 1024:.1f} KB"
    return f"{n_bytes} bytes"


def check_file(path: Path, max_bytes: int, source: str) -> int:
    """Stat the file (without reading it) and reject what cannot be loaded; returns its size."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise LoaderError("file not found", source=source) from None
    except PermissionError:
        raise LoaderError("permission denied", source=source) from None
    except OSError as exc:
        raise LoaderError(f"cannot read file ({exc.strerror or exc})", source=source) from None
    if stat.S_ISDIR(st.st_mode):
        raise LoaderError("is a directory", source=source)
    if not stat.S_ISREG(st.st_mode):
        raise LoaderError("not a regular file", source=source)
    if st.st_size > max_bytes:
        raise LoaderError(
            f"file too large ({format_size(st.st_size)} > {format_size(max_bytes)} limit)", source=source
        )
    if st.st_size == 0:
        raise LoaderError("empty file", source=source)
    return st.st_size


def read_bytes(path: Path, max_bytes: int, source: str) -> bytes:
    """Read a whole file, never more than ``max_bytes`` (the size is checked before reading)."""
    size = check_file(path, max_bytes, source)
    try:
        with path.open("rb") as fh:
            # read(n) allocates n bytes up front: ask for the size stat() gave (one more shows growth)
            data = fh.read(min(size, max_bytes) + 1)
            if len(data) > size:  # it grew since stat(): read on, up to the limit
                data += fh.read(max_bytes + 1 - len(data))
    except PermissionError:
        raise LoaderError("permission denied", source=source) from None
    except OSError as exc:
        raise LoaderError(f"cannot read file ({exc.strerror or exc})", source=source) from None
    if len(data) > max_bytes:  # it grew between stat() and read()
        raise LoaderError(f"file too large (> {format_size(max_bytes)} limit)", source=source)
    if not data:
        raise LoaderError("empty file", source=source)
    return data


def decode_text(data: bytes, source: str) -> tuple[str, list[str]]:
    """Decode the bytes of a text file; returns the text and any warnings.

    UTF-16/32 with a BOM are honoured; otherwise NUL bytes in the first 8 KB mean binary content.
    UTF-8 (with or without BOM) is expected; anything else is decoded as cp1252 with a warning.
    """
    warnings: list[str] = []
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            text = data.decode(codec, errors="replace")
            break
    else:
        if b"\x00" in data[:SNIFF_BYTES]:
            raise LoaderError("binary content (NUL bytes) in a text file", source=source)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
            warnings.append("not valid UTF-8; decoded as cp1252")
    if "\x00" in text:
        warnings.append(f"{text.count(chr(0))} NUL characters removed")
        text = text.replace("\x00", "")
    return text, warnings


def normalise(text: str) -> str:
    """``\\r\\n``/``\\r`` → ``\\n``, no trailing spaces on lines, no NULs, no blank lines at either end."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _TRAILING_WS.sub("", text)
    return text.strip("\n")


def is_blank(text: str) -> bool:
    return not text.strip()


def content_hash(title: str | None, sections: list[Section], tags: list[str]) -> str:
    """sha256 of everything that ends up in the chunks: title, tags, and each section's path, page, text."""
    payload = json.dumps(
        [title or "", sorted(tags), [[s.heading_path, s.page, s.text] for s in sections]],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def absolute_url(value: str) -> str | None:
    """``value`` when it is an absolute http(s) URL with a host (at most ``MAX_URL_CHARS``), else None."""
    value = value.strip()
    if not value or len(value) > MAX_URL_CHARS or _URL_BAD_CHARS.search(value):
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return value


def document_url(value: object, what: str, warnings: list[str]) -> str | None:
    """The public address a document gives for itself (front matter ``url:``, a canonical link, a record's
    ``url``): only an absolute http(s) URL is kept; anything else is ignored with a warning."""
    if not value or (isinstance(value, str) and not value.strip()):
        return None
    url = absolute_url(value) if isinstance(value, str) else None
    if url is None:
        shown = value[:80] if isinstance(value, str) else type(value).__name__
        warnings.append(f"{what} {shown!r} ignored: not an absolute http(s) URL")
    return url


def clean_anchor(value: object) -> str | None:
    """A heading id as the document gives it, when usable as a link fragment (never made up)."""
    if not isinstance(value, str):
        return None
    value = value.strip().removeprefix("#")
    if not value or len(value) > MAX_ANCHOR_CHARS or _URL_BAD_CHARS.search(value):
        return None
    return value


def docutils_id(label: str) -> str | None:
    """The HTML id docutils (and so Sphinx) gives a reStructuredText label: lower case, ASCII, runs of
    other characters as one hyphen, no leading digits or hyphens (``docutils.nodes.make_id``)."""
    text = unicodedata.normalize("NFKD", label.lower()).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-z0-9]+", "-", " ".join(text.split()))
    return clean_anchor(re.sub(r"^[-0-9]+|-+$", "", text))


def make_document(
    *,
    source: str,
    title: str | None,
    doc_type: str,
    sections: list[Section],
    tags: list[str] | None = None,
    warnings: list[str] | None = None,
    url: str | None = None,
) -> Document:
    tags = unique_tags(list(tags or []))
    warnings = list(warnings or [])
    if len(tags) > MAX_DOCUMENT_TAGS:
        warnings.append(f"{len(tags)} tags; the first {MAX_DOCUMENT_TAGS} are kept")
        tags = tags[:MAX_DOCUMENT_TAGS]
    tags = [t[:MAX_TAG_CHARS] for t in tags]
    return Document(
        source=source,
        title=title or None,
        doc_type=doc_type,
        sections=sections,
        content_hash=content_hash(title or None, sections, tags),
        tags=tags,
        warnings=warnings,
        url=url,
    )


def first_line_title(text: str, fallback: str) -> str:
    """The first non-empty line if it is short enough to be a title, else ``fallback``."""
    for line in text.split("\n"):
        line = line.strip()
        if line:
            return line if len(line) < MAX_TITLE_CHARS else fallback
    return fallback


def short_error(exc: BaseException, limit: int = 120) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return msg if len(msg) <= limit else msg[: limit - 1] + "…"


class HeadingStack:
    """The current heading path while walking a document; remembers the first level-1 heading."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str, str | None]] = []
        self.first_h1: str | None = None

    def push(self, level: int, text: str, anchor: str | None = None) -> None:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text, anchor))
        if level == 1 and self.first_h1 is None:
            self.first_h1 = text

    @property
    def path(self) -> list[str]:
        return [h for _, h, _ in self._stack]

    @property
    def anchor(self) -> str | None:
        """The id of the innermost heading above the current text that has one (a heading without an id
        links to the enclosing section that has one; no heading with an id: no anchor)."""
        return next((a for _, _, a in reversed(self._stack) if a), None)
