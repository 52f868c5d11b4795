"""The index version of the on-disk stores: Chroma (a file beside the index) and OpenSearch (the mapping's
``_meta``, against osmem-server or ``OPENSEARCH_URL``). It changes with every ingest or removal that changes
the index, not with one that does not, survives a restart, and a second store on the same index (another
process: the query function, while the ingest function writes) sees the change."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from shared.chunking import Chunker
from shared.embeddings.hashing import HashingEmbedder
from shared.ingest import Ingestor
from shared.stores import opensearch as opensearch_store
from shared.stores.base import VectorStore
from shared.stores.chroma import ChromaStore
from shared.stores.opensearch import UNVERSIONED, OpenSearchStore
from tests.integration.test_opensearch_store import os_client  # noqa: F401 - the module's server fixture

pytestmark = pytest.mark.integration
EMB = HashingEmbedder(64)


def ingestor(store: VectorStore) -> Ingestor:
    return Ingestor(EMB, store, Chunker(EMB, chunk_tokens=64, overlap_tokens=8))


def docs_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "keys.md").write_text("# Keys\n\nRotate the API key from the console.\n", encoding="utf-8")
    (folder / "billing.md").write_text("# Billing\n\nInvoices are emailed monthly.\n", encoding="utf-8")
    return folder


def check_versions(writer: VectorStore, reader: VectorStore, folder: Path) -> None:
    """What every store promises about its version, seen by the writer and by a second reader."""
    first = writer.index_version()
    assert reader.index_version() == first
    ingest = ingestor(writer)
    ingest.ingest_paths([folder])
    after_ingest = writer.index_version()
    assert after_ingest != first and reader.index_version() == after_ingest
    ingest.ingest_paths([folder])  # unchanged: the index is the same, and so is the version
    assert writer.index_version() == after_ingest
    (folder / "keys.md").write_text("# Keys\n\nKeys expire after a year.\n", encoding="utf-8")
    ingest.ingest_paths([folder])
    changed = writer.index_version()
    assert changed != after_ingest and reader.index_version() == changed
    summary = ingest.remove_paths([folder / "keys.md"])
    assert summary.chunks_removed and writer.index_version() not in (first, after_ingest, changed)
    assert reader.index_version() == writer.index_version()
    assert ingest.remove_paths([folder / "gone.md"]).not_found  # nothing removed: nothing changed
    assert reader.index_version() == writer.index_version()


def test_chroma_version(tmp_path: Path) -> None:
    index = tmp_path / "index"
    writer = ChromaStore(index, embedder_name=EMB.name, dimension=EMB.dimension)
    reader = ChromaStore(index, embedder_name=EMB.name, dimension=EMB.dimension)
    check_versions(writer, reader, docs_folder(tmp_path))
    last = writer.index_version()
    reopened = ChromaStore(index, embedder_name=EMB.name, dimension=EMB.dimension)
    assert reopened.index_version() == last  # a restart is not a change


@pytest.fixture
def index(os_client: OpenSearch) -> Iterator[str]:  # noqa: F811 - the imported server fixture
    name = f"rag-version-{uuid.uuid4().hex[:12]}"
    yield name
    os_client.indices.delete(index=name, ignore_unavailable=True)


def test_opensearch_version(
    os_client: OpenSearch,  # noqa: F811
    index: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(opensearch_store, "VERSION_TTL_S", 0.0)  # the reader re-reads at once
    writer = OpenSearchStore(client=os_client, index=index, embedder_name=EMB.name, dimension=EMB.dimension)
    reader = OpenSearchStore(client=os_client, index=index, embedder_name=EMB.name, dimension=EMB.dimension)
    assert writer.index_version() == "0-0"  # an empty index
    check_versions(writer, reader, docs_folder(tmp_path))


def test_opensearch_version_before_the_index_exists(
    os_client: OpenSearch,  # noqa: F811
    index: str,
) -> None:
    class ReadOnly(OpenSearchStore):
        def _ensure_index(self, *, write: bool = False) -> bool:
            return False  # the query role before the first ingest: no index, not ours to create

    store = ReadOnly(client=os_client, index=index, embedder_name=EMB.name, dimension=EMB.dimension)
    assert store.index_version() == UNVERSIONED


def test_opensearch_reader_keeps_a_version_for_a_moment(
    os_client: OpenSearch,  # noqa: F811
    index: str,
    tmp_path: Path,
) -> None:
    """Reads are cheap: one search per VERSION_TTL_S, however many questions come in between; the writer
    itself reads again after its own writes."""
    writer = OpenSearchStore(client=os_client, index=index, embedder_name=EMB.name, dimension=EMB.dimension)
    reader = OpenSearchStore(client=os_client, index=index, embedder_name=EMB.name, dimension=EMB.dimension)
    first = reader.index_version()
    ingestor(writer).ingest_paths([docs_folder(tmp_path)])
    assert writer.index_version() != first
    assert reader.index_version() == first  # within VERSION_TTL_S: not read again
    reader._version_read_at = None  # the moment has passed
    assert reader.index_version() == writer.index_version()
