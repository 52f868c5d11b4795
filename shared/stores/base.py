"""The store port: dense and lexical legs; fusion happens in :mod:`shared.retrieval`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from shared.models import Chunk, IndexHealth, ScoredChunk, SearchFilter

if TYPE_CHECKING:
    import numpy as np


def check_embeddings(chunks: Sequence[Chunk], embeddings: np.ndarray, dimension: int) -> None:
    """What every store's ``upsert`` checks first: one vector of the store's dimension per chunk."""
    if embeddings.shape != (len(chunks), dimension):
        raise ValueError(f"expected embeddings of shape {(len(chunks), dimension)}, got {embeddings.shape}")


@runtime_checkable
class VectorStore(Protocol):
    def upsert(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        """Insert or replace chunks by ``chunk_id``."""
        ...

    def delete_source(self, source: str) -> int:
        """Remove every chunk of ``source``; returns how many were removed."""
        ...

    def source_hashes(self) -> dict[str, str]:
        """``source -> content_hash`` for every indexed document."""
        ...

    def chunk_ids_for_source(self, source: str) -> list[str]: ...

    def delete_ids(self, ids: Sequence[str]) -> None:
        """Remove these chunks (ids that are not indexed are ignored)."""
        ...

    def get_embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of these chunks, so an unchanged chunk of a changed document is not embedded
        again; missing ids are left out."""
        ...

    def dense_search(
        self, vector: np.ndarray, k: int, filters: SearchFilter | None = None
    ) -> list[ScoredChunk]:
        """Nearest chunks by cosine similarity (score: higher is closer)."""
        ...

    def lexical_search(self, query: str, k: int, filters: SearchFilter | None = None) -> list[ScoredChunk]:
        """Best chunks by BM25."""
        ...

    def term_counts(self, terms: Sequence[str], collection: str | None = None) -> dict[str, int]:
        """How many indexed chunks (of ``collection``, else of all) contain each term, as the lexical leg
        analyses it (0: the documentation never uses the word). Always in step with ingest and removal."""
        ...

    def count_chunks(self) -> int: ...

    def lexical_count(self) -> int:
        """Chunks in the lexical (BM25) index; equal to ``count_chunks`` when both legs are in step."""
        ...

    def count_documents(self) -> int: ...

    def health(self) -> IndexHealth: ...

    def index_version(self) -> str:
        """A value that changes whenever an ingest or a removal changes the index, and not otherwise:
        at the latest when the change becomes visible to searches (:meth:`flush`, which every ingest and
        removal ends with), never before. Cheap to read (the answer cache reads it before every
        question), and the same for every process: a query process sees another process's ingest within
        a second or two."""
        ...

    def flush(self) -> None:
        """Make pending writes durable and visible to searches (e.g. rebuild a lexical index)."""
        ...
