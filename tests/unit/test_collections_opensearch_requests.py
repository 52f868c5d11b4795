"""What the OpenSearch store sends for collections and links (no network: the recording fake cluster of
test_opensearch_requests.py): the collection filter in both legs, the mapping upgrade of a version 1 index
before its first write, and chunks read back with their collection and URL (legacy ones: the default)."""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.models import SearchFilter
from shared.stores.opensearch_queries import LINK_FIELDS, TEMPLATE_VERSION
from tests.unit.test_opensearch_requests import INDEX, META, FakeCluster, chunk, hit, make_store

DEFAULT_CLAUSE = {
    "bool": {
        "should": [
            {"term": {"collection": "default"}},
            {"bool": {"must_not": [{"exists": {"field": "collection"}}]}},
        ],
        "minimum_should_match": 1,
    }
}


def bodies(cluster: FakeCluster) -> list[Any]:
    return [r.body for r in cluster.of("POST", f"/{INDEX}/_search")]


def test_both_legs_filter_on_a_named_collection() -> None:
    cluster = FakeCluster()
    store = make_store(cluster)
    filters = SearchFilter(collection="support", tags=["security"])
    store.dense_search(np.array([1, 0, 0, 0], dtype=np.float32), 3, filters)
    store.lexical_search("rotate", 3, filters)
    knn, match = bodies(cluster)
    expected = [{"term": {"tags": "security"}}, {"term": {"collection": "support"}}]
    assert knn["query"]["knn"]["embedding"]["filter"] == {"bool": {"filter": expected}}
    assert match["query"]["bool"]["filter"] == expected


def test_the_default_collection_also_holds_chunks_indexed_without_one() -> None:
    cluster = FakeCluster()
    store = make_store(cluster)
    store.lexical_search("rotate", 3, SearchFilter(collection="default"))
    store.dense_search(np.array([1, 0, 0, 0], dtype=np.float32), 3, SearchFilter(collection="default"))
    match, knn = bodies(cluster)
    assert match["query"]["bool"]["filter"] == [DEFAULT_CLAUSE]
    assert knn["query"]["knn"]["embedding"]["filter"] == {"bool": {"filter": [DEFAULT_CLAUSE]}}


def test_chunks_come_back_with_collection_and_url_and_legacy_ones_in_the_default() -> None:
    cluster = FakeCluster()
    linked = chunk("c1", url="https://docs.example.com/keys#rotate", collection="support")
    legacy = chunk("c2")
    linked_hit = hit(linked, 2.0)
    linked_hit["_source"].update(collection="support", url=linked.url)
    cluster.on("POST", rf"/{INDEX}/_search", (200, {"hits": {"hits": [linked_hit, hit(legacy, 1.0)]}}))
    got = [h.chunk for h in make_store(cluster).lexical_search("rotate", 5)]
    assert got == [linked, legacy]
    assert (got[1].collection, got[1].url) == ("default", None)


def test_a_version_1_index_gets_the_link_fields_before_its_first_write_only() -> None:
    cluster = FakeCluster()
    v1 = {**META, "template_version": 1}
    cluster.on("GET", rf"/{INDEX}/_mapping", (200, {INDEX: {"mappings": {"_meta": v1}}}))
    cluster.on("PUT", rf"/{INDEX}/_mapping", (200, {"acknowledged": True}))
    store = make_store(cluster)
    store.lexical_search("rotate", 3, SearchFilter(collection="support"))  # reads work as they are
    assert cluster.of("PUT", f"/{INDEX}/_mapping") == []
    vectors = np.array([[1, 0, 0, 0]], dtype=np.float32)
    store.upsert([chunk("c1", collection="support")], vectors)
    store.upsert([chunk("c2")], vectors)
    (upgrade,) = cluster.of("PUT", f"/{INDEX}/_mapping")
    assert upgrade.body == {"_meta": {**v1, "template_version": TEMPLATE_VERSION}, "properties": LINK_FIELDS}
    order = [(r.method, r.path) for r in cluster.requests]
    assert order.index(("PUT", f"/{INDEX}/_mapping")) < order.index(("POST", "/_bulk"))
