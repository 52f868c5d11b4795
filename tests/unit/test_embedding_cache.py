"""The embedding cache: vectors remembered by text (memory and SQLite), computed once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.embeddings.cache import CachingEmbedder, EmbeddingCache
from shared.embeddings.hashing import HashingEmbedder
from shared.service import RagService
from shared.settings import Settings

TEXTS = ["Rotate the API key from the console.", "Invoices are emailed monthly.", "Keys expire."]


class CountingEmbedder(HashingEmbedder):
    def __init__(self, dimension: int = 64) -> None:
        super().__init__(dimension)
        self.documents = 0

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        self.documents += len(texts)
        return super().embed_documents(texts)


def test_vectors_are_computed_once_and_match_the_embedder(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    cached = CachingEmbedder(inner, EmbeddingCache(inner.name, path=tmp_path / "c.sqlite3"))
    first = cached.embed_documents([*TEXTS, TEXTS[0]])
    assert inner.documents == 3  # the repeat within one call is embedded once
    again = cached.embed_documents(list(reversed(TEXTS)))
    assert inner.documents == 3
    expected = inner.embed_documents(TEXTS)
    assert np.allclose(first[:3], expected, atol=2e-3) and np.allclose(again[::-1], expected, atol=2e-3)
    assert first.dtype == np.float32 and first.shape == (4, 64)


def test_the_file_outlives_the_process_and_is_keyed_by_embedder(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    CachingEmbedder(CountingEmbedder(), EmbeddingCache("hash:64", path=path)).embed_documents(TEXTS)
    later = CountingEmbedder()
    CachingEmbedder(later, EmbeddingCache("hash:64", path=path, memory_entries=1)).embed_documents(TEXTS)
    assert later.documents == 0  # read back from SQLite
    other = CountingEmbedder()
    CachingEmbedder(other, EmbeddingCache("other:64", path=path)).embed_documents(TEXTS)
    assert other.documents == 3  # another embedder never reads these vectors


def test_an_unusable_location_only_costs_recomputation(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    inner = CountingEmbedder()
    cached = CachingEmbedder(inner, EmbeddingCache(inner.name, path=blocker / "c.sqlite3"))
    cached.embed_documents(TEXTS)
    cached.embed_documents(TEXTS)
    assert inner.documents == 3  # memory still works


def test_the_memory_is_bounded() -> None:
    cache = EmbeddingCache("hash:8", memory_entries=2)
    cache.put_many(TEXTS, np.ones((3, 8), dtype=np.float32))
    assert [v is None for v in cache.get_many(TEXTS)] == [True, False, False]


def test_queries_are_memoised() -> None:
    inner = HashingEmbedder(64)
    cached = CachingEmbedder(inner, EmbeddingCache(inner.name))
    a = cached.embed_query("how do I rotate keys?")
    b = cached.embed_query("how do I rotate keys?")
    assert a is b and cached.computed == 1


def test_ingest_embeds_the_answer_sentences_so_ask_computes_none(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keys.md").write_text(
        "# Keys\n\nTo rotate your API key, open the console and choose Regenerate. "
        "The old key keeps working for one hour after rotation. Keys are stored encrypted.\n"
    )
    service = RagService(Settings(home=tmp_path / "home", embedder="hash:256"))
    service.ingest([docs])
    assert (tmp_path / "home" / "embedding-cache.sqlite3").is_file()
    embedder = service.embedder
    assert isinstance(embedder, CachingEmbedder)
    before = embedder.computed
    response = service.ask("How do I rotate my API key?", confidence_threshold=0.0)
    assert response.decision == "answer"
    assert embedder.computed == before + 1  # the question only: every sentence was embedded at ingest
    off = RagService(Settings(home=tmp_path / "home2", embedder="hash:256", embedding_cache=False))
    assert not isinstance(off.embedder, CachingEmbedder)
