"""Collections in the data path: ingest puts documents in one, a re-ingest moves them, S3 keys find theirs by
prefix, and every leg of the in-memory store filters on it. The hashing embedder and the in-memory store."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.adapters.s3_sync import S3Sync
from shared.chunking import Chunker, embedding_text
from shared.embeddings.hashing import HashingEmbedder
from shared.errors import ConfigError
from shared.ingest import Ingestor, Placement, source_for
from shared.loaders import load_file
from shared.models import Chunk, SearchFilter
from shared.retrieval import HybridRetriever
from shared.service import RagService
from shared.settings import Settings
from shared.stores.lexical import LexicalIndex
from shared.stores.memory import MemoryStore

EMB = HashingEmbedder(64)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(dimension=EMB.dimension, lexical_text=embedding_text)


@pytest.fixture
def ingestor(store: MemoryStore) -> Ingestor:
    return Ingestor(EMB, store, Chunker(EMB, chunk_tokens=40, overlap_tokens=8))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def every_chunk(store: MemoryStore, filters: SearchFilter | None = None) -> list[Chunk]:
    return [h.chunk for h in store.dense_search(np.ones(EMB.dimension, dtype=np.float32), 1000, filters)]


def collections(store: MemoryStore) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for c in every_chunk(store):
        found.setdefault(c.source, set()).add(c.collection)
    return found


def test_ingest_puts_documents_in_the_collection_given(
    tmp_path: Path, ingestor: Ingestor, store: MemoryStore
) -> None:
    keys = write(tmp_path / "support" / "keys.md", "# Keys\n\nRotate the API key in the console.\n")
    billing = write(tmp_path / "sales" / "billing.md", "# Billing\n\nInvoices are emailed monthly.\n")
    ingestor.ingest_paths([tmp_path / "support"], placement=Placement("support"))
    ingestor.ingest_paths([tmp_path / "sales"])
    assert collections(store) == {source_for(keys): {"support"}, source_for(billing): {"default"}}


@pytest.mark.parametrize("name", ["", "Support", "-x", "a b", "a" * 64, "../x"])
def test_a_collection_name_outside_the_pattern_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid collection name"):
        Placement(name)


def test_re_ingesting_with_another_collection_moves_the_document(
    tmp_path: Path, ingestor: Ingestor, store: MemoryStore
) -> None:
    path = write(
        tmp_path / "keys.md", "# Keys\n\n## Rotate\n\nRotate the key.\n\n## Expire\n\nKeys expire.\n"
    )
    ingestor.ingest_paths([path], placement=Placement("support"))
    before = store.count_chunks()
    moved = ingestor.ingest_paths([path], placement=Placement("docs"))
    assert moved.files_indexed == 1 and moved.chunks_added == 0  # same chunks, vectors reused
    assert collections(store) == {source_for(path): {"docs"}} and store.count_chunks() == before
    assert ingestor.ingest_paths([path], placement=Placement("docs")).files_unchanged == 1
    back = ingestor.ingest_paths([path])
    assert back.files_indexed == 1 and collections(store) == {source_for(path): {"default"}}


def test_the_default_collection_without_links_keeps_the_version_of_earlier_releases(
    tmp_path: Path, ingestor: Ingestor, store: MemoryStore
) -> None:
    """Upgrading re-indexes nothing that collections and links do not change."""
    path = write(tmp_path / "keys.md", "# Keys\n\nRotate the key.\n")
    ingestor.ingest_paths([path])
    (doc,) = load_file(path)
    earlier = hashlib.sha256(f"{doc.content_hash}|{ingestor.chunker.signature}".encode()).hexdigest()
    assert store.source_hashes() == {source_for(path): earlier}


def test_every_leg_of_the_memory_store_filters_on_the_collection(
    tmp_path: Path, ingestor: Ingestor, store: MemoryStore
) -> None:
    write(tmp_path / "a" / "keys.md", "# Keys\n\nRotate the API key in the console.\n")
    write(tmp_path / "b" / "keys.md", "# Keys\n\nRotate the API key with the CLI.\n")
    ingestor.ingest_paths([tmp_path / "a"], placement=Placement("support"))
    ingestor.ingest_paths([tmp_path / "b"])
    support, default = SearchFilter(collection="support"), SearchFilter(collection="default")
    for filters, expected in ((support, {"support"}), (default, {"default"})):
        assert {h.chunk.collection for h in store.lexical_search("rotate key", 10, filters)} == expected
        assert {c.collection for c in every_chunk(store, filters)} == expected
    assert {h.chunk.collection for h in store.lexical_search("rotate key", 10)} == {"support", "default"}
    assert store.lexical_search("rotate", 10, SearchFilter(collection="other")) == []
    hits = HybridRetriever(EMB, store).retrieve("rotate the api key", 5, support)
    assert hits and {h.to_hit().collection for h in hits} == {"support"}


def test_a_bm25_index_saved_before_collections_reads_as_the_default_collection(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "bm25")
    index.build(["c1"], ["rotate the key"], ["/d/a.md"], [[]], ["support"])
    meta = tmp_path / "bm25" / "chunks.json"
    assert json.loads(meta.read_text())["collections"] == ["support"]
    old = json.loads(meta.read_text())
    del old["collections"]
    meta.write_text(json.dumps(old))
    legacy = LexicalIndex(tmp_path / "bm25")
    assert legacy.collections == ["default"]
    mask = legacy.allowed(SearchFilter(collection="default"))
    assert mask is not None and mask.tolist() == [True]


# --------------------------------------------------------------------------- S3: collection by key prefix


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        data = self.objects[Key]
        return {"Body": io.BytesIO(data), "ContentLength": len(data), "ETag": self.etag(data)}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"ETag": self.etag(self.objects[Key])}

    @staticmethod
    def etag(data: bytes) -> str:
        return hashlib.md5(data).hexdigest()


def test_s3_objects_go_to_the_collection_of_their_prefix_with_its_links(store: MemoryStore) -> None:
    settings = Settings(
        embedder="hash:64",
        collections={
            "help": {"url_template": "https://help.example.com/{path}", "prefix": "public/help/"},
            "api": {"url_template": "https://api.example.com/docs/{file}"},
        },
    )
    s3 = FakeS3()
    sync = S3Sync(RagService(settings, embedder=EMB, store=store), s3)
    s3.objects = {
        "public/help/guide/index.md": b"# Guide\n\n## Start {#start}\n\nSign in first.\n",
        "api/keys.md": b"# Keys\n\nRotate keys.\n",
        "other/notes.md": b"# Notes\n\nMisc.\n",
    }
    for key in s3.objects:
        assert sync.reconcile("docs", key).action == "indexed"
    got = {(c.source, c.collection, c.url) for c in every_chunk(store)}
    assert got == {
        ("s3://docs/public/help/guide/index.md", "help", "https://help.example.com/guide/#start"),
        ("s3://docs/api/keys.md", "api", "https://api.example.com/docs/keys.md"),
        ("s3://docs/other/notes.md", "default", None),
    }
    assert sync.reconcile("docs", "api/keys.md").action == "unchanged"
