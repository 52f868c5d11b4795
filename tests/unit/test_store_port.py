"""The store port declares everything callers use, and the in-memory adapter keeps every part of it."""

from __future__ import annotations

from shared.embeddings.hashing import HashingEmbedder
from shared.models import Chunk
from shared.stores.base import VectorStore
from shared.stores.memory import MemoryStore

EMB = HashingEmbedder(32)


def chunk(cid: str, text: str) -> Chunk:
    return Chunk(chunk_id=cid, source="/d/a.md", text=text, position=0, content_hash="h")


def test_the_port_names_every_method_the_core_calls() -> None:
    declared = {name for name in vars(VectorStore) if not name.startswith("_")}
    # what ingest, retrieval, answering and status call on a store
    used = {
        "upsert", "delete_source", "delete_ids", "source_hashes", "chunk_ids_for_source", "get_embeddings",
        "dense_search", "lexical_search", "term_counts", "count_chunks", "count_documents", "lexical_count",
        "health", "flush",
    }  # fmt: skip
    assert used <= declared


def test_memory_store_keeps_the_port() -> None:
    store = MemoryStore(dimension=EMB.dimension)
    assert isinstance(store, VectorStore)
    chunks = [chunk("c1", "alpha beta"), chunk("c2", "beta gamma")]
    store.upsert(chunks, EMB.embed_documents([c.text for c in chunks]))
    assert store.lexical_count() == store.count_chunks() == 2
    assert set(store.get_embeddings(["c1", "nope"])) == {"c1"}
    store.delete_ids(["c1", "never"])
    assert store.lexical_count() == store.count_chunks() == 1
    assert store.term_counts(["alpha", "gamma"]) == {"alpha": 0, "gamma": 1}


def test_every_answerer_keeps_the_answerer_port() -> None:
    """One shape for every answerer: the service never asks which one it holds."""
    from shared.answering.base import Answerer
    from shared.answering.extractive import ExtractiveAnswerer
    from shared.answering.generative import GenerativeAnswerer
    from shared.llm.resilience import ProviderChain

    extractive = ExtractiveAnswerer(EMB)
    generative = GenerativeAnswerer(ProviderChain([]), EMB, extractive=extractive)
    assert isinstance(extractive, Answerer) and isinstance(generative, Answerer)
    (only,) = list(extractive.stream("anything", []))  # quoted answers come whole
    assert only == extractive.answer("anything", []) and only.provider == "extractive"
