"""Evaluation: retrieval and answer metrics, datasets, and a resumable runner.

Metrics follow BEIR conventions (graded qrels, nDCG with log2 discounts) over ranked *sources*: chunk
hits are deduplicated to their documents first.

Datasets:

* a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``): retrieval metrics only;
* a JSON Lines QA file, one ``{"id", "question", "expected_sources": [...] | null}`` per line; ``null``
  means out of scope (the right outcome is a refusal), and an optional ``"negative": "same-domain" |
  "unrelated"`` says which kind, so refusals are reported for each. Expected sources match a hit's source
  exactly or as a path suffix (``docs/cli.md`` matches ``/home/me/project/docs/cli.md``).

An answer is *correct* when its first citation is on an acceptable page; the confidence is judged
against that (:mod:`shared.calibration`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.calibration import ReliabilityBin, expected_calibration_error, reliability_table
from shared.errors import RagExplorerError
from shared.models import AskResponse, SearchResponse

Negative = Literal["same-domain", "unrelated"]
NEGATIVE_KINDS: tuple[str, ...] = ("same-domain", "unrelated")


def dedupe_sources(sources: Sequence[str]) -> list[str]:
    """First occurrence of each source, in rank order (chunks → documents)."""
    seen: set[str] = set()
    out: list[str] = []
    for s in sources:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    dcg = sum(
        (2 ** relevant.get(doc, 0) - 1) / math.log2(i + 2)
        for i, doc in enumerate(ranked[:k])
        if relevant.get(doc, 0)
    )
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    rel = {d for d, g in relevant.items() if g > 0}
    if not rel:
        return 0.0
    return len(rel & set(ranked[:k])) / len(rel)


def mrr(ranked: Sequence[str], relevant: Mapping[str, int], k: int | None = None) -> float:
    for i, doc in enumerate(ranked[:k] if k else ranked):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def hit_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    return 1.0 if any(relevant.get(doc, 0) > 0 for doc in ranked[:k]) else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def load_qrels(path: str) -> dict[str, dict[str, int]]:
    """BEIR qrels TSV (``query-id  corpus-id  score`` with a header line)."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or (i == 0 and not parts[2].strip().lstrip("-").isdigit()):
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


# --------------------------------------------------------------------------- datasets


class DatasetError(RagExplorerError):
    """The evaluation dataset is missing or malformed."""


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    relevant: dict[str, int] | None  # None: out of scope, should be refused
    negative: Negative | None = None  # which kind of out-of-scope question, when the dataset says


@dataclass(frozen=True)
class Dataset:
    kind: Literal["beir", "qa"]
    items: list[EvalItem]
    corpus: Path | None = None  # BEIR corpus, ingested before a local run


def load_dataset(path: Path, *, split: str = "test") -> Dataset:
    if path.is_dir():
        return _load_beir(path, split)
    if not path.is_file():
        raise DatasetError(f"dataset {path} does not exist")
    items: list[EvalItem] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            try:
                qid, question, expected = str(rec["id"]), rec["question"], rec.get("expected_sources")
            except (KeyError, TypeError) as exc:
                raise DatasetError(
                    f"{path}:{lineno}: expected {{'id', 'question', 'expected_sources'}}"
                ) from exc
            if not isinstance(question, str) or not question.strip():
                raise DatasetError(f"{path}:{lineno}: 'question' must be a non-empty string")
            if expected is not None and (
                not isinstance(expected, list) or not all(isinstance(s, str) for s in expected)
            ):
                raise DatasetError(f"{path}:{lineno}: 'expected_sources' must be a list of strings or null")
            if qid in seen:
                raise DatasetError(f"{path}:{lineno}: duplicate id {qid!r}")
            negative = rec.get("negative")
            if negative is not None and (negative not in NEGATIVE_KINDS or expected is not None):
                raise DatasetError(
                    f"{path}:{lineno}: 'negative' must be one of {', '.join(NEGATIVE_KINDS)}, "
                    "on a question whose expected_sources is null"
                )
            seen.add(qid)
            relevant = None if expected is None else {s: 1 for s in expected}
            items.append(EvalItem(id=qid, question=question, relevant=relevant, negative=negative))
    if not items:
        raise DatasetError(f"{path} holds no questions")
    return Dataset(kind="qa", items=items)


def _load_beir(folder: Path, split: str) -> Dataset:
    queries_path, qrels_path = folder / "queries.jsonl", folder / "qrels" / f"{split}.tsv"
    for p in (folder / "corpus.jsonl", queries_path, qrels_path):
        if not p.is_file():
            raise DatasetError(f"BEIR folder {folder} lacks {p.relative_to(folder)}")
    qrels = load_qrels(str(qrels_path))
    items = []
    with queries_path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                q = json.loads(line)
                if str(q["_id"]) in qrels:
                    items.append(
                        EvalItem(id=str(q["_id"]), question=q["text"], relevant=qrels[str(q["_id"])])
                    )
    items.sort(key=lambda i: (len(i.id), i.id))
    return Dataset(kind="beir", items=items, corpus=folder / "corpus.jsonl")


def match_sources(ranked: Sequence[str], expected: Mapping[str, int]) -> dict[str, int]:
    """Relevance of each ranked source: exact match or path-suffix match against the expected ones."""
    out: dict[str, int] = {}
    for source in ranked:
        for want, grade in expected.items():
            if source == want or source.endswith("/" + want.lstrip("/")):
                out[source] = max(out.get(source, 0), grade)
    return out


# --------------------------------------------------------------------------- runs


class EvalTarget(Protocol):
    def search(self, query: str, *, k: int) -> SearchResponse: ...

    def ask(self, question: str) -> AskResponse: ...


class QuestionResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    question: str
    out_of_scope: bool
    negative: Negative | None = None
    sources: list[str] = Field(description="Ranked distinct sources of the search hits.")
    ndcg_at_10: float | None = None
    recall_at_100: float | None = None
    mrr: float | None = None
    mrr_at_10: float | None = None
    hit_at_5: float | None = None
    decision: Literal["answer", "refuse"] | None = None
    confidence: float | None = None
    cited_sources: list[str] = Field(default_factory=list, description="Sources of the answer's citations.")
    correct: bool | None = Field(
        default=None, description="Answered, and the first citation is on an acceptable page."
    )
    latency_ms: float
    error: str | None = None


class EvalSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    dataset: str
    target: str
    questions: int
    answerable: int
    out_of_scope: int
    errors: int
    ndcg_at_10: float | None = Field(default=None, alias="ndcg@10")
    recall_at_100: float | None = Field(default=None, alias="recall@100")
    mrr: float | None = None
    hit_at_5: float | None = Field(default=None, alias="hit@5")
    mrr_at_10: float | None = Field(default=None, alias="mrr@10")
    answer_rate: float | None = Field(default=None, description="Answerable questions answered.")
    refusal_precision: float | None = None
    refusal_recall: float | None = None
    refused_same_domain: float | None = Field(default=None, description="Same-domain negatives refused.")
    refused_unrelated: float | None = Field(default=None, description="Unrelated questions refused.")
    citation_accuracy: float | None = Field(
        default=None, description="Answers to answerable questions whose first citation is acceptable."
    )
    answer_precision: float | None = Field(default=None, description="Answers that were correct.")
    ece: float | None = Field(default=None, description="Expected calibration error of the answers.")
    reliability: list[ReliabilityBin] = Field(default_factory=list)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None


def evaluate_one(target: EvalTarget, item: EvalItem, *, ask: bool, k: int = 100) -> QuestionResult:
    started = time.perf_counter()
    result = QuestionResult(
        id=item.id,
        question=item.question,
        out_of_scope=item.relevant is None,
        negative=item.negative,
        sources=[],
        latency_ms=0.0,
    )
    try:
        hits = target.search(item.question, k=k)
        result.sources = dedupe_sources([h.source for h in hits.hits])
        if item.relevant is not None:
            rel = match_sources(result.sources, item.relevant)
            expected_n = max(1, len([g for g in item.relevant.values() if g > 0]))
            # the ideal DCG and recall are over the *expected* documents, not the matched ones
            result.ndcg_at_10 = _ndcg_matched(result.sources, rel, item.relevant, 10)
            result.recall_at_100 = min(
                1.0, sum(1 for s in result.sources[:100] if rel.get(s, 0) > 0) / expected_n
            )
            result.mrr = mrr(result.sources, rel)
            result.mrr_at_10 = mrr(result.sources, rel, 10)
            result.hit_at_5 = hit_at_k(result.sources, rel, 5)
        if ask:
            answer = target.ask(item.question)
            result.decision, result.confidence = answer.decision, answer.confidence
            result.cited_sources = [c.source for c in answer.citations]
            result.correct = answer_is_correct(answer, item.relevant)
    except RagExplorerError as exc:
        result.error = str(exc)
    result.latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return result


def answer_is_correct(answer: AskResponse, relevant: Mapping[str, int] | None) -> bool:
    """An answer, to an answerable question, whose first citation is on an acceptable page."""
    if answer.decision != "answer" or relevant is None or not answer.citations:
        return False
    return bool(match_sources([answer.citations[0].source], relevant))


def _ndcg_matched(ranked: Sequence[str], rel: Mapping[str, int], ideal: Mapping[str, int], k: int) -> float:
    dcg = sum((2 ** rel.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if rel.get(d, 0))
    grades = sorted((g for g in ideal.values() if g > 0), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades))
    return min(1.0, dcg / idcg) if idcg else 0.0


def _share(rows: Sequence[QuestionResult], hit: Callable[[QuestionResult], bool]) -> float | None:
    return round(sum(1 for r in rows if hit(r)) / len(rows), 4) if rows else None


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(sum(vals) / len(vals), 4) if vals else None


def answer_metrics(results: Sequence[QuestionResult]) -> dict[str, object]:
    """Answer/refuse and calibration figures of the results that were asked (QA datasets)."""
    asked = [r for r in results if r.error is None and r.decision is not None]
    if not asked:
        return {}
    answerable = [r for r in asked if not r.out_of_scope]
    oos = [r for r in asked if r.out_of_scope]
    refused = [r for r in asked if r.decision == "refuse"]
    answers = [r for r in asked if r.decision == "answer"]
    table = reliability_table([r.confidence or 0.0 for r in answers], [bool(r.correct) for r in answers])
    return {
        "answer_rate": _share(answerable, lambda r: r.decision == "answer"),
        "refusal_precision": _share(refused, lambda r: r.out_of_scope),
        "refusal_recall": _share(oos, lambda r: r.decision == "refuse"),
        "refused_same_domain": _share(
            [r for r in oos if r.negative == "same-domain"], lambda r: r.decision == "refuse"
        ),
        "refused_unrelated": _share(
            [r for r in oos if r.negative == "unrelated"], lambda r: r.decision == "refuse"
        ),
        "citation_accuracy": _share([r for r in answers if not r.out_of_scope], lambda r: bool(r.correct)),
        "answer_precision": _share(answers, lambda r: bool(r.correct)),
        "ece": expected_calibration_error(table),
        "reliability": table,
    }


def summarize(results: Sequence[QuestionResult], *, dataset: str, target: str) -> EvalSummary:
    ok = [r for r in results if r.error is None]
    answerable = [r for r in ok if not r.out_of_scope]
    latencies = [r.latency_ms for r in ok]
    values = {
        "dataset": dataset,
        "target": target,
        "questions": len(results),
        "answerable": sum(not r.out_of_scope for r in results),
        "out_of_scope": sum(r.out_of_scope for r in results),
        "errors": len(results) - len(ok),
        "ndcg@10": _mean([r.ndcg_at_10 for r in answerable]),
        "recall@100": _mean([r.recall_at_100 for r in answerable]),
        "mrr": _mean([r.mrr for r in answerable]),
        "hit@5": _mean([r.hit_at_5 for r in answerable]),
        "mrr@10": _mean([r.mrr_at_10 for r in answerable]),
        **answer_metrics(ok),
        "latency_p50_ms": round(percentile(latencies, 50), 2) if latencies else None,
        "latency_p95_ms": round(percentile(latencies, 95), 2) if latencies else None,
    }
    return EvalSummary.model_validate(values)


def read_results(path: Path) -> list[QuestionResult]:
    """Results already written to an ``--output`` file (a truncated last line is ignored)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(QuestionResult.model_validate_json(line))
        except ValueError:
            continue
    return out


def run_eval(
    dataset: Dataset,
    target: EvalTarget,
    *,
    output: Path | None = None,
    k: int = 100,
    on_result: Callable[[QuestionResult], None] | None = None,
) -> list[QuestionResult]:
    """Evaluate every item; with ``output``, results stream there as JSON Lines and items already in it
    are skipped, so an interrupted run resumes where it stopped."""
    done = {r.id: r for r in read_results(output)} if output else {}
    results: list[QuestionResult] = []
    fh = output.open("a", encoding="utf-8") if output else None
    try:
        for item in _pending(dataset.items, done, results):
            result = evaluate_one(target, item, ask=dataset.kind == "qa", k=k)
            results.append(result)
            if fh:
                fh.write(result.model_dump_json() + "\n")
                fh.flush()
            if on_result:
                on_result(result)
    finally:
        if fh:
            fh.close()
    order = {item.id: i for i, item in enumerate(dataset.items)}
    return sorted(results, key=lambda r: order.get(r.id, len(order)))


def _pending(
    items: list[EvalItem], done: dict[str, QuestionResult], results: list[QuestionResult]
) -> Iterator[EvalItem]:
    for item in items:
        if item.id in done:
            results.append(done[item.id])
        else:
            yield item
