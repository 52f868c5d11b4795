"""The Chroma adapter against a real embedded ChromaDB on disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from shared.chunking import embedding_text
from shared.embeddings.hashing import HashingEmbedder
from shared.errors import EmbedderMismatchError
from shared.models import Chunk, SearchFilter
from shared.stores.chroma import DIRTY_MARKER, ChromaStore

EMB = HashingEmbedder(64)


def make_chunks() -> list[Chunk]:
    rows = [
        ("c1", "/d/keys.md", "Rotate the API key from the console.", ["security"], 1),
        ("c2", "/d/keys.md", "Old keys expire one hour after rotation.", ["security"], None),
        ("c3", "/d/billing.md", "Invoices are emailed every month.", ["billing"], None),
    ]
    return [
        Chunk(
            chunk_id=cid,
            source=src,
            title="T",
            text=text,
            heading_path=["H", "I"],
            position=i,
            content_hash=f"hash-{src}",
            tags=tags,
            page=page,
            n_tokens=7,
        )
        for i, (cid, src, text, tags, page) in enumerate(rows)
    ]


def open_store(path: Path, name: str = EMB.name) -> ChromaStore:
    return ChromaStore(path, embedder_name=name, dimension=EMB.dimension, lexical_text=embedding_text)


@pytest.fixture
def store(tmp_path: Path) -> ChromaStore:
    s = open_store(tmp_path)
    chunks = make_chunks()
    s.upsert(chunks, EMB.embed_documents([embedding_text(c) for c in chunks]))
    s.flush()
    return s


def test_roundtrip_of_every_chunk_field(store: ChromaStore) -> None:
    got = store.get_chunks(["c1", "c3"])
    assert got == [c for c in make_chunks() if c.chunk_id in ("c1", "c3")]


def test_dense_and_lexical_legs(store: ChromaStore) -> None:
    dense = store.dense_search(EMB.embed_query("rotate api key console"), 2)
    assert dense[0].chunk.chunk_id == "c1" and -1.0 <= dense[0].score <= 1.0
    lexical = store.lexical_search("invoices emailed", 3)
    assert [h.chunk.chunk_id for h in lexical] == ["c3"]
    assert store.lexical_search("zebra", 3) == []


def test_filters(store: ChromaStore) -> None:
    q = EMB.embed_query("keys invoices")
    assert {h.chunk.source for h in store.dense_search(q, 3, SearchFilter(tags=["billing"]))} == {
        "/d/billing.md"
    }
    assert {h.chunk.source for h in store.dense_search(q, 3, SearchFilter(source_prefix="/d/k"))} == {
        "/d/keys.md"
    }
    assert {
        h.chunk.chunk_id for h in store.lexical_search("keys invoices", 3, SearchFilter(tags=["billing"]))
    } == {"c3"}


def test_delete_source_and_counts(store: ChromaStore) -> None:
    assert store.count_chunks() == 3 and store.count_documents() == 2
    assert sorted(store.chunk_ids_for_source("/d/keys.md")) == ["c1", "c2"]
    assert store.delete_source("/d/keys.md") == 2
    store.flush()
    assert store.count_chunks() == 1 and store.lexical_count() == 1
    assert store.lexical_search("rotate", 3) == []
    assert store.source_hashes() == {"/d/billing.md": "hash-/d/billing.md"}


def test_persists_and_rebuilds_a_lost_bm25_index(store: ChromaStore, tmp_path: Path) -> None:
    del store
    shutil.rmtree(tmp_path / "bm25")
    again = open_store(tmp_path)
    assert again.lexical_count() == 3
    assert again.health().ok
    assert [h.chunk.chunk_id for h in again.lexical_search("invoices", 3)] == ["c3"]
    np.testing.assert_allclose(
        again.get_embeddings(["c1"])["c1"],
        EMB.embed_documents([embedding_text(make_chunks()[0])])[0],
        atol=1e-6,
    )


def test_refuses_to_mix_embedders(store: ChromaStore, tmp_path: Path) -> None:
    with pytest.raises(EmbedderMismatchError, match="built with embedder 'hash:64'"):
        open_store(tmp_path, name="local:other-model")


def test_wrong_embedding_shape_is_rejected(store: ChromaStore) -> None:
    with pytest.raises(ValueError, match="shape"):
        store.upsert(make_chunks()[:1], np.zeros((1, 3), dtype=np.float32))


def test_term_counts_follow_ingest_and_removal(store: ChromaStore, tmp_path: Path) -> None:
    """The vocabulary behind "the documentation never mentions X" comes from the index itself."""
    counts = store.term_counts(["invoices", "invoice", "rotation", "keys", "zebra", "the"])
    assert counts == {"invoices": 1, "invoice": 1, "rotation": 2, "keys": 2, "zebra": 0, "the": 3}
    store.delete_source("/d/billing.md")
    assert store.term_counts(["invoices", "rotation"]) == {"invoices": 0, "rotation": 2}  # no flush needed
    assert open_store(tmp_path).term_counts(["invoices", "key"]) == {"invoices": 0, "key": 2}  # reopened


def test_the_largest_tag_filter_is_safe(store: ChromaStore) -> None:
    """A filter at the tag cap (all must match) is one bounded query tree; thousands once crashed Chroma."""
    from shared.models import MAX_FILTER_TAGS

    tags = ["billing"] + [f"other-{i}" for i in range(MAX_FILTER_TAGS - 1)]
    q = EMB.embed_query("invoices")
    assert store.dense_search(q, 3, SearchFilter(tags=tags)) == []
    assert store.lexical_search("invoices", 3, SearchFilter(tags=tags)) == []
    repeated = SearchFilter(tags=["billing"] * 5000)
    assert repeated.tags == ["billing"]
    assert [h.chunk.chunk_id for h in store.dense_search(q, 3, repeated)] == ["c3"]


def test_a_writer_killed_before_the_bm25_save_is_repaired_on_open(tmp_path: Path) -> None:
    """Chroma written, BM25 not saved (the process died): equal counts, different chunks. The marker
    written before the first Chroma write makes the next open rebuild BM25 from Chroma."""
    s = open_store(tmp_path)
    chunks = make_chunks()
    s.upsert(chunks, EMB.embed_documents([embedding_text(c) for c in chunks]))
    s.flush()
    replacement = make_chunks()[2].model_copy(update={"chunk_id": "c3b", "text": "Zebra invoices now."})
    s.delete_ids(["c3"])
    s.upsert([replacement], EMB.embed_documents([embedding_text(replacement)]))
    assert (tmp_path / DIRTY_MARKER).exists()
    del s  # killed: no flush
    reopened = open_store(tmp_path)
    assert reopened.count_chunks() == 3 and reopened.lexical_count() == 3
    assert [h.chunk.chunk_id for h in reopened.lexical_search("zebra", 3)] == ["c3b"]
    assert reopened.health().ok and not (tmp_path / DIRTY_MARKER).exists()


def test_an_unreadable_bm25_index_is_rebuilt(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    chunks = make_chunks()
    s.upsert(chunks, EMB.embed_documents([embedding_text(c) for c in chunks]))
    s.flush()
    (tmp_path / "bm25" / "chunks.json").write_text("{not json")
    reopened = open_store(tmp_path)
    assert [h.chunk.chunk_id for h in reopened.lexical_search("invoices", 3)] == ["c3"]


def test_concurrent_bm25_saves_never_collide(tmp_path: Path) -> None:
    """Two savers once shared one temporary path (FileExistsError, an unreadable index)."""
    import threading

    from shared.stores.lexical import LexicalIndex

    errors: list[BaseException] = []
    start = threading.Barrier(4)

    indexes = [LexicalIndex(tmp_path / "bm25") for _ in range(4)]  # before any save: nothing to load

    def save(n: int) -> None:
        try:
            start.wait()
            for _ in range(5):
                indexes[n].build([f"id{n}"], [f"text number {n}"], [f"/s{n}"], [[]])
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = LexicalIndex(tmp_path / "bm25")
    assert len(final) == 1 and final.ids[0] in {"id0", "id1", "id2", "id3"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bm25"]
