"""What the S3 Vectors profile costs, from measured request counts and bytes, and how its answers compare
with the local store's on the same questions.

    python bench/s3vectors_cost.py [--embedder local:all-MiniLM-L6-v2] [--questions 60]

Needs no AWS account and no outside data: this repository's documentation (docs/*.md and README.md) is
ingested through ``RagService`` with ``store = "s3vectors"`` into moto's S3 Vectors behind the local fake
(tests/fakes/s3vectors_server.py, which adds QueryVectors and full-text search), and with the default
Chroma store into a temporary home. The fake records every request, so the script counts, per page
ingested and per question asked, the requests of each kind and the logical bytes written (vector data,
key and metadata: what PutVectors is billed on), then prices them with the us-east-1 list prices below.
Questions are made from the documentation's headings ("How do I <heading>?") plus out-of-scope ones; the
answer cache is off so every question reaches the store.

    python bench/s3vectors_cost.py --set borg      # also: gnucash, hatch, python, own_docs

compares the two stores on a quality-suite set instead (bench/quality: a real manual and its questions
written as customers write tickets, with same-domain questions the manual does not answer): hit@5,
answered, refused, first citation right, and how many questions got the same decision and first citation
from both. Both use the shipped confidence model (the quality suite's own figures are leave-one-out).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from shared.service import RagService  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.stores import s3vectors_requests as rq  # noqa: E402
from tests.aws import moto_server  # noqa: E402
from tests.fakes.s3vectors_server import S3VectorsFake  # noqa: E402

# us-east-1 list prices of Amazon S3 Vectors (https://aws.amazon.com/s3/pricing/, "Vectors"), and of the
# request-priced services every profile shares. Check the page for your region before relying on them.
STORAGE_GB_MONTH = 0.06  # logical GB stored (vector data + key + metadata)
PUT_PER_GB = 0.20  # logical GB uploaded by PutVectors
QUERY_PER_MILLION = 2.50  # QueryVectors requests
QUERY_PER_TB_PROCESSED = 0.004  # (vector + key + filterable metadata) x vectors in the index, per query
OTHER_PER_THOUSAND = 0.055  # GetVectors, ListVectors, GetIndex, DeleteVectors
GB = 1024**3

OUT_OF_SCOPE = [
    "How do I reset my router's admin password?",
    "Can I pay my invoice with a credit card?",
    "What is the SLA for the enterprise plan?",
    "How do I export my contacts to Outlook?",
    "Does the mobile app support Face ID?",
    "Where can I download the Windows installer?",
]


def corpus() -> list[Path]:
    return [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]


def questions(n: int) -> list[str]:
    headings: list[str] = []
    for path in corpus():
        for line in path.read_text(encoding="utf-8").splitlines():
            m = re.match(r"^#{2,3} +([A-Za-z][^`#]{8,60})$", line.strip())
            if m:
                headings.append(m.group(1).strip().rstrip(":").lower())
    step = max(1, len(headings) // max(1, n - len(OUT_OF_SCOPE)))
    return [f"How do I {h}?" for h in headings[::step]][: n - len(OUT_OF_SCOPE)] + OUT_OF_SCOPE


def counts(fake: S3VectorsFake) -> Counter[str]:
    from tests.fakes.s3vectors_server import _operation_of

    return Counter(str(_operation_of(r)) for r in fake.requests)


def logical_bytes(body: dict[str, Any]) -> int:
    """What PutVectors bills: 4 bytes a dimension, the key, the metadata (as JSON)."""
    return sum(
        4 * len(v["data"]["float32"]) + len(v["key"].encode()) + rq.json_size(v.get("metadata") or {})
        for v in body["vectors"]
    )


def filterable_bytes(vector: dict[str, Any]) -> int:
    metadata = {k: v for k, v in (vector.get("metadata") or {}).items() if k not in rq.NON_FILTERABLE_KEYS}
    return 4 * len(vector["data"]["float32"]) + len(vector["key"].encode()) + rq.json_size(metadata)


def parity(name: str, embedder: str) -> None:
    """The quality-suite set ``name`` through both stores, side by side."""
    from bench.quality.corpora import CORPORA
    from shared.evaluation import load_dataset, run_eval, summarize

    corpus = CORPORA[name]
    dataset = load_dataset(corpus.questions)
    with tempfile.TemporaryDirectory() as tmp, moto_server() as moto_url, S3VectorsFake(moto_url) as fake:
        cloud, local = services(Path(tmp), fake, embedder)
        for service in (cloud, local):
            service.ingest(corpus.files(), files=corpus.files())
        results = {label: run_eval(dataset, svc) for label, svc in (("s3vectors", cloud), ("chroma", local))}
    same = sum(
        (a.decision, a.cited_sources[:1]) == (b.decision, b.cited_sources[:1])
        for a, b in zip(results["s3vectors"], results["chroma"], strict=True)
    )
    n = len(dataset.items)
    print(f"{name}: {n} questions; same decision and first citation from both stores: {same}/{n}")
    for label, rows in results.items():
        summary = summarize(rows, dataset=name, target=label)
        figures = {
            "hit@5": summary.hit_at_5,
            "answered": summary.answer_rate,
            "same-domain refused": summary.refused_same_domain,
            "unrelated refused": summary.refused_unrelated,
            "cite@1": summary.citation_accuracy,
            "errors": summary.errors,
        }
        print(
            f"  {label:10} "
            + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
        )


def services(tmp: Path, fake: S3VectorsFake, embedder: str) -> tuple[RagService, RagService]:
    """A service on a new vector bucket behind ``fake`` and one on a local Chroma home, same settings."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3VECTORS": fake.url,
    }.items():
        os.environ[name] = value
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3vectors").create_vector_bucket(vectorBucketName=bucket)
    common: dict[str, Any] = {"embedder": embedder, "answer_cache": False, "record_interactions": False}
    cloud = RagService(Settings(home=tmp / "s3v", store="s3vectors", s3vectors_bucket=bucket, **common))
    return cloud, RagService(Settings(home=tmp / "chroma", **common))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="local:all-MiniLM-L6-v2")
    parser.add_argument("--questions", type=int, default=60, help="questions asked to measure requests")
    parser.add_argument("--pages", type=int, default=300, help="scenario: pages of documentation")
    parser.add_argument("--chunks-per-page", type=int, default=10, help="scenario: chunks a page")
    parser.add_argument("--questions-month", type=int, default=3000, help="scenario: questions a month")
    parser.add_argument("--set", help="compare the stores on this quality-suite set instead")
    args = parser.parse_args()
    if args.set:
        parity(args.set, args.embedder)
        return
    asked = questions(args.questions)
    with tempfile.TemporaryDirectory() as tmp, moto_server() as moto_url, S3VectorsFake(moto_url) as fake:
        cloud, local = services(Path(tmp), fake, args.embedder)
        local.ingest(corpus())
        fake.clear_calls()
        pages = 0
        for path in corpus():  # one page at a time, as the ingest function gets them from S3 events
            pages += cloud.ingest([path]).files_indexed
        ingest_calls = counts(fake)
        puts = list(fake.calls("PutVectors"))
        written = sum(logical_bytes(b) for b in puts)
        fake.clear_calls()
        agree = 0
        decisions: Counter[str] = Counter()
        for q in asked:
            a, b = cloud.ask(q), local.ask(q)
            decisions[a.decision] += 1
            top = (a.decision, a.citations[0].source if a.citations else None)
            agree += top == (b.decision, b.citations[0].source if b.citations else None)
        query_calls = counts(fake)
        store: Any = cloud.store
        vectors = [v for b in puts for v in b["vectors"] if v["key"] != rq.MANIFEST_KEY]
        chunks = store.count_chunks()
    report(
        pages,
        chunks,
        vectors,
        written,
        ingest_calls,
        query_calls,
        len(asked),
        agree,
        decisions,
        args,
    )


def report(
    pages: int,
    chunks: int,
    vectors: list[dict[str, Any]],
    written: int,
    ingest_calls: Counter[str],
    query_calls: Counter[str],
    n_questions: int,
    agree: int,
    decisions: Counter[str],
    args: argparse.Namespace,
) -> None:
    stored = sum(
        4 * len(v["data"]["float32"]) + len(v["key"].encode()) + rq.json_size(v["metadata"]) for v in vectors
    ) / max(1, len(vectors))
    scanned = sum(filterable_bytes(v) for v in vectors) / max(1, len(vectors))
    print(
        f"measured on {pages} pages ({chunks} chunks, {chunks / pages:.1f} a page), {n_questions} questions:"
    )
    print(f"  logical bytes per vector: {stored:,.0f} stored, {scanned:,.0f} processed by a query")
    print(f"  ingest requests: {dict(ingest_calls)}; PutVectors logical bytes {written:,}")
    print(f"  query requests: {dict(query_calls)}")
    print(f"  decisions {dict(decisions)}; same decision and top citation as Chroma: {agree}/{n_questions}")
    per_q = query_calls["QueryVectors"] / n_questions
    other_q = sum(n for op, n in query_calls.items() if op != "QueryVectors") / n_questions
    other_page = sum(n for op, n in ingest_calls.items() if op not in ("PutVectors", "QueryVectors")) / pages
    puts_page = ingest_calls["PutVectors"] / pages
    cpp, n_pages, n_asked = args.chunks_per_page, args.pages, args.questions_month
    n_vectors = n_pages * cpp
    print(f"\nscenario: {n_pages} pages of {cpp} chunks ({n_vectors:,} vectors), {n_asked:,} questions/month")
    storage = n_vectors * stored / GB * STORAGE_GB_MONTH
    megabytes = n_vectors * stored / 1024**2
    print(
        f"  idle, a month: {n_vectors:,} x {stored:,.0f} B = {megabytes:.1f} MB x ${STORAGE_GB_MONTH}/GB "
        f"= ${storage:.4f}"
    )
    put_gb = 1000 * cpp * stored / GB
    ingest = put_gb * PUT_PER_GB + 1000 * other_page * OTHER_PER_THOUSAND / 1000
    print(
        f"  per 1,000 pages ingested: {1000 * cpp:,} vectors x {stored:,.0f} B = {put_gb * 1024:.1f} MB x "
        f"${PUT_PER_GB}/GB = ${put_gb * PUT_PER_GB:.4f}, + {1000 * other_page:,.0f} other requests x "
        f"${OTHER_PER_THOUSAND}/1,000 = ${other_page * OTHER_PER_THOUSAND:.4f}: ${ingest:.4f} "
        f"({1000 * puts_page:,.0f} PutVectors requests; at a 128 KB minimum each: "
        f"${1000 * puts_page * 128 / 1024**2 * PUT_PER_GB:.4f})"
    )
    tb = n_vectors * scanned / 1024**4
    per_1000 = 1000 * (per_q * QUERY_PER_MILLION / 1e6 + per_q * tb * QUERY_PER_TB_PROCESSED)
    per_1000 += 1000 * other_q * OTHER_PER_THOUSAND / 1000
    print(
        f"  per 1,000 questions: {1000 * per_q:,.0f} QueryVectors x ${QUERY_PER_MILLION}/M = "
        f"${per_q * QUERY_PER_MILLION / 1000:.4f}, + data processed {1000 * per_q:,.0f} x "
        f"{n_vectors:,} x {scanned:,.0f} B = {1000 * per_q * tb * 1024:.3f} GB x "
        f"${QUERY_PER_TB_PROCESSED}/TB = ${1000 * per_q * tb * QUERY_PER_TB_PROCESSED:.6f}, "
        f"+ {1000 * other_q:,.0f} other requests: ${per_1000:.4f}"
    )
    month = storage + n_asked / 1000 * per_1000
    total = f"${storage:.4f} + {n_asked / 1000:g} x ${per_1000:.4f} = ${month:.4f}"
    print(f"  a month, {n_asked:,} questions: {total}")


if __name__ == "__main__":
    main()
