"""Ingestion with real loaders on real files, a fake embedder and the in-memory store."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.chunking import Chunker, embedding_text
from shared.embeddings.hashing import HashingEmbedder
from shared.ingest import Ingestor, source_for
from shared.stores.memory import MemoryStore


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(64)
        self.embedded = 0

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        self.embedded += len(texts)
        return super().embed_documents(texts)


@pytest.fixture
def setup() -> tuple[Ingestor, MemoryStore, CountingEmbedder]:
    emb = CountingEmbedder()
    store = MemoryStore(dimension=emb.dimension, lexical_text=embedding_text)
    return Ingestor(emb, store, Chunker(emb, chunk_tokens=40, overlap_tokens=8)), store, emb


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


GUIDE = (
    "# Guide\n\n## Install\n\nRun the installer and accept the licence.\n\n"
    "## Upgrade\n\nDownload the new release.\n"
)


def test_ingest_folder_then_reingest_is_a_noop(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    ing, store, emb = setup
    write(tmp_path / "docs" / "guide.md", GUIDE)
    write(tmp_path / "docs" / "sub" / "notes.txt", "Notes\n\nThe cache lives in the home folder.")
    first = ing.ingest_paths([tmp_path / "docs"])
    assert (first.files_seen, first.files_indexed, first.files_failed) == (2, 2, 0)
    assert first.chunks_added == store.count_chunks() > 0
    embedded = emb.embedded
    second = ing.ingest_paths([tmp_path / "docs"])
    assert (second.files_indexed, second.files_unchanged, second.chunks_added) == (0, 2, 0)
    assert emb.embedded == embedded  # nothing re-embedded
    assert store.count_documents() == 2


def test_changed_file_replaces_its_chunks_and_reuses_unchanged_ones(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    ing, store, emb = setup
    guide = write(tmp_path / "guide.md", GUIDE)
    ing.ingest_paths([guide])
    before = set(store.chunk_ids_for_source(source_for(guide)))
    embedded = emb.embedded
    write(guide, GUIDE.replace("Download the new release.", "Download the release from the portal."))
    summary = ing.ingest_paths([guide])
    after = set(store.chunk_ids_for_source(source_for(guide)))
    assert summary.files_indexed == 1
    assert len(before & after) >= 1  # the unchanged Install chunk kept its id ...
    assert emb.embedded - embedded == len(after - before)  # ... and only new chunks were embedded
    assert store.count_chunks() == len(after)  # no orphans
    texts = " ".join(store._chunks[c].text for c in after)
    assert "portal" in texts and "Download the new release." not in texts
    assert set(store.source_hashes().values()) == {next(iter(store.source_hashes().values()))}


def test_bad_files_are_reported_and_the_batch_goes_on(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    ing, store, _ = setup
    write(tmp_path / "good.md", GUIDE)
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "binary.md").write_bytes(b"\x00\x01\x02" * 100)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n")
    write(tmp_path / "z_last.txt", "Last file\n\nIt is still indexed after the bad ones.")
    summary = ing.ingest_paths([tmp_path])
    by_name = {Path(f.path).name: f for f in summary.files}
    assert by_name["good.md"].status == "indexed"
    assert by_name["z_last.txt"].status == "indexed"
    assert by_name["empty.md"].status == "error" and by_name["empty.md"].reason
    assert by_name["binary.md"].status == "error" and "binary" in (by_name["binary.md"].reason or "")
    assert by_name["broken.pdf"].status == "error" and by_name["broken.pdf"].reason
    assert by_name["image.png"].status == "skipped" and "unsupported" in (by_name["image.png"].reason or "")
    assert summary.files_failed == 3 and summary.files_skipped == 1 and summary.files_indexed == 2
    assert store.count_documents() == 2


def test_too_large_file_is_skipped(tmp_path: Path) -> None:
    emb = HashingEmbedder(32)
    store = MemoryStore(dimension=32)
    ing = Ingestor(emb, store, Chunker(emb), max_file_bytes=1000)
    write(tmp_path / "big.txt", "word " * 1000)
    summary = ing.ingest_paths([tmp_path])
    assert summary.files[0].status == "skipped" and "too large" in (summary.files[0].reason or "")


def test_prune_and_remove(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    ing, store, _ = setup
    a = write(tmp_path / "docs" / "a.md", "# A\n\nAlpha text here.")
    write(tmp_path / "docs" / "b.md", "# B\n\nBeta text here.")
    ing.ingest_paths([tmp_path / "docs"])
    a.unlink()
    summary = ing.ingest_paths([tmp_path / "docs"], prune=True)
    assert summary.documents_removed == 1
    assert set(store.source_hashes()) == {source_for(tmp_path / "docs" / "b.md")}
    removed = ing.remove_paths([tmp_path / "docs", tmp_path / "nowhere.md"])
    assert removed.sources_removed == [source_for(tmp_path / "docs" / "b.md")]
    assert removed.not_found == [str(tmp_path / "nowhere.md")]
    assert store.count_chunks() == 0


def test_jsonl_records_keep_their_ids_as_sources(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    ing, store, _ = setup
    write(
        tmp_path / "corpus.jsonl",
        '{"_id": "d1", "title": "T1", "text": "First abstract."}\n'
        '{"_id": "d2", "title": "T2", "text": "Second."}\n',
    )
    summary = ing.ingest_paths([tmp_path / "corpus.jsonl"])
    assert summary.documents_indexed == 2
    assert set(store.source_hashes()) == {"d1", "d2"}


def test_changing_chunk_settings_reindexes_unchanged_files(tmp_path: Path) -> None:
    emb = HashingEmbedder(32)
    store = MemoryStore(dimension=32)
    write(tmp_path / "guide.md", GUIDE)
    Ingestor(emb, store, Chunker(emb, chunk_tokens=40, overlap_tokens=8)).ingest_paths([tmp_path])
    same = Ingestor(emb, store, Chunker(emb, chunk_tokens=40, overlap_tokens=8)).ingest_paths([tmp_path])
    assert same.files_unchanged == 1
    other = Ingestor(emb, store, Chunker(emb, chunk_tokens=64, overlap_tokens=8)).ingest_paths([tmp_path])
    assert other.files_indexed == 1
    assert len(set(store.source_hashes().values())) == 1


def test_new_chunk_settings_rechunk_every_document_and_reuse_unchanged_embeddings(
    tmp_path: Path,
    setup,  # type: ignore[no-untyped-def]
) -> None:
    ing, store, emb = setup
    long_section = " ".join(
        f"Sentence number {i} explains one more detail of the installer." for i in range(12)
    )
    write(tmp_path / "docs" / "guide.md", GUIDE + "\n## Details\n\n" + long_section + "\n")
    ing.ingest_paths([tmp_path / "docs"])
    before = set(store.chunk_ids_for_source(source_for(tmp_path / "docs" / "guide.md")))
    embedded = emb.embedded
    wider = Ingestor(emb, store, Chunker(emb, chunk_tokens=80, overlap_tokens=8))
    again = wider.ingest_paths([tmp_path / "docs"])
    assert again.files_indexed == 1 and again.files_unchanged == 0  # the same file, re-chunked
    after = set(store.chunk_ids_for_source(source_for(tmp_path / "docs" / "guide.md")))
    assert after != before and not (before - after) & set(store.get_embeddings(sorted(before)))  # stale gone
    reused = len(after & before)  # short sections chunk the same way: their vectors are kept
    assert reused > 0 and emb.embedded - embedded == len(after) - reused
    assert wider.ingest_paths([tmp_path / "docs"]).files_unchanged == 1  # and then it is stable


def test_replace_keeps_exactly_the_given_documents_of_one_file(setup) -> None:  # type: ignore[no-untyped-def]
    """The one operation behind re-ingesting a file or an S3 object: stale records go, changed ones are
    re-indexed, unchanged ones cost nothing."""
    from shared.models import Document, Section

    ing, store, emb = setup

    def doc(source: str, text: str) -> Document:
        return Document(source=source, doc_type="jsonl", sections=[Section(text=text)], content_hash=text)

    first = [doc("f#1", "Alpha record text."), doc("f#2", "Beta record text.")]
    assert ing.replace(first, owned=[])[:2] == (2, 2)
    embedded = emb.embedded
    owned = [s for s in store.source_hashes() if s.startswith("f#")]
    changed, added, deleted = ing.replace([doc("f#1", "Alpha record text.")], owned=owned)
    assert (changed, added, deleted) == (0, 0, 1) and emb.embedded == embedded  # f#2 gone, f#1 untouched
    assert sorted(store.source_hashes()) == ["f#1"]
    assert ing.delete_sources(["f#1", "never"]) == (1, 1) and store.count_chunks() == 0
