from __future__ import annotations

import hashlib

import pytest

from shared.chunking import Chunker, embedding_text
from shared.embeddings.hashing import HashingEmbedder
from shared.ingest import Ingestor
from shared.models import Chunk, Document, ScoredChunk, SearchFilter, Section
from shared.retrieval import HybridRetriever, reciprocal_rank_fusion
from shared.stores.memory import MemoryStore


def chunk(cid: str) -> Chunk:
    return Chunk(chunk_id=cid, source=f"{cid}.md", text=cid, position=0, content_hash="h")


def test_rrf_scores_are_sums_of_weighted_reciprocal_ranks() -> None:
    dense = [ScoredChunk(chunk=chunk(c), score=s) for c, s in [("a", 0.9), ("b", 0.8), ("c", 0.7)]]
    lexical = [ScoredChunk(chunk=chunk(c), score=s) for c, s in [("c", 12.0), ("a", 5.0)]]
    fused = reciprocal_rank_fusion([("dense", dense, 1.0), ("lexical", lexical, 2.0)], k=60)
    scores = {f.chunk.chunk_id: f.score for f in fused}
    assert scores["a"] == pytest.approx(1 / 61 + 2 / 62)
    assert scores["b"] == pytest.approx(1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 2 / 61)
    assert [f.chunk.chunk_id for f in fused] == ["c", "a", "b"]
    a = next(f for f in fused if f.chunk.chunk_id == "a")
    assert a.dense_score == 0.9 and a.lexical_score == 5.0 and a.ranks == {"dense": 1, "lexical": 2}


DOCS = {
    "keys.md": (
        "API keys",
        "To rotate your API key open the console and choose Regenerate key.",
        ["security"],
    ),
    "billing.md": ("Billing", "Invoices are sent monthly to the account owner by email.", ["billing"]),
    "cache.md": (
        "Cache",
        "The command line tool caches downloads; purge the cache with the purge command.",
        [],
    ),
}


@pytest.fixture
def retriever() -> HybridRetriever:
    emb = HashingEmbedder()
    store = MemoryStore(dimension=emb.dimension, lexical_text=embedding_text)
    docs = [
        Document(
            source=f"/docs/{name}",
            title=title,
            doc_type="markdown",
            sections=[Section(text=text)],
            content_hash=hashlib.sha256(text.encode()).hexdigest(),
            tags=tags,
        )
        for name, (title, text, tags) in DOCS.items()
    ]
    Ingestor(emb, store, Chunker(emb)).index_documents(docs)
    store.flush()
    return HybridRetriever(emb, store, candidates=10)


def test_hybrid_finds_the_matching_document_first(retriever: HybridRetriever) -> None:
    hits = retriever.retrieve("how do I rotate an api key", 3)
    assert hits[0].chunk.source == "/docs/keys.md"
    assert hits[0].dense_score is not None and hits[0].lexical_score is not None


def test_filters_apply_to_both_legs(retriever: HybridRetriever) -> None:
    hits = retriever.retrieve("rotate api key invoices cache", 5, SearchFilter(tags=["billing"]))
    assert {h.chunk.source for h in hits} == {"/docs/billing.md"}
    hits = retriever.retrieve("rotate api key invoices cache", 5, SearchFilter(source_prefix="/docs/ca"))
    assert {h.chunk.source for h in hits} == {"/docs/cache.md"}


def test_each_leg_can_be_switched_off(retriever: HybridRetriever) -> None:
    retriever.dense_weight = 0.0
    hits = retriever.retrieve("purge cache", 3)
    assert hits and all(h.dense_score is None for h in hits)
    assert hits[0].chunk.source == "/docs/cache.md"
