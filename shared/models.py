"""Pydantic models: the contract shared by the CLI's ``--json`` output, the API and the SDK."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class StrictModel(BaseModel):
    """The base of every contract model: unknown fields are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- documents


#: A collection is a named document set (``ingest --collection NAME``; an S3 prefix in the cloud). Documents
#: ingested without one belong to :data:`DEFAULT_COLLECTION`.
DEFAULT_COLLECTION = "default"
COLLECTION_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
#: Longest URL kept for a citation or a page (browsers cope with more; documentation links never need it).
MAX_URL_CHARS = 2048


class Section(StrictModel):
    """A run of text under one heading path (and, for PDFs, on one page)."""

    text: str
    heading_path: list[str] = Field(default_factory=list)
    page: int | None = None
    anchor: str | None = Field(
        default=None, description="The id of the heading this section starts at, when the document gives one."
    )


class Document(StrictModel):
    """A loaded document, before chunking."""

    source: str = Field(description="Path of the file, or the `_id` of a JSON Lines record.")
    title: str | None = None
    doc_type: str = Field(description="Loader that produced it: markdown, text, html, pdf, jsonl.")
    sections: list[Section]
    content_hash: str = Field(description="sha256 of the normalised text of the whole document.")
    tags: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    url: str | None = Field(
        default=None,
        description="Public address of the page: front matter `url:` or HTML `<link rel=canonical>`.",
    )

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)


class Chunk(StrictModel):
    chunk_id: str
    source: str
    title: str | None = None
    text: str
    heading_path: list[str] = Field(default_factory=list)
    position: int = Field(ge=0, description="Index of the chunk within its document.")
    page: int | None = None
    content_hash: str = Field(
        description="Version of the document this chunk came from: hash of its content and chunking settings."
    )
    tags: list[str] = Field(default_factory=list)
    n_tokens: int = 0
    url: str | None = Field(
        default=None, description="Public link to the passage (page URL plus heading anchor), when known."
    )
    collection: str = DEFAULT_COLLECTION


#: Tags in one filter (after removing repeats): each is one clause for the store, and a query tree of
#: thousands of clauses crashes ChromaDB's native code. A document keeps at most :data:`MAX_DOCUMENT_TAGS`.
MAX_FILTER_TAGS = 20
MAX_DOCUMENT_TAGS = 50
#: Characters in one tag, and in a source prefix (a path or an S3 URI).
MAX_TAG_CHARS = 100
MAX_SOURCE_PREFIX_CHARS = 4096


def unique_tags(value: Any) -> Any:
    """Tags in first-seen order without repeats or blanks (anything else is left for validation)."""
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return list(dict.fromkeys(t.strip() for t in value if t.strip()))
    return value


class SearchFilter(StrictModel):
    source_prefix: str | None = Field(
        default=None,
        max_length=MAX_SOURCE_PREFIX_CHARS,
        description="Only documents whose source starts so.",
    )
    tags: list[Annotated[str, Field(max_length=MAX_TAG_CHARS)]] = Field(
        default_factory=list,
        max_length=MAX_FILTER_TAGS,
        description=f"Only documents carrying all these tags (at most {MAX_FILTER_TAGS}; repeats ignored).",
    )
    collection: str | None = Field(
        default=None,
        pattern=COLLECTION_PATTERN,
        description="Only this collection (a publishable key is always held to its own).",
    )

    @field_validator("tags", mode="before")
    @classmethod
    def _unique(cls, value: Any) -> Any:
        return unique_tags(value)

    def matches(self, source: str, tags: list[str], collection: str = DEFAULT_COLLECTION) -> bool:
        if self.source_prefix and not source.startswith(self.source_prefix):
            return False
        if self.collection is not None and collection != self.collection:
            return False
        return all(t in tags for t in self.tags)

    @property
    def is_empty(self) -> bool:
        return not self.source_prefix and not self.tags and self.collection is None


class ScoredChunk(StrictModel):
    """A chunk returned by one retrieval leg (or by the fusion of both)."""

    chunk: Chunk
    score: float


# --------------------------------------------------------------------------- search / ask


class SearchHit(StrictModel):
    chunk_id: str
    source: str
    title: str | None = None
    score: float
    text: str
    heading_path: list[str] = Field(default_factory=list)
    page: int | None = None
    url: str | None = Field(
        default=None, description="Public link to the passage, when known; never made up."
    )
    collection: str = DEFAULT_COLLECTION


class SearchResponse(StrictModel):
    query: str
    hits: list[SearchHit]


LOCATION_SEPARATOR = " › "


def heading_trail(title: str | None, heading_path: list[str]) -> list[str]:
    """The title and the headings above a passage, a title that is also the first heading named once."""
    parts = [p for p in [title, *heading_path] if p]
    return [p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1]]


def location_of(title: str | None, heading_path: list[str]) -> str | None:
    """Where a passage sits, for people: ``"Title › Heading › Subheading"``."""
    return LOCATION_SEPARATOR.join(heading_trail(title, heading_path)) or None


class Citation(StrictModel):
    n: int = Field(ge=1)
    chunk_id: str
    source: str
    quote: str
    title: str | None = None
    page: int | None = None
    heading_path: list[str] = Field(default_factory=list, description="Headings above the quoted passage.")
    location: str | None = Field(
        default=None, description='Where the quote comes from, for people: "Title › Heading › Subheading".'
    )
    url: str | None = Field(
        default=None, description="Public link to the cited passage, when known (null, never a made-up link)."
    )

    @classmethod
    def for_chunk(cls, n: int, chunk: Chunk, quote: str) -> Citation:
        """Citation ``[n]`` of ``chunk``: its source, page, heading path and location."""
        return cls(
            n=n,
            chunk_id=chunk.chunk_id,
            source=chunk.source,
            quote=quote,
            title=chunk.title,
            page=chunk.page,
            heading_path=list(chunk.heading_path),
            location=location_of(chunk.title, chunk.heading_path),
            url=chunk.url,
        )


class HandoffOffer(StrictModel):
    """How the customer reaches a person, as the answer offers it (see :mod:`shared.sites`)."""

    kind: Literal["form", "mailto", "webhook"] = Field(
        description="form: open `url` (a support form, pre-filled); mailto: open `url` (an e-mail draft); "
        "webhook: send `POST /feedback` with `handoff: true` and the server files the ticket."
    )
    url: str | None = Field(default=None, description="For form and mailto, pre-filled with the question.")


class AskResponse(StrictModel):
    question: str
    decision: Literal["answer", "refuse"]
    answer: str | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    reasons: list[str] = Field(default_factory=list)
    citations: list[Citation] = Field(default_factory=list)
    escalation: str | None = Field(
        default=None, description="What the user can do next when the question is refused."
    )
    provider: str = Field(
        default="extractive",
        description='What produced the answer: "extractive" (offline, quoted sentences) or an LLM provider.',
    )
    interaction_id: str | None = Field(
        default=None,
        description="Names this question and answer for `POST /feedback` (null when nothing was recorded).",
    )
    handoff: HandoffOffer | None = Field(
        default=None, description="The collection's way to contact support, when it has one."
    )


class BatchError(StrictModel):
    """One line of ``--batch`` output whose input could not be processed."""

    id: str | int | None = None
    error: str


# --------------------------------------------------------------------------- ingest / status


class FileReport(StrictModel):
    path: str
    status: Literal["indexed", "unchanged", "skipped", "error", "removed"]
    documents: int = 0
    chunks: int = 0
    reason: str | None = None
    warnings: list[str] = Field(default_factory=list)


class IngestSummary(StrictModel):
    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    documents_indexed: int = 0
    documents_removed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0
    files: list[FileReport] = Field(default_factory=list)


class RemoveSummary(StrictModel):
    sources_removed: list[str] = Field(default_factory=list)
    not_found: list[str] = Field(default_factory=list)
    chunks_removed: int = 0


class IndexHealth(StrictModel):
    ok: bool
    detail: str | None = None


class StatusResponse(StrictModel):
    home: str
    store_path: str
    embedder: str
    embedder_dimension: int
    documents: int
    chunks: int
    lexical_chunks: int
    health: IndexHealth


# --------------------------------------------------------------------------- HTTP API: requests and errors

MAX_REQUEST_TEXT_CHARS = 10_000
"""Hard ceiling on a question or query in an API request; the ``max_question_chars`` setting (2000 by
default) is checked on top of it, by :func:`check_request_text`."""


class RequestTextError(ValueError):
    """A question or query that breaks :func:`check_request_text`; ``kind`` is ``empty`` or ``too_long``."""

    def __init__(self, message: str, *, kind: Literal["empty", "too_long"]) -> None:
        super().__init__(message)
        self.kind = kind


def check_request_text(text: str, what: str, limit: int) -> str:
    """The one rule for a question or query, wherever it arrives (service, HTTP API, remote client): not
    blank, and at most ``limit`` characters as sent (the OpenAPI ``maxLength``). Returns it stripped."""
    if not text.strip():
        raise RequestTextError(f"the {what} is empty", kind="empty")
    if len(text) > limit:
        raise RequestTextError(
            f"the {what} is {len(text)} characters long; the limit is {limit}", kind="too_long"
        )
    return text.strip()


class QueryRequest(StrictModel):
    """Body of ``POST /query``: the same inputs as ``rag-explorer ask``."""

    question: str = Field(
        min_length=1, max_length=MAX_REQUEST_TEXT_CHARS, description="The question to answer."
    )
    max_chunks: int | None = Field(
        default=None, ge=1, le=20, description="Retrieved chunks the answer is drawn from (default 5)."
    )
    confidence_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Refuse below this confidence (default: the server's confidence_threshold, 0.5).",
    )
    filters: SearchFilter | None = Field(default=None, description="Only search some documents.")
    page_url: str | None = Field(
        default=None,
        max_length=MAX_URL_CHARS,
        pattern=r"^https?://[^\s]+$",
        description="The page the customer asked from (the help widget sends it); kept with the interaction.",
    )


class SearchRequest(StrictModel):
    """Body of ``POST /search``: the same inputs as ``rag-explorer search``."""

    query: str = Field(min_length=1, max_length=MAX_REQUEST_TEXT_CHARS, description="The text to search for.")
    k: int | None = Field(default=None, ge=1, le=100, description="Number of hits (default 5).")
    filters: SearchFilter | None = Field(default=None, description="Only search some documents.")


class FieldError(StrictModel):
    """One problem with one field of a request."""

    loc: list[str | int] = Field(description='Where the problem is, e.g. ["body", "question"].')
    type: str = Field(description="Machine-readable kind, e.g. missing, string_too_long, extra_forbidden.")
    msg: str = Field(description="Human-readable explanation.")


def utc_timestamp() -> str:
    """Now, as the API writes times: ISO 8601 in UTC with milliseconds, ``2026-12-04T18:20:01.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ErrorResponse(StrictModel):
    """The body of every error response of the HTTP API."""

    error: str = Field(
        description="Machine-readable code: validation_error, malformed_json, payload_too_large, not_found, "
        "method_not_allowed, unsupported_media_type, store_unavailable, store_error, internal_error."
    )
    message: str = Field(description="Human-readable explanation.")
    details: list[FieldError] = Field(default_factory=list, description="Field errors, for validation_error.")
    request_id: str | None = Field(default=None, description="The API Gateway request id.")
    timestamp: str = Field(description="When the error happened (ISO 8601, UTC).")
