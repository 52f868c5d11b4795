"""Collections and links in the OpenSearch store against a server (osmem-server, or a real OpenSearch with
``OPENSEARCH_URL``; see test_opensearch_store.py): the collection filter on a keyword field, links returned,
and an index of template version 1 (before collections) read as the default collection and upgraded in place
by the first write."""

from __future__ import annotations

from pathlib import Path

from opensearchpy import OpenSearch

from shared.chunking import Chunker, embedding_text
from shared.ingest import Ingestor, Placement
from shared.models import Chunk, SearchFilter
from shared.stores.opensearch_queries import LINK_FIELDS, TEMPLATE_VERSION, index_body
from tests.integration.test_opensearch_store import (  # noqa: F401 - the server and index fixtures
    EMB,
    index,
    needs_knn,
    open_store,
    os_client,
)


def chunk(cid: str, text: str, collection: str = "default", url: str | None = None) -> Chunk:
    return Chunk(
        chunk_id=cid,
        source=f"/d/{cid}.md",
        title="Keys",
        text=text,
        position=0,
        content_hash=f"h-{cid}",
        url=url,
        collection=collection,
    )


def lexical(store, filters: SearchFilter | None) -> set[str]:  # type: ignore[no-untyped-def]
    return {h.chunk.chunk_id for h in store.lexical_search("rotate key", 10, filters)}


def test_ingest_into_collections_and_filter_the_lexical_leg(
    os_client: OpenSearch,  # noqa: F811
    index: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = open_store(os_client, index)
    ingestor = Ingestor(EMB, store, Chunker(EMB, chunk_tokens=40, overlap_tokens=8))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "keys.md").write_text("# Keys {#keys}\n\nRotate the key in the console.\n")
    (tmp_path / "b" / "keys.md").write_text("# Keys\n\nRotate the key with the CLI.\n")
    ingestor.ingest_paths([tmp_path / "a"], placement=Placement("support", "https://docs.example.com/{path}"))
    ingestor.ingest_paths([tmp_path / "b"])
    support = store.lexical_search("rotate key", 10, SearchFilter(collection="support"))
    assert [(h.chunk.collection, h.chunk.url) for h in support] == [
        ("support", "https://docs.example.com/keys#keys")
    ]
    default = store.lexical_search("rotate key", 10, SearchFilter(collection="default"))
    assert [(h.chunk.collection, h.chunk.url) for h in default] == [("default", None)]
    assert len(store.lexical_search("rotate key", 10)) == 2
    assert store.lexical_search("rotate key", 10, SearchFilter(collection="other")) == []


def test_a_version_1_index_reads_as_the_default_collection_and_is_upgraded_by_a_write(
    os_client: OpenSearch,  # noqa: F811
    index: str,  # noqa: F811
) -> None:
    body = index_body(embedder_name=EMB.name, dimension=EMB.dimension)
    body["mappings"]["_meta"]["template_version"] = 1
    for field in LINK_FIELDS:
        del body["mappings"]["properties"][field]
    os_client.indices.create(index=index, body=body)
    old = chunk("old", "Rotate the key in the old console.")
    legacy_doc = {  # as version 1 wrote a chunk: no collection, no url
        "embedding": EMB.embed_documents([embedding_text(old)])[0].tolist(),
        "text": embedding_text(old),
        "display_text": old.text,
        "chunk_id": old.chunk_id,
        "source": old.source,
        "content_hash": old.content_hash,
        "tags": [],
        "heading_path": [],
        "title": old.title,
        "position": 0,
        "page": None,
        "n_tokens": 0,
        "indexed_at": "2025-01-01T00:00:00.000Z",
    }
    os_client.index(index=index, id="old", body=legacy_doc, refresh=True)

    store = open_store(os_client, index)
    assert lexical(store, SearchFilter(collection="default")) == {"old"}
    assert lexical(store, SearchFilter(collection="support")) == set()
    assert store.get_chunks(["old"]) == [old]
    assert os_client.indices.get_mapping(index=index)[index]["mappings"]["_meta"]["template_version"] == 1

    new = [
        chunk("sup", "Rotate the key.", "support", "https://docs.example.com/k"),
        chunk("new", "Rotate it."),
    ]
    store.upsert(new, EMB.embed_documents([embedding_text(c) for c in new]))
    mapping = os_client.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["_meta"]["template_version"] == TEMPLATE_VERSION
    assert mapping["properties"]["collection"]["type"] == "keyword"
    assert lexical(store, SearchFilter(collection="default")) == {"old", "new"}
    assert lexical(store, SearchFilter(collection="support")) == {"sup"}
    assert store.get_chunks(["sup"]) == [new[0]]
    reopened = open_store(os_client, index)  # now of the current version: nothing more to upgrade
    assert lexical(reopened, None) == {"old", "new", "sup"}


@needs_knn
def test_the_dense_leg_filters_on_the_collection(
    os_client: OpenSearch,  # noqa: F811
    index: str,  # noqa: F811
) -> None:
    store = open_store(os_client, index)
    chunks = [chunk("a", "Rotate the key.", "support"), chunk("b", "Rotate the key again.")]
    store.upsert(chunks, EMB.embed_documents([embedding_text(c) for c in chunks]))
    vector = EMB.embed_query("rotate key")
    assert [h.chunk.chunk_id for h in store.dense_search(vector, 5, SearchFilter(collection="support"))] == [
        "a"
    ]
    assert [h.chunk.chunk_id for h in store.dense_search(vector, 5, SearchFilter(collection="default"))] == [
        "b"
    ]
