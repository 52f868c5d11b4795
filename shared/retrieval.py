"""Hybrid retrieval: a dense leg and a BM25 leg fused with (weighted) reciprocal rank fusion.

The same fusion serves every store (Chroma locally, OpenSearch in AWS), client side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.embeddings.base import Embedder
from shared.models import Chunk, ScoredChunk, SearchFilter, SearchHit
from shared.settings import DEFAULTS
from shared.stores.base import VectorStore


@dataclass
class Retrieved:
    chunk: Chunk
    score: float  # fused RRF score
    dense_score: float | None = None  # cosine similarity, when the dense leg found it
    lexical_score: float | None = None  # BM25, when the lexical leg found it
    ranks: dict[str, int] = field(default_factory=dict)

    def to_hit(self) -> SearchHit:
        c = self.chunk
        return SearchHit(
            chunk_id=c.chunk_id,
            source=c.source,
            title=c.title,
            score=round(self.score, 6),
            text=c.text,
            heading_path=c.heading_path,
            page=c.page,
            url=c.url,
            collection=c.collection,
        )


def reciprocal_rank_fusion(
    legs: Sequence[tuple[str, Sequence[ScoredChunk], float]], *, k: int = 60
) -> list[Retrieved]:
    """Fuse ranked lists: ``score = Σ weight / (k + rank)`` with 1-based ranks; ties keep leg order."""
    fused: dict[str, Retrieved] = {}
    for name, hits, weight in legs:
        for rank, hit in enumerate(hits, start=1):
            item = fused.get(hit.chunk.chunk_id)
            if item is None:
                item = fused[hit.chunk.chunk_id] = Retrieved(chunk=hit.chunk, score=0.0)
            item.score += weight / (k + rank)
            item.ranks[name] = rank
            if name == "dense":
                item.dense_score = hit.score
            elif name == "lexical":
                item.lexical_score = hit.score
    return sorted(fused.values(), key=lambda r: -r.score)


class HybridRetriever:
    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        *,
        candidates: int = DEFAULTS.candidates,
        rrf_k: int = DEFAULTS.rrf_k,
        dense_weight: float = DEFAULTS.dense_weight,
        lexical_weight: float = DEFAULTS.lexical_weight,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.lexical_weight = lexical_weight

    def retrieve(self, query: str, k: int, filters: SearchFilter | None = None) -> list[Retrieved]:
        n = max(k, self.candidates)
        legs: list[tuple[str, Sequence[ScoredChunk], float]] = []
        if self.dense_weight > 0:
            vector = self.embedder.embed_query(query)
            legs.append(("dense", self.store.dense_search(vector, n, filters), self.dense_weight))
        if self.lexical_weight > 0:
            legs.append(("lexical", self.store.lexical_search(query, n, filters), self.lexical_weight))
        return reciprocal_rank_fusion(legs, k=self.rrf_k)[:k]
