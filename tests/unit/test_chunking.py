from __future__ import annotations

import hashlib

import pytest

from shared.chunking import Chunker, embedding_text
from shared.embeddings.hashing import HashingEmbedder
from shared.models import Document, Section


def doc(sections: list[Section], source: str = "a.md", title: str | None = "Guide") -> Document:
    text = "\n".join(s.text for s in sections)
    return Document(
        source=source,
        title=title,
        doc_type="markdown",
        sections=sections,
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
    )


def words(n: int, prefix: str = "w") -> str:
    return " ".join(f"{prefix}{i}" for i in range(n))


@pytest.fixture
def chunker() -> Chunker:
    return Chunker(HashingEmbedder(max_tokens=256), chunk_tokens=50, overlap_tokens=10)


def test_small_sections_become_one_chunk_each_with_heading_path(chunker: Chunker) -> None:
    d = doc(
        [
            Section(text="Alpha para.", heading_path=["Intro"]),
            Section(text="Beta.", heading_path=["Intro", "Sub"]),
        ]
    )
    chunks = chunker.chunk(d)
    assert [c.text for c in chunks] == ["Alpha para.", "Beta."]
    assert [c.heading_path for c in chunks] == [["Intro"], ["Intro", "Sub"]]
    assert [c.position for c in chunks] == [0, 1]
    assert all(c.source == "a.md" and c.title == "Guide" and c.content_hash == d.content_hash for c in chunks)


def test_paragraphs_are_packed_up_to_budget_and_never_exceed_it(chunker: Chunker) -> None:
    paras = [f"{words(20, f'p{j}x')}." for j in range(6)]
    chunks = chunker.chunk(doc([Section(text="\n\n".join(paras))]))
    assert len(chunks) >= 3
    for c in chunks:
        assert c.n_tokens <= 50
    # every paragraph survives somewhere
    for p in paras:
        assert any(p in c.text for c in chunks)


def test_long_paragraph_is_split_into_overlapping_token_windows(chunker: Chunker) -> None:
    text = words(200)  # one run-on sentence: no sentence boundary to use
    chunks = chunker.chunk(doc([Section(text=text)]))
    assert len(chunks) >= 4
    assert all(c.n_tokens <= 50 for c in chunks)
    first, second = chunks[0].text.split(), chunks[1].text.split()
    assert first[-10:] == second[:10]  # 10 tokens of overlap
    covered = set()
    for c in chunks:
        covered.update(c.text.split())
    assert covered == set(text.split())


def test_sentences_split_before_token_windows(chunker: Chunker) -> None:
    sentences = [f"Sentence {i} " + words(15, f"s{i}x") + "." for i in range(8)]
    chunks = chunker.chunk(doc([Section(text=" ".join(sentences))]))
    for c in chunks:
        assert c.text.endswith("."), c.text  # cut at sentence ends, not mid-sentence


def test_chunk_ids_are_stable_and_content_addressed(chunker: Chunker) -> None:
    d1 = doc([Section(text="One.\n\nTwo.", heading_path=["H"])])
    d2 = doc([Section(text="One.\n\nTwo.", heading_path=["H"])])
    assert [c.chunk_id for c in chunker.chunk(d1)] == [c.chunk_id for c in chunker.chunk(d2)]
    d3 = doc([Section(text="One changed.\n\nTwo.", heading_path=["H"])])
    assert chunker.chunk(d1)[0].chunk_id != chunker.chunk(d3)[0].chunk_id
    other_source = doc([Section(text="One.\n\nTwo.", heading_path=["H"])], source="b.md")
    assert chunker.chunk(d1)[0].chunk_id != chunker.chunk(other_source)[0].chunk_id


def test_repeated_identical_text_gets_distinct_ids(chunker: Chunker) -> None:
    d = doc([Section(text="Same.", heading_path=["H"]), Section(text="Same.", heading_path=["H"])])
    ids = [c.chunk_id for c in chunker.chunk(d)]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_page_numbers_are_kept(chunker: Chunker) -> None:
    d = doc([Section(text="Page one.", page=1), Section(text="Page two.", page=2)])
    assert [c.page for c in chunker.chunk(d)] == [1, 2]


def test_embedding_text_prefixes_title_and_headings() -> None:
    c = Chunker(HashingEmbedder()).chunk(doc([Section(text="Body.", heading_path=["Guide", "Install"])]))[0]
    assert embedding_text(c) == "Guide > Install\nBody."


def test_overlap_must_be_smaller_than_size() -> None:
    with pytest.raises(ValueError):
        Chunker(HashingEmbedder(), chunk_tokens=32, overlap_tokens=32)


# --------------------------------------------------------------------------- blocks


def test_a_code_block_with_blank_lines_stays_whole_and_keeps_its_lead_in(chunker: Chunker) -> None:
    code = "```\nstep one\n\nstep two\n```"
    text = f"{words(40)}.\n\nTo install it, run the following:\n\n{code}\n\nAfterwards {words(5, 'x')}."
    chunks = chunker.chunk(doc([Section(text=text, heading_path=["Install"])]))
    holding = [c for c in chunks if "step one" in c.text]
    assert holding and all(code in c.text for c in holding)  # never cut inside the fence
    assert any("run the following:\n\n" + code in c.text for c in chunks)  # lead-in glued to its block
    for c in chunks:  # no chunk ends on a dangling lead-in
        assert not c.text.rstrip().endswith(":")


def test_a_long_code_block_is_split_into_fenced_runs_of_lines(chunker: Chunker) -> None:
    code = "```bash\n" + "\n".join(f"echo line{i} {words(3, 'a')}" for i in range(40)) + "\n```"
    chunks = chunker.chunk(doc([Section(text=code)]))
    assert len(chunks) > 1
    for c in chunks:
        assert c.text.startswith("```bash\n") and c.text.endswith("\n```") and c.text.count("```") == 2
    lines = [line for c in chunks for line in c.text.split("\n") if line.startswith("echo")]
    assert set(lines) == {f"echo line{i} {words(3, 'a')}" for i in range(40)}  # every line kept


def test_chunker_signature_names_its_version(chunker: Chunker) -> None:
    assert chunker.signature.startswith("chunker-v2/")  # v2: block-aware; changing it re-chunks
