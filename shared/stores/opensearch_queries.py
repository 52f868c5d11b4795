"""The OpenSearch requests of :mod:`shared.stores.opensearch`, as plain dictionaries: the index template,
the k-NN and BM25 queries, the filters and the term-count aggregation. No client here: these are unit
tested as data (``tests/unit/test_opensearch_requests.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.models import DEFAULT_COLLECTION, SearchFilter
from shared.stores.lexical import lexical_tokens

TEMPLATE_VERSION = 2
"""Bump when the mapping or settings change; an index from a version not in :data:`UPGRADABLE_VERSIONS`
is refused."""

LINK_FIELDS: dict[str, Any] = {
    "collection": {"type": "keyword"},
    "url": {"type": "keyword", "index": False, "doc_values": False},
}
"""Version 2 added these: the chunk's collection (filtered on) and its public link (returned only)."""

UPGRADABLE_VERSIONS = frozenset({1})
"""Versions whose index the store brings up to date before its first write (:func:`upgrade_body`): adding
fields to a mapping is allowed on a live index, and a version 1 chunk has no collection, so it belongs to
the default one (see :func:`collection_clause`)."""

VECTOR_FIELD = "embedding"
KNN_ENGINE = "lucene"
"""Lucene HNSW: efficient filtering, and one documented cosine score formula for every version (see
:func:`cosine_from_score`)."""


HIT_SOURCE_EXCLUDES = [VECTOR_FIELD, "text"]  # what a search hit does not need back


def index_body(*, embedder_name: str, dimension: int) -> dict[str, Any]:
    """The index template, version :data:`TEMPLATE_VERSION`: settings and mapping of a new index.

    ``text`` holds ``embedding_text(chunk)`` (title and headings + text) for BM25; ``display_text`` keeps the
    chunk text as shown to users (in ``_source`` only, not indexed).
    """
    return {
        "settings": {"index": {"knn": True}},
        "mappings": {
            "_meta": {
                "app": "rag-explorer",
                "template_version": TEMPLATE_VERSION,
                "embedder": embedder_name,
                "dimension": dimension,
            },
            "dynamic": "strict",
            "properties": {
                VECTOR_FIELD: {
                    "type": "knn_vector",
                    "dimension": dimension,
                    "method": {
                        "name": "hnsw",
                        "engine": KNN_ENGINE,
                        "space_type": "cosinesimil",
                        "parameters": {"m": 16, "ef_construction": 128},
                    },
                },
                "text": {"type": "text", "analyzer": "standard"},
                "display_text": {"type": "text", "index": False},
                "chunk_id": {"type": "keyword"},
                "source": {"type": "keyword"},
                "content_hash": {"type": "keyword"},
                "tags": {"type": "keyword"},
                "heading_path": {"type": "keyword", "ignore_above": 1024},
                "title": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}},
                "position": {"type": "integer"},
                "page": {"type": "integer"},
                "n_tokens": {"type": "integer"},
                "indexed_at": {"type": "date"},
                **LINK_FIELDS,
            },
        },
    }


def upgrade_body(meta: dict[str, Any]) -> dict[str, Any]:
    """The ``PUT _mapping`` body that brings an index of an upgradable version to this one: the fields
    added since and the ``_meta`` with the new version (the rest of ``_meta`` kept)."""
    return {"_meta": {**meta, "template_version": TEMPLATE_VERSION}, "properties": dict(LINK_FIELDS)}


def cosine_from_score(score: float) -> float:
    """Cosine similarity from the ``_score`` of a k-NN query on a ``cosinesimil`` field.

    OpenSearch documents ``d = 1 - cos`` and ``score = (2 - d) / 2 = (1 + cos) / 2`` (Lucene engine; Faiss and
    NMSLIB used ``1 / (1 + d)`` before 2.19), so ``cos = 2 * score - 1``.
    https://docs.opensearch.org/latest/mappings/supported-field-types/knn-spaces/
    """
    return min(1.0, max(-1.0, 2.0 * float(score) - 1.0))


def collection_clause(name: str) -> dict[str, Any]:
    """Only collection ``name``; the default one also holds chunks indexed without a collection (before
    template version 2)."""
    if name != DEFAULT_COLLECTION:
        return {"term": {"collection": name}}
    legacy = {"bool": {"must_not": [{"exists": {"field": "collection"}}]}}
    return {"bool": {"should": [{"term": {"collection": name}}, legacy], "minimum_should_match": 1}}


def filter_clauses(filters: SearchFilter | None) -> list[dict[str, Any]]:
    """Filter-context clauses for a :class:`SearchFilter`: every tag required, source by prefix, one
    collection."""
    if filters is None:
        return []
    clauses: list[dict[str, Any]] = [{"term": {"tags": tag}} for tag in filters.tags]
    if filters.source_prefix:
        clauses.append({"prefix": {"source": filters.source_prefix}})
    if filters.collection is not None:
        clauses.append(collection_clause(filters.collection))
    return clauses


def knn_query(vector: Sequence[float], k: int, filters: SearchFilter | None = None) -> dict[str, Any]:
    """The dense leg: a ``knn`` query with efficient (in-graph) filtering.

    Structure from https://docs.opensearch.org/latest/vector-search/filter-search-knn/efficient-knn-filtering/
    (``{"knn": {<field>: {"vector": [...], "k": K, "filter": {"bool": ...}}}}``).
    """
    knn: dict[str, Any] = {"vector": [float(x) for x in vector], "k": k}
    clauses = filter_clauses(filters)
    if clauses:
        knn["filter"] = {"bool": {"filter": clauses}}
    return {"size": k, "_source": {"excludes": HIT_SOURCE_EXCLUDES}, "query": {"knn": {VECTOR_FIELD: knn}}}


def match_query(query: str, k: int, filters: SearchFilter | None = None) -> dict[str, Any]:
    """The lexical leg: BM25 ``match`` on ``text``; filters in the bool filter context (they do not score)."""
    boolean: dict[str, Any] = {"must": [{"match": {"text": {"query": query}}}]}
    clauses = filter_clauses(filters)
    if clauses:
        boolean["filter"] = clauses
    return {"size": k, "_source": {"excludes": HIT_SOURCE_EXCLUDES}, "query": {"bool": boolean}}


def term_counts_query(terms: Sequence[str], collection: str | None = None) -> dict[str, Any]:
    """How many chunks hold each term, in one request: a ``filters`` aggregation with one bucket per term.

    ``text`` is analysed by the ``standard`` analyzer (no stemming), so a term matches as the word itself
    or as a word starting with its stem ("backups" also finds "backup", "backing"), close to the stemmed
    BM25 index of the local stores.
    """
    buckets: dict[str, Any] = {}
    for i, term in enumerate(terms):
        word = term.lower()
        stems = [t for t in lexical_tokens(word) if t]
        should: list[dict[str, Any]] = [{"match": {"text": {"query": word}}}]
        should += [{"prefix": {"text": {"value": stem}}} for stem in stems if stem != word]
        buckets[f"t{i}"] = {"bool": {"should": should, "minimum_should_match": 1}}
    query = collection_clause(collection) if collection is not None else {"match_all": {}}
    return {"size": 0, "query": query, "aggs": {"terms": {"filters": {"filters": buckets}}}}
