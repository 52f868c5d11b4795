from __future__ import annotations

from shared.answering.extractive import ConfidenceModel, ExtractiveAnswerer
from shared.embeddings.hashing import HashingEmbedder
from shared.models import Chunk
from shared.retrieval import Retrieved


def retrieved(
    text: str, cid: str = "c1", source: str = "/docs/keys.md", dense: float | None = 0.8
) -> Retrieved:
    return Retrieved(
        chunk=Chunk(
            chunk_id=cid, source=source, title="Keys", text=text, position=0, content_hash="h", page=3
        ),
        score=0.03,
        dense_score=dense,
    )


KEYS = (
    "API keys authenticate every request. To rotate your API key, open the console and choose Regenerate. "
    "The old key keeps working for one hour after rotation. Keys are stored encrypted."
)


def answerer(threshold: float = 0.5) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(HashingEmbedder(), threshold=threshold, max_sentences=2)


def test_answer_quotes_sentences_with_citation_numbers() -> None:
    r = answerer(threshold=0.0).answer("How do I rotate my API key?", [retrieved(KEYS)])
    assert r.decision == "answer"
    assert r.answer is not None and "[1]" in r.answer
    assert "Regenerate" in r.answer
    assert len(r.citations) == 1
    c = r.citations[0]
    assert (c.n, c.chunk_id, c.source, c.page) == (1, "c1", "/docs/keys.md", 3)
    # every quoted sentence is verbatim from the chunk
    for part in c.quote.split(" … "):
        assert part in KEYS


def test_citations_are_numbered_by_first_use_across_chunks() -> None:
    items = [
        retrieved("Rotate the API key from the console page.", "c1"),
        retrieved("Rotating an API key invalidates the old API key after an hour.", "c2", "/docs/b.md"),
    ]
    r = answerer(threshold=0.0).answer("rotate api key", items)
    assert [c.n for c in r.citations] == list(range(1, len(r.citations) + 1))
    for c in r.citations:
        assert f"[{c.n}]" in (r.answer or "")


def test_refuses_when_nothing_was_retrieved() -> None:
    r = answerer().answer("anything", [])
    assert r.decision == "refuse" and r.confidence == 0.0 and r.answer is None and r.citations == []
    assert r.reasons


def test_refusal_names_missing_terms_and_threshold() -> None:
    r = answerer(threshold=0.99).answer("How do I reset my Netflix password?", [retrieved(KEYS, dense=0.1)])
    assert r.decision == "refuse"
    assert r.answer is None and r.citations == []
    assert any("below the threshold 0.99" in x for x in r.reasons)
    assert any("netflix" in x for x in r.reasons)


def test_confidence_orders_relevant_above_irrelevant() -> None:
    a = answerer()
    good = a.answer("How do I rotate my API key?", [retrieved(KEYS, dense=0.75)])
    bad = a.answer("What is the capital of Australia?", [retrieved(KEYS, dense=0.05)])
    assert good.confidence > bad.confidence


def test_confidence_model_is_monotonic() -> None:
    m = ConfidenceModel()
    assert m(0.2, 0.2, 0.2) < m(0.5, 0.2, 0.2) < m(0.5, 0.5, 0.2) < m(0.5, 0.5, 1.0)
    assert 0.0 < m(0, 0, 0) < m(1, 1, 1) < 1.0


def test_near_duplicate_sentences_from_two_pages_are_quoted_once() -> None:
    items = [
        retrieved("To rotate your API key, open the console and choose Regenerate.", "c1"),
        retrieved("To rotate your API key, open the console and choose Regenerate!", "c2", "/docs/copy.md"),
    ]
    r = answerer(threshold=0.0).answer("How do I rotate my API key?", items)
    assert r.answer is not None and r.answer.count("Regenerate") == 1
    assert len(r.citations) == 1


def test_list_markers_are_not_quoted() -> None:
    r = answerer(threshold=0.0).answer(
        "rotate api key", [retrieved("Steps:\n\n- Rotate the API key in the console page today.\n- Wait.")]
    )
    assert r.answer is not None and not r.answer.startswith("-")
    assert "- Rotate" not in r.citations[0].quote
