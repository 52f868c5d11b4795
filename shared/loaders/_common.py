"""Helpers shared by the loaders: bounded reading, text decoding, normalisation, hashing."""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import stat
from pathlib import Path

from shared.errors import LoaderError
from shared.models import Document, Section

MB = 1024 * 1024
#: How many leading bytes are sniffed for NUL bytes (the usual "is it binary?" heuristic).
SNIFF_BYTES = 8192
#: A first line longer than this is not used as a title.
MAX_TITLE_CHARS = 100

_TRAILING_WS = re.compile(r"[ \t\f\v]+$", re.MULTILINE)


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
    check_file(path, max_bytes, source)
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
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


def make_document(
    *,
    source: str,
    title: str | None,
    doc_type: str,
    sections: list[Section],
    tags: list[str] | None = None,
    warnings: list[str] | None = None,
) -> Document:
    tags = list(dict.fromkeys(t for t in (tags or []) if t))
    return Document(
        source=source,
        title=title or None,
        doc_type=doc_type,
        sections=sections,
        content_hash=content_hash(title or None, sections, tags),
        tags=tags,
        warnings=list(warnings or []),
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
        self._stack: list[tuple[int, str]] = []
        self.first_h1: str | None = None

    def push(self, level: int, text: str) -> None:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        if level == 1 and self.first_h1 is None:
            self.first_h1 = text

    @property
    def path(self) -> list[str]:
        return [h for _, h in self._stack]
