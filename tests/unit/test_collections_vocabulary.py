"""The answerer's vocabulary lookup stays within the asked collection: a question held to one collection
learns nothing about the words of another."""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.chunking import embedding_text
from shared.embeddings.hashing import HashingEmbedder
from shared.models import Chunk, SearchFilter
from shared.service import RagService
from shared.settings import Settings
from shared.stores.memory import MemoryStore
from shared.stores.opensearch_queries import collection_clause, term_counts_query

TEXTS = {
    "public": "To rotate your API key, open the console and choose Regenerate key.",
    "internal": "Staff reset a customer's Yubikey from the admin console under Users and Security.",
}


def service() -> RagService:
    emb = HashingEmbedder(256)
    store = MemoryStore(dimension=256, lexical_text=embedding_text)
    chunks = [
        Chunk(chunk_id=name, source=f"{name}.md", text=text, position=0, content_hash=name, collection=name)
        for name, text in TEXTS.items()
    ]
    store.upsert(chunks, np.asarray(emb.embed_documents([embedding_text(c) for c in chunks])))
    store.flush()
    return RagService(Settings(embedder="hash:256"), embedder=emb, store=store)


def test_term_counts_per_collection() -> None:
    store = service().store
    assert store.term_counts(["yubikey", "console"]) == {"yubikey": 1, "console": 2}
    assert store.term_counts(["yubikey", "console"], "public") == {"yubikey": 0, "console": 1}
    assert store.term_counts(["yubikey"], "internal") == {"yubikey": 1}
    assert store.term_counts(["yubikey"], "nowhere") == {"yubikey": 0}


def test_a_question_held_to_a_collection_sees_only_its_vocabulary() -> None:
    svc = service()
    seen: list[Any] = []
    original = svc.store.term_counts

    def spy(terms: Any, collection: Any = None) -> dict[str, int]:
        seen.append(collection)
        return original(terms, collection)

    svc.store.term_counts = spy  # type: ignore[method-assign]
    public = SearchFilter(collection="public")
    held = svc.ask("How do I reset a Yubikey?", filters=public)
    unknown = svc.ask("How do I reset a Quuxkey?", filters=public)
    assert seen and set(seen) == {"public"}
    assert held.decision == unknown.decision == "refuse"
    assert [r.replace("Yubikey", "X").replace("yubikey", "x") for r in held.reasons] == [
        r.replace("Quuxkey", "X").replace("quuxkey", "x") for r in unknown.reasons
    ]
    seen.clear()
    svc.ask("How do I reset a Quuxkey?")  # not held to a collection: the whole index
    assert set(seen) == {None}


def test_opensearch_vocabulary_query_is_filtered_by_collection() -> None:
    assert term_counts_query(["a"])["query"] == {"match_all": {}}
    assert term_counts_query(["a"], "public")["query"] == collection_clause("public")
