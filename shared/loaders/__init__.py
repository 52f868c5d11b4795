"""Document loaders: Markdown, plain text / reStructuredText, HTML, PDF and BEIR JSON Lines.

``load_file`` either returns documents or raises :class:`~shared.errors.LoaderError` with a short,
user-facing ``reason``; bad content never escapes as any other exception.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from shared.errors import LoaderError
from shared.models import Document

from ._common import read_bytes, short_error
from .html import load_html
from .jsonl import load_jsonl
from .markdown import load_markdown
from .pdf import load_pdf
from .text import load_text

__all__ = ["DEFAULT_MAX_BYTES", "SUPPORTED_SUFFIXES", "iter_files", "load_file"]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024

_Loader = Callable[[Path, bytes, str], list[Document]]

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


def load_file(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, source: str | None = None) -> list[Document]:
    """Load the documents in ``path`` (one, or one per record for ``.jsonl``).

    ``source`` defaults to ``str(path)``; JSON Lines records use their ``_id`` instead. The size is
    checked with ``stat()`` before anything is read. Raises ``LoaderError`` for anything unloadable.
    """
    path = Path(path)
    src = str(path) if source is None else source
    suffix = path.suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        shown = suffix or "(none)"
        raise LoaderError(f"unsupported file type '{shown}'", source=src)
    data = read_bytes(path, max_bytes, src)
    try:
        return loader(path, data, src)
    except LoaderError:
        raise
    except RecursionError:
        raise LoaderError("content is too deeply nested", source=src) from None
    except MemoryError:
        raise
    except Exception as exc:  # a loader bug or a parser surprise: still a LoaderError for the caller
        raise LoaderError(f"could not parse {suffix[1:]} file: {short_error(exc)}", source=src) from None


def _hidden(name: str) -> bool:
    return name.startswith(".")


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The files given, and every file under the folders given (recursively), each path once.

    Folders are walked in sorted order, skipping hidden files and folders (names starting with '.')
    below them; symlinked folders are not followed. Paths that do not exist are yielded as given, so
    that ``load_file`` reports them.
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
