"""Build the configured :class:`VectorStore`."""

from __future__ import annotations

from shared.chunking import embedding_text
from shared.embeddings.base import Embedder
from shared.extras import needs_extra
from shared.settings import Settings
from shared.stores.base import VectorStore


def make_store(settings: Settings, embedder: Embedder) -> VectorStore:
    if settings.store == "opensearch":
        with needs_extra("aws", "the OpenSearch store"):
            from shared.stores.opensearch import OpenSearchStore

        return OpenSearchStore.from_settings(settings, embedder=embedder)
    if settings.store == "s3vectors":
        with needs_extra("aws", "the S3 Vectors store"):
            from shared.stores.s3vectors import S3VectorsStore

        return S3VectorsStore.from_settings(settings, embedder=embedder)
    from shared.stores.chroma import ChromaStore

    return ChromaStore(
        settings.store_path,
        embedder_name=embedder.name,
        dimension=embedder.dimension,
        lexical_text=embedding_text,
    )
