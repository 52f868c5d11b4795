from __future__ import annotations

import math
from pathlib import Path

import pytest

from shared.evaluation import dedupe_sources, hit_at_k, load_qrels, mrr, ndcg_at_k, percentile, recall_at_k


def test_ndcg_hand_computed() -> None:
    ranked = ["d3", "d1", "d9", "d2"]
    rel = {"d1": 1, "d2": 2}
    dcg = 1 / math.log2(3) + 3 / math.log2(5)
    idcg = 3 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranked, rel, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(ranked, rel, 1) == 0.0
    assert ndcg_at_k(["d2", "d1"], rel, 10) == pytest.approx(1.0)
    assert ndcg_at_k(ranked, {}, 10) == 0.0


def test_recall_mrr_hit() -> None:
    ranked = ["a", "b", "c", "d"]
    rel = {"c": 1, "z": 1, "b": 0}
    assert recall_at_k(ranked, rel, 2) == 0.0
    assert recall_at_k(ranked, rel, 3) == 0.5
    assert mrr(ranked, rel) == pytest.approx(1 / 3)
    assert mrr(ranked, rel, k=2) == 0.0
    assert hit_at_k(ranked, rel, 3) == 1.0 and hit_at_k(ranked, rel, 2) == 0.0


def test_dedupe_and_percentile() -> None:
    assert dedupe_sources(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([], 50) == 0.0


def test_load_qrels_skips_header(tmp_path: Path) -> None:
    p = tmp_path / "q.tsv"
    p.write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t2\n2\td3\t1\n")
    assert load_qrels(str(p)) == {"1": {"d1": 1, "d2": 2}, "2": {"d3": 1}}


# --------------------------------------------------------------------------- datasets and runs

import json  # noqa: E402

from shared.evaluation import (  # noqa: E402
    DatasetError,
    load_dataset,
    match_sources,
    run_eval,
    summarize,
)
from shared.models import AskResponse, SearchHit, SearchResponse  # noqa: E402


class FakeTarget:
    """Answers from a fixed table: question -> (ranked sources, decision)."""

    def __init__(self, table: dict[str, tuple[list[str], str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def search(self, query: str, *, k: int) -> SearchResponse:
        self.calls.append(query)
        sources, _ = self.table[query]
        hits = [
            SearchHit(chunk_id=f"c{i}", source=s, score=1.0 / (i + 1), text="t")
            for i, s in enumerate(sources)
        ]
        return SearchResponse(query=query, hits=hits[:k])

    def ask(self, question: str) -> AskResponse:
        _, decision = self.table[question]
        return AskResponse(
            question=question, decision=decision, confidence=0.9 if decision == "answer" else 0.1
        )  # type: ignore[arg-type]


def write_qa(path: Path, rows: list[dict]) -> Path:  # type: ignore[type-arg]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


QA = [
    {"id": "a1", "question": "q1", "expected_sources": ["docs/a.md"]},
    {"id": "a2", "question": "q2", "expected_sources": ["docs/b.md", "docs/c.md"]},
    {"id": "o1", "question": "q3", "expected_sources": None},
    {"id": "o2", "question": "q4", "expected_sources": None},
]
TABLE = {
    "q1": (["/x/docs/a.md", "/x/docs/z.md"], "answer"),  # hit at rank 1
    "q2": (["/x/docs/z.md", "/x/docs/c.md", "/x/docs/y.md"], "refuse"),  # one of two found, at rank 2
    "q3": (["/x/docs/a.md"], "refuse"),
    "q4": (["/x/docs/b.md"], "answer"),  # out of scope but answered
}


def test_qa_run_metrics_hand_computed(tmp_path: Path) -> None:
    ds = load_dataset(write_qa(tmp_path / "qa.jsonl", QA))
    results = run_eval(ds, FakeTarget(TABLE))
    s = summarize(results, dataset="qa", target="fake")
    q2_ndcg = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert s.ndcg_at_10 == pytest.approx(round((1.0 + q2_ndcg) / 2, 4))
    assert s.recall_at_100 == pytest.approx((1.0 + 0.5) / 2)
    assert s.mrr == pytest.approx((1.0 + 0.5) / 2)
    assert s.hit_at_5 == 1.0
    assert s.answer_rate == 0.5  # a1 answered, a2 refused
    assert s.refusal_precision == 0.5  # refused: a2 (wrong), o1 (right)
    assert s.refusal_recall == 0.5  # o1 refused, o2 answered
    dumped = s.model_dump(by_alias=True)
    assert {
        "ndcg@10",
        "recall@100",
        "mrr",
        "hit@5",
        "answer_rate",
        "refusal_precision",
        "refusal_recall",
        "latency_p50_ms",
        "latency_p95_ms",
    } <= set(dumped)


def test_beir_run_has_no_answer_metrics(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "x"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "1", "text": "q1"}\n{"_id": "9", "text": "unjudged"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n")
    ds = load_dataset(tmp_path)
    assert ds.kind == "beir" and [i.id for i in ds.items] == ["1"] and ds.corpus == tmp_path / "corpus.jsonl"
    target = FakeTarget({"q1": (["d2", "d1"], "answer")})
    s = summarize(run_eval(ds, target), dataset="beir", target="fake")
    assert s.ndcg_at_10 == pytest.approx(round(1 / math.log2(3), 4))
    assert s.answer_rate is None and s.refusal_precision is None and s.refusal_recall is None


def test_resume_skips_answered_ids(tmp_path: Path) -> None:
    ds = load_dataset(write_qa(tmp_path / "qa.jsonl", QA))
    out = tmp_path / "results.jsonl"
    run_eval(load_dataset(write_qa(tmp_path / "first.jsonl", QA[:2])), FakeTarget(TABLE), output=out)
    with out.open("a") as fh:
        fh.write('{"id": "trunc')  # a run killed mid-write
    target = FakeTarget(TABLE)
    results = run_eval(ds, target, output=out)
    assert target.calls == ["q3", "q4"]
    assert [r.id for r in results] == ["a1", "a2", "o1", "o2"]


def test_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="duplicate id"):
        load_dataset(write_qa(tmp_path / "d.jsonl", [QA[0], QA[0]]))
    with pytest.raises(DatasetError, match="expected_sources"):
        load_dataset(write_qa(tmp_path / "e.jsonl", [{"id": 1, "question": "q", "expected_sources": "a.md"}]))
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "missing.jsonl")
    with pytest.raises(DatasetError, match="lacks"):
        load_dataset(tmp_path)


def test_match_sources_by_path_suffix() -> None:
    assert match_sources(["/h/docs/cli.md", "/h/xdocs/cli.md", "d7"], {"docs/cli.md": 1, "d7": 2}) == {
        "/h/docs/cli.md": 1,
        "d7": 2,
    }


# --------------------------------------------------------------------------- calibration and answers

from shared.calibration import expected_calibration_error, reliability_table  # noqa: E402
from shared.models import Citation  # noqa: E402


def test_reliability_table_and_ece_hand_computed() -> None:
    conf = [0.95, 0.91, 0.85, 0.55, 0.52, 0.05]
    ok = [True, True, False, True, False, False]
    table = reliability_table(conf, ok, bins=10)
    assert [(b.low, b.count, b.accuracy) for b in table] == [
        (0.0, 1, 0.0),
        (0.5, 2, 0.5),
        (0.8, 1, 0.0),
        (0.9, 2, 1.0),
    ]
    assert table[1].mean_confidence == pytest.approx(0.535)
    expected = (1 * 0.05 + 2 * abs(0.5 - 0.535) + 1 * 0.85 + 2 * abs(1.0 - 0.93)) / 6
    assert expected_calibration_error(table) == pytest.approx(expected, abs=1e-4)
    assert reliability_table([1.0], [True])[-1].high == 1.0  # confidence 1.0 falls in the last bin
    assert expected_calibration_error([]) is None
    perfect = reliability_table([0.25] * 4, [True, False, False, False], bins=4)
    assert expected_calibration_error(perfect) == 0.0


class CitingTarget(FakeTarget):
    """Like FakeTarget, but answers cite the first ranked source with a fixed confidence."""

    def ask(self, question: str) -> AskResponse:
        sources, decision = self.table[question]
        if decision != "answer":
            return AskResponse(question=question, decision="refuse", confidence=0.2)
        cite = Citation(n=1, chunk_id="c", source=sources[0], quote="q")
        return AskResponse(question=question, decision="answer", confidence=0.8, citations=[cite])


def test_answer_metrics_split_refusals_and_judge_first_citations(tmp_path: Path) -> None:
    rows = [
        {"id": "a1", "question": "q1", "expected_sources": ["docs/a.md"]},
        {"id": "a2", "question": "q2", "expected_sources": ["docs/c.md"]},
        {"id": "h1", "question": "q3", "expected_sources": None, "negative": "same-domain"},
        {"id": "h2", "question": "q4", "expected_sources": None, "negative": "same-domain"},
        {"id": "u1", "question": "q5", "expected_sources": None, "negative": "unrelated"},
    ]
    table = {
        "q1": (["/x/docs/a.md", "/x/docs/z.md"], "answer"),  # right first citation
        "q2": (["/x/docs/z.md", "/x/docs/c.md"], "answer"),  # right page at rank 2 only: wrong citation
        "q3": (["/x/docs/a.md"], "answer"),  # a same-domain negative answered
        "q4": (["/x/docs/a.md"], "refuse"),
        "q5": (["/x/docs/b.md"], "refuse"),
    }
    results = run_eval(load_dataset(write_qa(tmp_path / "qa.jsonl", rows)), CitingTarget(table))
    assert [r.correct for r in results] == [True, False, False, False, False]
    s = summarize(results, dataset="qa", target="fake")
    assert s.mrr_at_10 == pytest.approx((1.0 + 0.5) / 2)
    assert s.answer_rate == 1.0 and s.citation_accuracy == 0.5
    assert s.refused_same_domain == 0.5 and s.refused_unrelated == 1.0
    assert s.answer_precision == pytest.approx(1 / 3, abs=1e-4)
    # three answers at confidence 0.8, one right: one bin, |0.333 - 0.8|
    assert [(b.count, b.accuracy) for b in s.reliability] == [(3, 0.3333)]
    assert s.ece == pytest.approx(0.8 - 1 / 3, abs=1e-3)
    dumped = s.model_dump(by_alias=True)
    assert {"mrr@10", "refused_same_domain", "refused_unrelated", "citation_accuracy", "ece"} <= set(dumped)


def test_malformed_lines_are_reported_with_their_line_number(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"id": "a", "question": "q", "expected_sources": ["x.md"]}\n\n{"id": "b", "question": \n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:3: not valid JSON"):
        load_dataset(p)
    p.write_text('{"id": "a", "question": "q", "expected_sources": null, "negative": "adjacent"}\n')
    with pytest.raises(DatasetError, match=r":1: 'negative' must be one of same-domain, unrelated"):
        load_dataset(p)
    p.write_text('{"id": "a", "question": "q", "expected_sources": ["x.md"], "negative": "unrelated"}\n')
    with pytest.raises(DatasetError, match=r":1: 'negative'"):
        load_dataset(p)
    p.write_text('["not", "an", "object"]\n')
    with pytest.raises(DatasetError, match=r":1: expected"):
        load_dataset(p)
