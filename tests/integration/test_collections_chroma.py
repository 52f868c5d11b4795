"""Collections and links in the Chroma store, on a real embedded ChromaDB: stored per chunk, returned on every
read, filtered in both legs; chunks stored before collections (no ``collection`` key) are the default ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings

from shared.chunking import embedding_text
from shared.embeddings.hashing import HashingEmbedder
from shared.models import Chunk, SearchFilter
from shared.stores.chroma import COLLECTION, ChromaStore

EMB = HashingEmbedder(64)
QUERY = "rotate the api key"


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


def legacy_metadata(c: Chunk) -> dict[str, Any]:
    """The metadata this store wrote before collections and links existed."""
    return {
        "source": c.source,
        "title": c.title or "",
        "heading_path": json.dumps(c.heading_path),
        "position": c.position,
        "content_hash": c.content_hash,
        "tags": json.dumps(c.tags),
        "n_tokens": c.n_tokens,
    }


@pytest.fixture
def client(tmp_path: Path) -> Any:
    return chromadb.PersistentClient(path=str(tmp_path), settings=ChromaSettings(anonymized_telemetry=False))


def open_store(path: Path, client: Any) -> ChromaStore:
    return ChromaStore(
        path, embedder_name=EMB.name, dimension=EMB.dimension, client=client, lexical_text=embedding_text
    )


def put(store: ChromaStore, chunks: list[Chunk]) -> None:
    store.upsert(chunks, EMB.embed_documents([embedding_text(c) for c in chunks]))
    store.flush()


def both_legs(store: ChromaStore, filters: SearchFilter | None) -> tuple[set[str], set[str]]:
    dense = {h.chunk.chunk_id for h in store.dense_search(EMB.embed_query(QUERY), 10, filters)}
    lexical = {h.chunk.chunk_id for h in store.lexical_search(QUERY, 10, filters)}
    return dense, lexical


def test_url_and_collection_round_trip_and_a_missing_url_is_no_key(tmp_path: Path, client: Any) -> None:
    store = open_store(tmp_path, client)
    linked = chunk("a", "Rotate the API key.", "support", "https://docs.example.com/keys#rotate")
    plain = chunk("b", "Rotate the API key again.")
    put(store, [linked, plain])
    assert store.get_chunks(["a", "b"]) == [linked, plain]
    metas = client.get_collection(COLLECTION).get(ids=["a", "b"], include=["metadatas"])["metadatas"]
    assert metas[0]["url"] == linked.url and metas[0]["collection"] == "support"
    assert "url" not in metas[1] and metas[1]["collection"] == "default"
    found = {h.chunk.chunk_id: h.chunk for h in store.dense_search(EMB.embed_query(QUERY), 5)}
    assert found == {"a": linked, "b": plain}


def test_both_legs_filter_on_the_collection_and_default_finds_legacy_chunks(
    tmp_path: Path, client: Any
) -> None:
    legacy = chunk("old", "Rotate the API key in the old console.")
    col = client.get_or_create_collection(
        COLLECTION,
        metadata={"embedder": EMB.name, "dimension": EMB.dimension},
        configuration={"hnsw": {"space": "cosine"}},
        embedding_function=None,
    )
    col.upsert(
        ids=["old"],
        embeddings=EMB.embed_documents([embedding_text(legacy)]),
        documents=[legacy.text],
        metadatas=[legacy_metadata(legacy)],
    )
    store = open_store(tmp_path, client)
    assert store.get_chunks(["old"])[0].collection == "default"
    assert both_legs(store, SearchFilter(collection="default")) == (
        {"old"},
        {"old"},
    )  # no other collection yet

    put(
        store,
        [chunk("new", "Rotate the API key in the console."), chunk("sup", "Rotate the API key.", "support")],
    )
    assert both_legs(store, SearchFilter(collection="default")) == ({"old", "new"}, {"old", "new"})
    assert both_legs(store, SearchFilter(collection="support")) == ({"sup"}, {"sup"})
    assert both_legs(store, SearchFilter(collection="nowhere")) == (set(), set())
    assert both_legs(store, None) == ({"old", "new", "sup"}, {"old", "new", "sup"})

    reopened = open_store(tmp_path, client)  # the BM25 side keeps the collections on disk
    assert both_legs(reopened, SearchFilter(collection="support")) == ({"sup"}, {"sup"})
    assert both_legs(reopened, SearchFilter(collection="default")) == ({"old", "new"}, {"old", "new"})


def test_collection_and_tags_together(tmp_path: Path, client: Any) -> None:
    store = open_store(tmp_path, client)
    chunks = [
        chunk("a", "Rotate the API key.", "support").model_copy(update={"tags": ["security"]}),
        chunk("b", "Rotate the API key.", "support"),
        chunk("c", "Rotate the API key.").model_copy(update={"tags": ["security"]}),
    ]
    put(store, chunks)
    filters = SearchFilter(collection="support", tags=["security"])
    assert both_legs(store, filters) == ({"a"}, {"a"})
    assert np.isfinite([h.score for h in store.dense_search(EMB.embed_query(QUERY), 3, filters)]).all()


def test_a_re_ingested_chunk_keeps_no_stale_link_or_page(tmp_path: Path, client: Any) -> None:
    """Chroma merges the metadata of an upsert into the stored one: a link or page that is gone must go."""
    store = open_store(tmp_path, client)
    first = chunk("a", "Rotate the API key.", "support", "https://docs.example.com/keys")
    put(store, [first.model_copy(update={"page": 3})])
    put(store, [chunk("a", "Rotate the API key.", "archive")])
    (got,) = store.get_chunks(["a"])
    assert (got.url, got.page, got.collection) == (None, None, "archive")
    (meta,) = client.get_collection(COLLECTION).get(ids=["a"], include=["metadatas"])["metadatas"]
    assert "url" not in meta and "page" not in meta
