"""BEIR SciFact retrieval benchmark for the hybrid retriever (and each leg alone, side by side).

    python bench/scifact.py [--data ../shared/data/scifact] [--split test]

Ingests the corpus (title + text) into an index under bench/.cache (reused when the settings are the
same), runs the queries of the split, and prints nDCG@10 and Recall@100 for dense only, BM25 only and
the hybrid fusion. The last line is the hybrid's: ``ndcg@10=… recall@100=…``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.evaluation import dedupe_sources, load_qrels, ndcg_at_k, recall_at_k  # noqa: E402
from shared.retrieval import HybridRetriever  # noqa: E402
from shared.service import RagService  # noqa: E402
from shared.settings import Settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    ap.add_argument("--split", default="test")
    ap.add_argument("--embedder", default="local:all-MiniLM-L6-v2")
    ap.add_argument("--home", type=Path, help="index folder (default: bench/.cache/scifact-<settings hash>)")
    ap.add_argument("--chunk-tokens", type=int, default=200)
    ap.add_argument("--candidates", type=int, default=300, help="chunks fetched per leg")
    ap.add_argument("--rrf-k", type=int, default=60)
    ap.add_argument("--dense-weight", type=float, default=1.0)
    ap.add_argument("--lexical-weight", type=float, default=1.0)
    ap.add_argument("--limit", type=int, help="only the first N queries")
    ap.add_argument("--legs", default="dense,bm25,hybrid", help="which of dense,bm25,hybrid to run")
    args = ap.parse_args()

    corpus = args.data / "corpus.jsonl"
    qrels = load_qrels(str(args.data / "qrels" / f"{args.split}.tsv"))
    queries = {}
    with open(args.data / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            if q["_id"] in qrels:
                queries[q["_id"]] = q["text"]
    qids = sorted(queries, key=lambda x: int(x) if x.isdigit() else x)[: args.limit]

    key = hashlib.sha256(f"{args.embedder}|{args.chunk_tokens}|{corpus.stat().st_size}".encode()).hexdigest()[
        :10
    ]
    home = args.home or ROOT / "bench" / ".cache" / f"scifact-{key}"
    settings = Settings(
        home=home,
        embedder=args.embedder,
        chunk_tokens=args.chunk_tokens,
        candidates=args.candidates,
        rrf_k=args.rrf_k,
    )
    service = RagService(settings)
    t0 = time.perf_counter()
    summary = service.ingest([corpus])
    print(
        f"ingest: {summary.documents_indexed} documents, {summary.chunks_added} chunks embedded, "
        f"{service.store.count_chunks()} chunks in index, {time.perf_counter() - t0:.1f}s",
        flush=True,
    )

    configs = {
        "dense": (1.0, 0.0),
        "bm25": (0.0, 1.0),
        "hybrid": (args.dense_weight, args.lexical_weight),
    }
    results: dict[str, tuple[float, float, float]] = {}
    for name, (dw, lw) in configs.items():
        if name not in args.legs.split(","):
            continue
        retriever = HybridRetriever(
            service.embedder,
            service.store,
            candidates=args.candidates,
            rrf_k=args.rrf_k,
            dense_weight=dw,
            lexical_weight=lw,
        )
        nd = rc = 0.0
        t = time.perf_counter()
        for qid in qids:
            hits = retriever.retrieve(queries[qid], args.candidates)
            ranked = dedupe_sources([h.chunk.source for h in hits])
            nd += ndcg_at_k(ranked, qrels[qid], 10)
            rc += recall_at_k(ranked, qrels[qid], 100)
        n = len(qids)
        results[name] = (nd / n, rc / n, (time.perf_counter() - t) / n * 1000)
        print(
            f"{name:7} ndcg@10={nd / n:.4f} recall@100={rc / n:.4f} ({results[name][2]:.1f} ms/query)",
            flush=True,
        )
    print(
        f"queries={len(qids)} split={args.split} embedder={args.embedder} rrf_k={args.rrf_k} "
        f"weights=dense:{args.dense_weight},bm25:{args.lexical_weight}"
    )
    nd, rc, _ = results["hybrid"] if "hybrid" in results else next(iter(results.values()))
    print(f"ndcg@10={nd:.4f} recall@100={rc:.4f}")


if __name__ == "__main__":
    main()
