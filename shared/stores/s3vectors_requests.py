"""The Amazon S3 Vectors requests of :mod:`shared.stores.s3vectors`, as plain dictionaries: the index
definition, the vector records, the filters and the queries. No client here: these are unit tested as
data against the botocore service model (``tests/unit/test_s3vectors_requests.py``), and the CDK stack
builds its index from the same constants.

Layout of one chunk (vector key = ``chunk_id``):

- filterable metadata (at most :data:`MAX_FILTERABLE_BYTES` per vector): ``collection`` (string),
  ``tags`` (list, left out when empty) and ``folders`` (the source's ancestor folders, each ending in
  ``/``: S3 Vectors has no prefix operator, so a source-prefix filter is an ``$eq`` on the longest folder
  of the prefix, checked exactly on the results);
- non-filterable metadata (:data:`NON_FILTERABLE_KEYS`): ``text``, what the lexical leg indexes (title,
  headings and text; full-text searchable, :data:`TEXT_SEARCH`), and ``chunk``, the rest of the chunk as
  one JSON string (the text as shown, source, hash, position, link...), so answers need no second read.

One more vector, :data:`MANIFEST_KEY`, records which embedder built the index and the index version (a
token renewed by every write); searches never return it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from shared.models import DEFAULT_COLLECTION, Chunk, SearchFilter

TEMPLATE_VERSION = 1
"""Bump when the layout changes; an index of another version is refused."""

# ---------------------------------------------------------------------------------------- service limits
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-limitations.html
MAX_PUT_VECTORS = 500
MAX_DELETE_VECTORS = 500
MAX_GET_VECTORS = 100
MAX_LIST_RESULTS = 1000
MAX_TOP_K = 100
MAX_REQUEST_BYTES = 20 * 1024 * 1024
PUT_BATCH_BYTES = MAX_REQUEST_BYTES * 4 // 5
"""What one PutVectors request carries at most (estimated JSON size), below the 20 MiB payload limit."""
MAX_FILTERABLE_BYTES = 2 * 1024
MAX_METADATA_BYTES = 40 * 1024
MAX_METADATA_KEYS = 50
MAX_NON_FILTERABLE_KEYS = 10
MAX_KEY_CHARS = 1024
MAX_QUERY_TEXT_CHARS = 1024
MAX_DIMENSION = 4096

# ---------------------------------------------------------------------------------------- the index
TEXT_KEY = "text"
CHUNK_KEY = "chunk"
NON_FILTERABLE_KEYS = (TEXT_KEY, CHUNK_KEY)
TEXT_LANGUAGE = "en"
TEXT_SEARCH = ({"metadataKey": TEXT_KEY, "language": TEXT_LANGUAGE},)
"""Full-text search (BM25) on ``text``; it needs an index in ENHANCED mode."""
DISTANCE_METRIC = "cosine"
DATA_TYPE = "float32"
INDEX_MODE = "ENHANCED"
"""Filters are applied before the vector search (pre-filtering), and full-text search is available."""
MANIFEST_KEY = "__rag-explorer-manifest__"
MANIFEST_FIELD = "rag_explorer"


def index_definition(*, dimension: int) -> dict[str, Any]:
    """What ``CreateIndex`` needs besides the bucket and index names (the stack creates the same index)."""
    return {
        "dataType": DATA_TYPE,
        "dimension": dimension,
        "distanceMetric": DISTANCE_METRIC,
        "metadataConfiguration": {
            "nonFilterableMetadataKeys": list(NON_FILTERABLE_KEYS),
            "textSearchConfigurations": [dict(c) for c in TEXT_SEARCH],
        },
    }


def create_index_request(bucket: str, index: str, *, dimension: int) -> dict[str, Any]:
    return {"vectorBucketName": bucket, "indexName": index, **index_definition(dimension=dimension)}


# ---------------------------------------------------------------------------------------- records


def folders_of(source: str) -> list[str]:
    """The ancestor folders of ``source``, shortest first, each ending in ``/`` (``s3://b/a/x.md`` →
    ``s3://``, ``s3://b/``, ``s3://b/a/``; a leading ``/`` is a folder too)."""
    return [source[: i + 1] for i, ch in enumerate(source) if ch == "/"]


def prefix_folder(prefix: str) -> str | None:
    """The longest folder that every source starting with ``prefix`` lies in (None: no ``/`` in it)."""
    cut = prefix.rfind("/")
    return prefix[: cut + 1] if cut >= 0 else None


def json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def chunk_metadata(chunk: Chunk, lexical_text: str, indexed_at: str) -> dict[str, Any]:
    """The metadata of one chunk (see the module docstring)."""
    rest = {
        "source": chunk.source,
        "display_text": chunk.text,
        "title": chunk.title,
        "heading_path": list(chunk.heading_path),
        "position": chunk.position,
        "page": chunk.page,
        "content_hash": chunk.content_hash,
        "n_tokens": chunk.n_tokens,
        "url": chunk.url,
        "indexed_at": indexed_at,
    }
    metadata: dict[str, Any] = {
        "collection": chunk.collection,
        "folders": folders_of(chunk.source),
        TEXT_KEY: lexical_text,
        CHUNK_KEY: json.dumps(rest, ensure_ascii=False, separators=(",", ":")),
    }
    if chunk.tags:
        metadata["tags"] = list(chunk.tags)
    if not metadata["folders"]:
        del metadata["folders"]
    return metadata


def metadata_problem(metadata: dict[str, Any]) -> str | None:
    """Why the service would refuse this metadata (sizes over the limits), or None."""
    filterable = {k: v for k, v in metadata.items() if k not in NON_FILTERABLE_KEYS}
    size, total = json_size(filterable), json_size(metadata)
    if size > MAX_FILTERABLE_BYTES:
        return (
            f"its filterable metadata (collection, tags, folders of the source path) is {size} bytes, over "
            f"S3 Vectors' {MAX_FILTERABLE_BYTES} per vector: use fewer or shorter tags, or a shorter path"
        )
    if total > MAX_METADATA_BYTES:
        return (
            f"its metadata is {total} bytes, over S3 Vectors' {MAX_METADATA_BYTES} per vector: use smaller "
            "chunks (chunk_tokens)"
        )
    return None


def vector_record(key: str, vector: np.ndarray, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": key,
        "data": {"float32": [float(x) for x in np.asarray(vector, dtype=np.float32)]},
        "metadata": metadata,
    }


def chunk_from_metadata(key: str, metadata: dict[str, Any]) -> Chunk:
    rest = json.loads(metadata[CHUNK_KEY])
    tags = metadata.get("tags") or []
    return Chunk(
        chunk_id=key,
        source=str(rest["source"]),
        title=rest.get("title") or None,
        text=str(rest.get("display_text") or ""),
        heading_path=[str(h) for h in rest.get("heading_path") or []],
        position=int(rest.get("position") or 0),
        page=int(rest["page"]) if rest.get("page") is not None else None,
        content_hash=str(rest.get("content_hash") or ""),
        tags=[str(t) for t in (tags if isinstance(tags, list) else [tags])],
        n_tokens=int(rest.get("n_tokens") or 0),
        url=str(rest["url"]) if rest.get("url") else None,
        collection=str(metadata.get("collection") or DEFAULT_COLLECTION),
    )


def manifest_metadata(*, embedder: str, dimension: int, version: str) -> dict[str, Any]:
    value = {
        "template_version": TEMPLATE_VERSION,
        "embedder": embedder,
        "dimension": dimension,
        "version": version,
    }
    return {MANIFEST_FIELD: json.dumps(value, separators=(",", ":"))}


def manifest_record(*, embedder: str, dimension: int, version: str) -> dict[str, Any]:
    """The manifest vector: a unit vector (cosine needs a non-zero one) that searches drop by key."""
    data = np.zeros(dimension, dtype=np.float32)
    data[0] = 1.0
    return vector_record(
        MANIFEST_KEY, data, manifest_metadata(embedder=embedder, dimension=dimension, version=version)
    )


def read_manifest(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    raw = (metadata or {}).get(MANIFEST_FIELD)
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# ---------------------------------------------------------------------------------------- queries


def filter_document(filters: SearchFilter | None) -> dict[str, Any] | None:
    """The service-side filter: every tag, one collection, the folder of a source prefix (all ANDed)."""
    if filters is None:
        return None
    clauses: list[dict[str, Any]] = [{"tags": {"$eq": tag}} for tag in filters.tags]
    if filters.collection is not None:
        clauses.append({"collection": {"$eq": filters.collection}})
    folder = prefix_folder(filters.source_prefix) if filters.source_prefix else None
    if folder:
        clauses.append({"folders": {"$eq": folder}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def needs_exact_prefix_check(filters: SearchFilter | None) -> bool:
    """True when the service-side filter is wider than the source prefix (a prefix that does not end at a
    folder): the results are then checked with :meth:`SearchFilter.matches`."""
    prefix = filters.source_prefix if filters is not None else None
    return bool(prefix) and prefix_folder(prefix or "") != prefix


def query_text(text: str) -> str:
    """A full-text query within the service's 1,024 characters (cut at a word boundary)."""
    text = " ".join(text.split())
    if len(text) <= MAX_QUERY_TEXT_CHARS:
        return text
    cut = text.rfind(" ", 0, MAX_QUERY_TEXT_CHARS + 1)
    return text[: cut if cut > 0 else MAX_QUERY_TEXT_CHARS]


def query_request(
    bucket: str,
    index: str,
    *,
    top_k: int,
    vector: Sequence[float] | None = None,
    text: str | None = None,
    filters: SearchFilter | None = None,
    metadata: bool = True,
) -> dict[str, Any]:
    """One ``QueryVectors`` request: a vector search (``vector``), a full-text search on ``text``
    (``text``) or both (the service fuses them by RRF)."""
    if vector is None and text is None:
        raise ValueError("a query needs a vector, a text or both")
    request: dict[str, Any] = {
        "vectorBucketName": bucket,
        "indexName": index,
        "topK": max(1, min(top_k, MAX_TOP_K)),
        "returnMetadata": metadata,
    }
    if vector is not None:
        request["queryVector"] = {"float32": [float(x) for x in vector]}
        request["returnDistance"] = True
    if text is not None:
        request["queryTexts"] = [{"text": query_text(text), "metadataKey": TEXT_KEY}]
        request["returnScores"] = True
    document = filter_document(filters)
    if document is not None:
        request["filter"] = document
    return request


def cosine_from_distance(distance: float) -> float:
    """S3 Vectors' cosine distance is ``1 - cos``."""
    return min(1.0, max(-1.0, 1.0 - float(distance)))


def list_request(bucket: str, index: str, next_token: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "vectorBucketName": bucket,
        "indexName": index,
        "maxResults": MAX_LIST_RESULTS,
        "returnMetadata": True,
    }
    if next_token:
        request["nextToken"] = next_token
    return request


def keys_request(bucket: str, index: str, keys: Sequence[str], **extra: Any) -> dict[str, Any]:
    return {"vectorBucketName": bucket, "indexName": index, "keys": list(keys), **extra}
