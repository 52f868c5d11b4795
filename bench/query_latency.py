"""Query latency at 10k chunks (target: search p95 ≤ 50 ms), excluding process start.

    python bench/query_latency.py [--chunks 10000] [--data ../shared/data/scifact]

Builds (once, cached under bench/.cache) a Chroma + BM25 index of exactly N chunks cut from the SciFact
corpus with the real MiniLM embedder, then times `search` (hybrid: query embedding + k-NN + BM25 + RRF)
and `ask` (search + extractive answer) for the 300 SciFact test claims, after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from outside_data import scifact  # noqa: E402

from shared.chunking import Chunker, embedding_text  # noqa: E402
from shared.evaluation import percentile  # noqa: E402
from shared.loaders import load_file  # noqa: E402
from shared.service import RagService  # noqa: E402
from shared.settings import Settings  # noqa: E402


def build(service: RagService, corpus: Path, n: int) -> None:
    store = service.store
    if store.count_chunks() == n:
        return
    chunker = Chunker(service.embedder, chunk_tokens=100, overlap_tokens=16)
    chunks = []
    for doc in load_file(corpus, max_bytes=1 << 30):
        chunks.extend(chunker.chunk(doc))
        if len(chunks) >= n:
            break
    chunks = chunks[:n]
    if len(chunks) < n:
        raise SystemExit(f"the corpus gives only {len(chunks)} chunks")
    t = time.perf_counter()
    for start in range(0, n, 512):
        part = chunks[start : start + 512]
        store.upsert(part, service.embedder.embed_documents([embedding_text(c) for c in part]))
        service.embed_answer_sentences(part)  # as ingest does
        print(f"\rembedded {start + len(part)}/{n}", end="", file=sys.stderr, flush=True)
    store.flush()
    print(f"\nbuilt {n} chunks in {time.perf_counter() - t:.0f}s", file=sys.stderr)


def warm(service: RagService) -> None:
    """Embed the answer sentences of every chunk ahead, as ingest does (a no-op once cached)."""
    from shared.stores.chroma import _chunk

    rows = service.store._scan(include=["documents", "metadatas"])  # type: ignore[attr-defined]
    chunks = [_chunk(cid, text or "", meta) for cid, text, meta in rows]
    t = time.perf_counter()
    for start in range(0, len(chunks), 500):
        service.embed_answer_sentences(chunks[start : start + 500])
    print(f"answer sentences ready in {time.perf_counter() - t:.1f}s", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, help="BEIR SciFact folder [default ../shared/data/scifact]")
    ap.add_argument("--chunks", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    args.data = scifact(args.data, "query_latency")
    home = ROOT / "bench" / ".cache" / f"latency-{args.chunks}"
    service = RagService(Settings(home=home))
    build(service, args.data / "corpus.jsonl", args.chunks)
    assert service.store.count_chunks() == args.chunks
    warm(service)

    qrels = {line.split("\t")[0] for line in (args.data / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    queries = [json.loads(x) for x in (args.data / "queries.jsonl").read_text().splitlines()]
    texts = [q["text"] for q in queries if q["_id"] in qrels][: args.queries]
    for q in texts[:10]:  # warm-up: caches, lazy imports, HNSW pages
        service.ask(q)

    cpu: dict[str, float] = {}

    def measure(name: str, fn, questions: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
        out = []
        started = time.process_time()
        for q in questions:
            t = time.perf_counter()
            fn(q)
            out.append((time.perf_counter() - t) * 1000)
        cpu[name] = (time.process_time() - started) * 1000 / len(questions)
        return out

    # each measured on questions not asked before, so that no query embedding is remembered
    third = len(texts) // 3
    embed = getattr(service.embedder, "inner", service.embedder).embed_query
    search_ms = measure("search (k=10)", lambda q: service.search(q, k=10), texts[10 : 10 + third])
    ask_ms = measure("ask", lambda q: service.ask(q), texts[10 + third :])
    embed_ms = measure("query embedding", embed, texts)
    print(
        f"index: {service.store.count_chunks()} chunks, embedder {service.embedder.name}, "
        f"{len(texts)} queries"
    )
    for name, ms in (("query embedding", embed_ms), ("search (k=10)", search_ms), ("ask", ask_ms)):
        print(
            f"{name:16} p50 {statistics.median(ms):6.1f} ms  p95 {percentile(ms, 95):6.1f} ms  "
            f"max {max(ms):6.1f} ms  CPU {cpu[name]:6.1f} ms per call (all threads)"
        )
    print(
        f"search_p50_ms={statistics.median(search_ms):.1f} search_p95_ms={percentile(search_ms, 95):.1f} "
        f"ask_p50_ms={statistics.median(ask_ms):.1f} ask_p95_ms={percentile(ask_ms, 95):.1f} "
        f"ask_cpu_ms={cpu['ask']:.1f} chunks={args.chunks}"
    )


if __name__ == "__main__":
    main()
