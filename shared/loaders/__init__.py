"""Document loaders: Markdown, plain text / reStructuredText, HTML, PDF and BEIR JSON Lines.

``load_file`` either returns documents or raises :class:`~shared.errors.LoaderError` with a short,
user-facing ``reason``; bad content never escapes as any other exception.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

from shared.errors import LoaderError
from shared.models import Document

from ._common import (
    MAX_PDF_PAGE_OPERANDS,
    Budget,
    LoadLimits,
    cap_sections,
    format_size,
    make_document,
    read_bytes,
    short_error,
)
from .html import load_html
from .jsonl import load_jsonl
from .markdown import load_markdown
from .pdf import load_pdf
from .text import load_text

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_PDF_PAGE_OPERANDS",
    "SUPPORTED_SUFFIXES",
    "LoadLimits",
    "iter_files",
    "load_file",
    "unsupported_type",
]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024

_Loader = Callable[[Path, bytes, str, Budget], list[Document]]

_LOADERS: dict[str, _Loader] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".mdx": load_markdown,
    ".txt": load_text,
    ".text": load_text,
    ".rst": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".jsonl": load_jsonl,
}

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_LOADERS)


def load_file(
    path: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    source: str | None = None,
    limits: LoadLimits | None = None,
) -> list[Document]:
    """Load the documents in ``path`` (one, or one per record for ``.jsonl``).

    ``source`` defaults to ``str(path)``; JSON Lines records use their ``_id`` instead. The size is
    checked with ``stat()`` before anything is read, and the suffix before that: an unsupported file is
    never opened. ``limits`` (default :class:`LoadLimits`) bound the work the content may cause. Raises
    ``LoaderError`` for anything unloadable.
    """
    path = Path(path)
    src = str(path) if source is None else source
    loader = _loader_for(path, src)
    return _parse(loader, path, read_bytes(path, max_bytes, src), src, limits)


def load_bytes(
    data: bytes,
    *,
    name: str,
    source: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    limits: LoadLimits | None = None,
) -> list[Document]:
    """Load the documents in ``data``, the content of a file called ``name`` that is already in memory
    (an S3 object): the same loaders, limits and errors as :func:`load_file`, no file written. ``name``
    gives the type (its suffix) and the fallback title (its stem)."""
    path = Path(PurePosixPath(name).name or "object")
    loader = _loader_for(path, source)
    if len(data) > max_bytes:
        raise LoaderError(
            f"file too large ({format_size(len(data))} > {format_size(max_bytes)} limit)", source=source
        )
    if not data:
        raise LoaderError("empty file", source=source)
    return _parse(loader, path, data, source, limits)


def unsupported_type(name: str) -> str:
    """The reason a file called ``name`` is not read: its extension, or that it has none."""
    suffix = PurePosixPath(name).suffix.lower()
    return f"unsupported file type '{suffix}'" if suffix else "unsupported file type: no file extension"


def _loader_for(path: Path, source: str) -> _Loader:
    loader = _LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoaderError(unsupported_type(path.name), source=source)
    return loader


def _parse(loader: _Loader, path: Path, data: bytes, src: str, limits: LoadLimits | None) -> list[Document]:
    suffix = path.suffix.lower()
    budget = Budget(limits or LoadLimits(), src)
    try:
        docs = loader(path, data, src, budget)
    except LoaderError:
        raise
    except RecursionError:
        raise LoaderError("content is too deeply nested", source=src) from None
    except MemoryError:
        raise
    except Exception as exc:  # a loader bug or a parser surprise: still a LoaderError for the caller
        raise LoaderError(f"could not parse {suffix[1:]} file: {short_error(exc)}", source=src) from None
    docs = [_capped(doc, budget) for doc in docs]
    if docs and budget.notes:
        docs[0].warnings[:] = list(dict.fromkeys([*docs[0].warnings, *budget.notes]))
    return docs


def _capped(doc: Document, budget: Budget) -> Document:
    """The safety net behind each loader's own early cut: no document exceeds ``max_document_chars``."""
    sections, cut = cap_sections(doc.sections, budget.max_chars)
    if not cut:
        return doc
    if not sections:
        raise LoaderError("no text within the max_document_chars limit", source=budget.source)
    return make_document(
        source=doc.source,
        title=doc.title,
        doc_type=doc.doc_type,
        sections=sections,
        tags=doc.tags,
        warnings=list(dict.fromkeys([*doc.warnings, budget.truncated_warning()])),
        url=doc.url,
    )


def _hidden(name: str) -> bool:
    return name.startswith(".")


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The files given, and every file under the folders given (recursively), each path once.

    Folders are walked in sorted order, skipping hidden files and folders (names starting with '.')
    below them; symlinked folders are not followed. Paths that do not exist are yielded as given, so
    that ``load_file`` reports them. A symlinked file found in a folder is yielded too: check it with
    :func:`link_problem` before reading it.
    """
    seen: set[Path] = set()
    for given in paths:
        root = Path(given)
        if not root.is_dir():
            if root not in seen:
                seen.add(root)
                yield root
            continue
        found: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(root, onerror=None, followlinks=False):
            dirnames[:] = [d for d in dirnames if not _hidden(d)]
            found.extend(Path(dirpath, f) for f in filenames if not _hidden(f))
        for path in sorted(found):
            if path not in seen:
                seen.add(path)
                yield path


def link_problem(path: Path, roots: Iterable[Path]) -> str | None:
    """Why a file found by :func:`iter_files` must not be read, or ``None``.

    A symlink found inside a folder must stay inside it: a link to ``~/.ssh/id_rsa`` or to a settings
    file holding API keys would otherwise be indexed, returned by search and uploaded by push. A link
    that loops or points nowhere cannot be read. Files given by name (not found in a folder) are the
    user's explicit choice and are followed.
    """
    if not path.is_symlink():
        return None
    root = next((r for r in roots if path.is_relative_to(r)), None)
    if root is None:
        return None
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return "symlink is broken or loops"
    if not target.is_relative_to(root.resolve()):
        return f"symlink points outside the folder {root}"
    return None
