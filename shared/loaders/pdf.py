"""PDF loader (pypdf): one section per page that has text.

Untrusted PDFs are bounded: every stream may inflate to at most ``max_pdf_stream_bytes`` (a FlateDecode
bomb stops there), a page's content stream to :data:`MAX_PDF_PAGE_OPERANDS` tokens; a PDF of more than
``max_pdf_pages`` pages is rejected before its page tree is walked; extraction stops at
``max_document_chars``; the time budget is checked between pages; and the streams a page decoded are
dropped from pypdf's object cache after it, so memory does not grow with the page count. pypdf never
runs an external program (``jbig2dec``) for us.
"""

from __future__ import annotations

import io
import itertools
import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pypdf import PasswordType, PdfReader
from pypdf.errors import LimitReachedError
from pypdf.generic import StreamObject

from shared.errors import LoaderError
from shared.models import Document, Section

from ._common import (
    MAX_PDF_PAGE_OPERANDS,
    MAX_TITLE_CHARS,
    Budget,
    first_line_title,
    is_blank,
    make_document,
    normalise,
    short_error,
)

#: pypdf logs recoverable problems ("Ignoring wrong pointing object ...") at WARNING on the "pypdf"
#: logger. They are captured as Document.warnings instead of reaching the user's console. The lock
#: keeps two concurrent loads from collecting each other's messages (pypdf is pure Python anyway).
_PYPDF_LOGGER = "pypdf"
_capture_lock = threading.Lock()
_MAX_WARNINGS = 3


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = " ".join(record.getMessage().split())
        except Exception:  # a malformed log call must not break loading
            msg = str(record.msg)
        if msg and msg not in self.messages:
            self.messages.append(msg)


@contextmanager
def _captured_pypdf_logs() -> Iterator[list[str]]:
    logger = logging.getLogger(_PYPDF_LOGGER)
    handler = _Collect()
    with _capture_lock:
        old_propagate, old_level = logger.propagate, logger.level
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET or logger.level > logging.WARNING:
            logger.setLevel(logging.WARNING)
        try:
            yield handler.messages
        finally:
            logger.removeHandler(handler)
            logger.propagate = old_propagate
            logger.setLevel(old_level)


def _limits(budget: Budget) -> AbstractContextManager[object]:
    """pypdf's resource limits for this load (a context variable: other threads keep theirs)."""
    try:
        from pypdf import apply_configuration  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # pypdf < 7: only its fixed limits (75 MB per stream) apply
        return nullcontext()
    n = budget.limits.max_pdf_stream_bytes
    cm: AbstractContextManager[object] = apply_configuration(
        zlib_maximum_output_length=n,
        lzw_maximum_output_length=n,
        run_length_maximum_output_length=n,
        brotli_maximum_output_length=n,
        jbig2_maximum_output_length=n,
        array_based_stream_maximum_output_length=n,
        image_maximum_buffer_size=n,
        stream_parsing_work_maximum_count=MAX_PDF_PAGE_OPERANDS,
        # a /Count that lies about the page tree: the walk stops well past max_pdf_pages
        page_tree_maximum_entries=2 * budget.limits.max_pdf_pages + 64,
        jbig2dec_binary=None,
    )
    return cm


def _over_limit(exc: BaseException) -> str:
    return f"PDF exceeds a safety limit: {short_error(exc)}"


def _stream_limit(budget: Budget) -> str:
    mb = budget.limits.max_pdf_stream_bytes / (1024 * 1024)
    return f"PDF content exceeds the stream limits (max_pdf_stream_mb = {mb:g}; a decompression bomb?)"


def _declared_pages(reader: PdfReader) -> int | None:
    """The page count the document claims (``/Count`` of the page tree root), read without the walk."""
    try:
        pages: Any = reader.root_object["/Pages"].get_object()
        return int(pages["/Count"])
    except Exception:
        return None


class _StreamCache:
    """Drops the stream objects (decoded content, fonts' maps) pypdf cached while reading a page."""

    def __init__(self, reader: PdfReader) -> None:
        self.cache = getattr(reader, "resolved_objects", None)
        self.kept = 0  # entries before this index were checked: none of them is a stream

    def release(self) -> None:
        cache = self.cache
        if not isinstance(cache, dict):
            return
        fresh = itertools.islice(cache.items(), self.kept, None)
        for key in [k for k, v in fresh if isinstance(v, StreamObject)]:
            del cache[key]
        self.kept = len(cache)


def _open(data: bytes, source: str, budget: Budget) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
    except LimitReachedError as exc:
        raise LoaderError(_over_limit(exc), source=source) from None
    except Exception as exc:
        raise LoaderError(f"PDF is truncated or corrupt: {short_error(exc)}", source=source) from None
    if encrypted:
        try:
            result = reader.decrypt("")
        except Exception:  # e.g. AES without the `cryptography` package
            raise LoaderError("PDF is encrypted", source=source) from None
        if result == PasswordType.NOT_DECRYPTED:
            raise LoaderError("PDF is encrypted", source=source)
    return reader


def _metadata_title(reader: PdfReader) -> str | None:
    try:
        meta = reader.metadata
        title = meta.title if meta is not None else None
    except Exception:
        return None
    if not isinstance(title, str):
        return None
    title = " ".join(title.split())
    return title if title and len(title) < 2 * MAX_TITLE_CHARS else None


def load_pdf(path: Path, data: bytes, source: str, budget: Budget) -> list[Document]:
    if b"%PDF-" not in data[:1024]:
        raise LoaderError("not a PDF file (no %PDF header)", source=source)
    with _captured_pypdf_logs() as logged, _limits(budget):
        reader = _open(data, source, budget)
        n_pages = _page_count(reader, source, budget.limits.max_pdf_pages)
        pages = _read_pages(reader, n_pages, budget)
        title = _metadata_title(reader)
    warnings = pages.warnings(n_pages, budget, source)
    warnings.extend(f"pypdf: {m}" for m in logged[:_MAX_WARNINGS])
    if len(logged) > _MAX_WARNINGS:
        warnings.append(f"pypdf: {len(logged) - _MAX_WARNINGS} more warnings")
    return [
        make_document(
            source=source,
            title=title or first_line_title(pages.sections[0].text, path.stem),
            doc_type="pdf",
            sections=pages.sections,
            warnings=warnings,
        )
    ]


def _page_count(reader: PdfReader, source: str, limit: int) -> int:
    """The number of pages, checked against ``max_pdf_pages`` (first as declared, then as counted)."""
    declared = _declared_pages(reader)
    if declared is not None and declared > limit:
        raise LoaderError(
            f"PDF has too many pages ({declared:,} > {limit:,} limit, max_pdf_pages)", source=source
        )
    try:
        n_pages = len(reader.pages)
    except LimitReachedError as exc:
        raise LoaderError(_over_limit(exc), source=source) from None
    except Exception as exc:
        raise LoaderError(f"PDF is truncated or corrupt: {short_error(exc)}", source=source) from None
    if n_pages == 0:
        raise LoaderError("PDF has no pages", source=source)
    if n_pages > limit:
        raise LoaderError(
            f"PDF has too many pages ({n_pages:,} > {limit:,} limit, max_pdf_pages)", source=source
        )
    return n_pages


@dataclass
class _Pages:
    """What the pages of one PDF gave: a section per page with text, and the pages that gave none."""

    sections: list[Section] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # pages whose text could not be extracted
    limited: list[int] = field(default_factory=list)  # pages over a stream limit
    cut: bool = False  # the document's character limit was reached

    def warnings(self, n_pages: int, budget: Budget, source: str) -> list[str]:
        """The warnings for the document, or the error when no page gave text."""
        warnings = [budget.truncated_warning()] if self.cut else []
        if self.limited:
            warnings.append(
                f"{len(self.limited)} of {n_pages} pages exceed the PDF stream limits and were skipped "
                f"({_pages(self.limited)})"
            )
        if self.failed:
            warnings.append(
                f"text extraction failed on {len(self.failed)} of {n_pages} pages ({_pages(self.failed)})"
            )
        if not self.sections:
            if self.limited and len(self.failed) + len(self.limited) == n_pages:
                raise LoaderError(_stream_limit(budget) + ": no page could be read", source=source)
            if self.failed and len(self.failed) == n_pages:
                raise LoaderError("PDF is truncated or corrupt: no page could be read", source=source)
            raise LoaderError("no extractable text (scanned PDF?)", source=source)
        empty = n_pages - len(self.sections) - len(self.failed) - len(self.limited)
        if empty and not self.cut:
            warnings.append(f"{empty} of {n_pages} pages have no extractable text")
        return warnings


def _read_pages(reader: PdfReader, n_pages: int, budget: Budget) -> _Pages:
    pages = _Pages()
    streams = _StreamCache(reader)
    streams.release()
    chars = 0
    for number in range(1, n_pages + 1):
        budget.check()
        try:
            text = reader.pages[number - 1].extract_text() or ""
        except LimitReachedError:
            pages.limited.append(number)
            continue
        except Exception:
            pages.failed.append(number)
            continue
        finally:
            streams.release()
        text = normalise(text)
        if is_blank(text):
            continue
        if chars + len(text) > budget.max_chars:
            text = text[: budget.max_chars - chars].rstrip()
            if not is_blank(text):
                pages.sections.append(Section(text=text, heading_path=[], page=number))
            pages.cut = True
            break
        chars += len(text)
        pages.sections.append(Section(text=text, heading_path=[], page=number))
    return pages


def _pages(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:10])) + (", …" if len(numbers) > 10 else "")
