"""BEIR SciFact retrieval benchmark: a thin wrapper around `rag-explorer eval`.

    python bench/scifact.py [--data ../shared/data/scifact] [--split test] [--legs dense,bm25,hybrid]

Runs `rag-explorer eval DATA --json` once per retrieval configuration (dense only, BM25 only, hybrid)
on one index under bench/.cache (the first run ingests the corpus, title + text; later runs reuse it),
and prints nDCG@10 and Recall@100 side by side. The last line is the hybrid's: `ndcg@10=… recall@100=…`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from outside_data import scifact  # noqa: E402

from local_cli.main import cli  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="BEIR SciFact folder [default ../shared/data/scifact]")
    ap.add_argument("--split", default="test")
    ap.add_argument("--home", type=Path, default=ROOT / "bench" / ".cache" / "scifact")
    ap.add_argument("--legs", default="dense,bm25,hybrid", help="which of dense,bm25,hybrid to run")
    ap.add_argument("--rrf-k", type=int, default=60)
    ap.add_argument("--dense-weight", type=float, default=1.0)
    ap.add_argument("--lexical-weight", type=float, default=1.0)
    args = ap.parse_args()
    args.data = scifact(args.data, "scifact", ("corpus.jsonl", "queries.jsonl", f"qrels/{args.split}.tsv"))

    configs = {"dense": (1.0, 0.0), "bm25": (0.0, 1.0), "hybrid": (args.dense_weight, args.lexical_weight)}
    results = {}
    for name in args.legs.split(","):
        dense, lexical = configs[name]
        env = {
            **os.environ,
            "RAG_EXPLORER_HOME": str(args.home),
            "RAG_EXPLORER_DENSE_WEIGHT": str(dense),
            "RAG_EXPLORER_LEXICAL_WEIGHT": str(lexical),
            "RAG_EXPLORER_RRF_K": str(args.rrf_k),
            "RAG_EXPLORER_CANDIDATES": "300",
        }
        started = time.perf_counter()
        r = CliRunner().invoke(cli, ["eval", str(args.data), "--split", args.split, "--json"], env=env)
        if r.exit_code != 0:
            raise SystemExit(f"rag-explorer eval failed ({name}): {r.output}")
        summary = json.loads(r.stdout)
        results[name] = summary
        print(
            f"{name:7} ndcg@10={summary['ndcg@10']:.4f} recall@100={summary['recall@100']:.4f} "
            f"(p50 {summary['latency_p50_ms']:.1f} ms/query, {time.perf_counter() - started:.0f}s)",
            flush=True,
        )
    last = results.get("hybrid") or next(iter(results.values()))
    print(
        f"queries={last['questions']} split={args.split} rrf_k={args.rrf_k} "
        f"weights=dense:{args.dense_weight},bm25:{args.lexical_weight}"
    )
    print(f"ndcg@10={last['ndcg@10']:.4f} recall@100={last['recall@100']:.4f}")


if __name__ == "__main__":
    main()
