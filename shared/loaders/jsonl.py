"""JSON Lines loader for BEIR corpora: one ``{"_id", "title", "text", ...}`` object per line.

A record's ``url`` (an absolute http(s) URL) is the public address of that document.
"""

from __future__ import annotations

import json
from pathlib import Path

from shared.errors import LoaderError
from shared.models import Document, Section

from ._common import Budget, document_url, make_document, normalise


def _record(line: bytes, seen: set[str]) -> tuple[str, str | None, str, object] | str:
    """(id, title, text, url as given) for a valid record, else the reason it is invalid."""
    try:
        obj = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return "not valid UTF-8"
    except (ValueError, RecursionError):
        return "invalid JSON"
    if not isinstance(obj, dict):
        return "not a JSON object"
    raw_id = obj.get("_id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id).strip():
        return "missing '_id'"
    doc_id = str(raw_id).strip()
    text = obj.get("text")
    if not isinstance(text, str):
        return "missing 'text'"
    raw_title = obj.get("title")
    title = " ".join(raw_title.split()) if isinstance(raw_title, str) else ""
    text = normalise(text)
    if not text.strip():
        if not title:
            return "empty 'text'"
        text = title  # BEIR has a few title-only records
    if doc_id in seen:
        return f"duplicate _id {doc_id!r}"
    seen.add(doc_id)
    return doc_id, title or None, text, obj.get("url")


def load_jsonl(path: Path, data: bytes, source: str, budget: Budget) -> list[Document]:
    docs: list[Document] = []
    seen: set[str] = set()
    invalid = 0
    first_invalid = ""
    capped = False
    for number, line in enumerate(data.split(b"\n"), start=1):
        budget.check()
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if not line.strip():
            continue
        if len(docs) >= budget.max_sections:
            capped = True
            break
        rec = _record(line, seen)
        if isinstance(rec, str):
            invalid += 1
            if not first_invalid:
                first_invalid = f"line {number}: {rec}"
            continue
        doc_id, title, text, raw_url = rec
        sections = [Section(text=text)]
        warnings: list[str] = []
        url = document_url(raw_url, f"record {doc_id[:80]!r}: url", warnings)
        docs.append(
            make_document(
                source=doc_id, title=title, doc_type="jsonl", sections=sections, warnings=warnings, url=url
            )
        )
    if not docs:
        if not invalid:
            raise LoaderError("empty file", source=source)
        raise LoaderError(
            f"no valid JSON Lines records ({invalid} invalid {_lines(invalid)}; first at {first_invalid})",
            source=source,
        )
    if capped:
        docs[0].warnings.append(budget.sections_warning("records"))
    if invalid:
        docs[0].warnings.append(f"{invalid} invalid {_lines(invalid)} skipped (first at {first_invalid})")
    return docs


def _lines(n: int) -> str:
    return "line" if n == 1 else "lines"
