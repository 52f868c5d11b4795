"""Chunk links through ingest: the document's own URL, else the collection's template on the file's path,
else none; heading anchors appended; changing the URL inputs re-indexes. Real loaders and files, the hashing
embedder and the in-memory store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.chunking import Chunker, embedding_text
from shared.embeddings.hashing import HashingEmbedder
from shared.ingest import Ingestor, Placement, path_in_folder, source_for
from shared.models import Chunk
from shared.retrieval import HybridRetriever
from shared.stores.memory import MemoryStore

TEMPLATE = "https://docs.example.com/{path}"


@pytest.fixture
def setup() -> tuple[Ingestor, MemoryStore]:
    emb = HashingEmbedder(64)
    store = MemoryStore(dimension=emb.dimension, lexical_text=embedding_text)
    return Ingestor(emb, store, Chunker(emb, chunk_tokens=40, overlap_tokens=8)), store


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def chunks_of(store: MemoryStore, path: Path) -> list[Chunk]:
    hits = store.dense_search(np.ones(store.dimension, dtype=np.float32), 1000)  # every chunk
    return sorted((h.chunk for h in hits if h.chunk.source == source_for(path)), key=lambda c: c.position)


def urls(store: MemoryStore, path: Path) -> list[str | None]:
    return [c.url for c in chunks_of(store, path)]


def test_the_template_gives_each_file_its_page_with_index_handling(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    ing, store = setup
    docs = tmp_path / "docs"
    guide = write(docs / "guide" / "install.md", "# Install\n\nRun the installer.\n")
    index = write(docs / "guide" / "index.md", "# Guide\n\nStart here.\n")
    home = write(docs / "README.md", "# Home\n\nWelcome.\n")
    page = write(docs / "faq.html", "<h1>FAQ</h1><p>Answers.</p>")
    summary = ing.ingest_paths([docs], placement=Placement(url_template=TEMPLATE))
    assert summary.files_indexed == 4
    assert set(urls(store, guide)) == {"https://docs.example.com/guide/install"}
    assert set(urls(store, index)) == {"https://docs.example.com/guide/"}
    assert set(urls(store, home)) == {"https://docs.example.com/"}
    assert set(urls(store, page)) == {"https://docs.example.com/faq"}
    raw = Placement(url_template="https://cdn.example.com/raw/{file}")
    ing.ingest_paths([docs], placement=raw)
    assert set(urls(store, guide)) == {"https://cdn.example.com/raw/guide/install.md"}


def test_anchors_are_appended_and_the_documents_own_url_wins(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    ing, store = setup
    own = write(
        tmp_path / "docs" / "keys.md",
        "---\nurl: https://help.example.com/articles/42\n---\n# Keys\n\nIntro.\n\n"
        "## Rotate {#rotate}\n\nRegenerate the key in the console.\n",
    )
    templated = write(tmp_path / "docs" / "billing.md", "# Billing {#billing}\n\nInvoices monthly.\n")
    ing.ingest_paths([tmp_path / "docs"], placement=Placement(url_template=TEMPLATE))
    assert urls(store, own) == [
        "https://help.example.com/articles/42",
        "https://help.example.com/articles/42#rotate",
    ]
    assert urls(store, templated) == ["https://docs.example.com/billing#billing"]


def test_no_url_and_no_template_means_no_link(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    ing, store = setup
    path = write(tmp_path / "keys.md", "# Keys {#keys}\n\nRotate them.\n")
    ing.ingest_paths([path])
    assert urls(store, path) == [None]


def test_a_file_given_by_name_uses_its_name(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    ing, store = setup
    path = write(tmp_path / "deep" / "er" / "setup.md", "# Setup\n\nInstall it.\n")
    ing.ingest_paths([path], placement=Placement(url_template=TEMPLATE))
    assert urls(store, path) == ["https://docs.example.com/setup"]


def test_path_in_folder_prefers_the_deepest_folder_given(tmp_path: Path) -> None:
    file = tmp_path / "docs" / "api" / "keys.md"
    assert path_in_folder(file, [tmp_path / "docs"]) == "api/keys.md"
    assert path_in_folder(file, [tmp_path / "docs", tmp_path / "docs" / "api"]) == "keys.md"
    assert path_in_folder(file, []) == "keys.md"


def test_json_lines_records_are_not_pages_of_their_file(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    ing, store = setup
    records = [
        {"_id": "a", "title": "A", "text": "Alpha text.", "url": "https://kb.example.com/a"},
        {"_id": "b", "title": "B", "text": "Beta text."},
    ]
    write(tmp_path / "kb" / "corpus.jsonl", "\n".join(json.dumps(r) for r in records))
    ing.ingest_paths([tmp_path / "kb"], placement=Placement(url_template=TEMPLATE))
    got = {h.chunk.source: h.chunk.url for h in store.lexical_search("text", 10)}
    assert got == {"a": "https://kb.example.com/a", "b": None}


def test_another_template_re_indexes_and_the_same_one_is_a_no_op(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    ing, store = setup
    path = write(tmp_path / "docs" / "keys.md", "# Keys\n\nRotate them.\n")
    first = ing.ingest_paths([tmp_path / "docs"], placement=Placement(url_template=TEMPLATE))
    again = ing.ingest_paths([tmp_path / "docs"], placement=Placement(url_template=TEMPLATE))
    assert (first.files_indexed, again.files_unchanged, again.chunks_added) == (1, 1, 0)
    moved = ing.ingest_paths(
        [tmp_path / "docs"], placement=Placement(url_template="https://new.example.com/{path}.html")
    )
    assert moved.files_indexed == 1 and moved.chunks_added == 0  # re-indexed, vectors reused
    assert urls(store, path) == ["https://new.example.com/keys.html"]
    dropped = ing.ingest_paths([tmp_path / "docs"])
    assert dropped.files_indexed == 1 and urls(store, path) == [None]


def test_a_new_front_matter_url_or_heading_id_re_indexes(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    ing, store = setup
    path = write(tmp_path / "keys.md", "---\nurl: https://a.example.com/keys\n---\n# Keys\n\nRotate them.\n")
    ing.ingest_paths([path])
    write(path, "---\nurl: https://b.example.com/keys\n---\n# Keys\n\nRotate them.\n")
    assert ing.ingest_paths([path]).files_indexed == 1
    write(path, "---\nurl: https://b.example.com/keys\n---\n# Keys {#keys}\n\nRotate them.\n")
    assert ing.ingest_paths([path]).files_indexed == 1
    assert urls(store, path) == ["https://b.example.com/keys#keys"]


def test_hits_and_citations_carry_the_link(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    from shared.models import Citation

    ing, store = setup
    write(tmp_path / "docs" / "keys.md", "# Keys\n\n## Rotate {#rotate}\n\nRegenerate the API key.\n")
    ing.ingest_paths([tmp_path / "docs"], placement=Placement("support", TEMPLATE))
    retriever = HybridRetriever(ing.embedder, store)
    (top, *_) = retriever.retrieve("regenerate api key", 3)
    hit = top.to_hit()
    assert (hit.url, hit.collection) == ("https://docs.example.com/keys#rotate", "support")
    assert Citation.for_chunk(1, top.chunk, "q").url == hit.url


def test_an_overlong_link_falls_back_to_the_page_then_to_none(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    ing, store = setup
    long_id = "x" * 150
    base = "https://docs.example.com/" + "p" * 1950
    path = write(tmp_path / "k.md", f"---\nurl: {base}\n---\n# K {{#{long_id}}}\n\nText.\n")
    ing.ingest_paths([path])
    assert urls(store, path) == [base]  # with the anchor it would pass 2048 characters
    long_name = write(tmp_path / "docs" / ("n" * 200 + ".md"), "# N\n\nText.\n")
    ing.ingest_paths([tmp_path / "docs"], placement=Placement(url_template=base + "/{path}"))
    assert urls(store, long_name) == [None]  # no link rather than a cut one
