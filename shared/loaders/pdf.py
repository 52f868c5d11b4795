"""PDF loader (pypdf): one section per page that has text."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pypdf import PasswordType, PdfReader

from shared.errors import LoaderError
from shared.models import Document, Section

from ._common import MAX_TITLE_CHARS, first_line_title, is_blank, make_document, normalise, short_error

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


def _open(data: bytes, source: str) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
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


def load_pdf(path: Path, data: bytes, source: str) -> list[Document]:
    if b"%PDF-" not in data[:1024]:
        raise LoaderError("not a PDF file (no %PDF header)", source=source)
    warnings: list[str] = []
    sections: list[Section] = []
    with _captured_pypdf_logs() as logged:
        reader = _open(data, source)
        try:
            n_pages = len(reader.pages)
        except Exception as exc:
            raise LoaderError(f"PDF is truncated or corrupt: {short_error(exc)}", source=source) from None
        if n_pages == 0:
            raise LoaderError("PDF has no pages", source=source)
        failed: list[int] = []
        for number in range(1, n_pages + 1):
            try:
                text = reader.pages[number - 1].extract_text() or ""
            except Exception:
                failed.append(number)
                continue
            text = normalise(text)
            if not is_blank(text):
                sections.append(Section(text=text, heading_path=[], page=number))
        title = _metadata_title(reader)
    if failed:
        shown = ", ".join(map(str, failed[:10])) + (", …" if len(failed) > 10 else "")
        warnings.append(f"text extraction failed on {len(failed)} of {n_pages} pages ({shown})")
    if not sections:
        if failed and len(failed) == n_pages:
            raise LoaderError("PDF is truncated or corrupt: no page could be read", source=source)
        raise LoaderError("no extractable text (scanned PDF?)", source=source)
    empty = n_pages - len(sections) - len(failed)
    if empty:
        warnings.append(f"{empty} of {n_pages} pages have no extractable text")
    warnings.extend(f"pypdf: {m}" for m in logged[:_MAX_WARNINGS])
    if len(logged) > _MAX_WARNINGS:
        warnings.append(f"pypdf: {len(logged) - _MAX_WARNINGS} more warnings")
    return [
        make_document(
            source=source,
            title=title or first_line_title(sections[0].text, path.stem),
            doc_type="pdf",
            sections=sections,
            warnings=warnings,
        )
    ]
