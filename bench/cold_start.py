"""Cold start of the query and ingest Lambdas (target ≤ 800 ms), median of N fresh interpreters.

    python bench/cold_start.py [--runs 5] [--importtime]

Each run starts a new Python process that imports ``functions/<name>/handler.py`` (Powertools, the
service built from settings, the resolver or the S3 client) and then forces the MiniLM embedder to load
by embedding one query: everything a first request pays for before the store is called. The time is
measured inside the process, from just before the import to the embedded query; the process's own
start-up (the Lambda runtime's part) is shown separately. Tracing is enabled, as on Lambda (the X-Ray
SDK patches the libraries it supports), and the store is never opened. ``--importtime`` prints the
slowest top-level imports of one run (``python -X importtime``).

The last line is ``query_cold_ms=<median> ingest_cold_ms=<median>``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import importlib.util, json, sys, time
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
t1 = time.perf_counter()
module.service.embedder.embed_query("How do I reset the index?")
t2 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1000, "embed_ms": (t2 - t1) * 1000, "total_ms": (t2 - t0) * 1000}))
"""


def child_env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_EXPLORER_", "POWERTOOLS_"))}
    env.update(
        {
            "RAG_EXPLORER_HOME": home,
            "POWERTOOLS_SERVICE_NAME": "rag-explorer",
            "AWS_REGION": env.get("AWS_REGION", "eu-west-1"),
            "AWS_DEFAULT_REGION": env.get("AWS_DEFAULT_REGION", "eu-west-1"),
            "PYTHONPATH": str(ROOT),
            # as on Lambda: Tracer is enabled (it patches botocore, requests, httpx, ... at import)
            "LAMBDA_TASK_ROOT": str(ROOT),
            "AWS_LAMBDA_FUNCTION_NAME": "rag-explorer-cold-start",
        }
    )
    return env


def run_once(handler: Path, env: dict[str, str]) -> tuple[dict[str, float], float]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(handler)], env=env, check=True, capture_output=True, text=True
    ).stdout
    wall = (time.perf_counter() - started) * 1000
    return json.loads(out.strip().splitlines()[-1]), wall


def importtime(handler: Path, env: dict[str, str], top: int = 15) -> None:
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", CHILD, str(handler)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    rows = []
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.removeprefix("import time:").split("|")
            if not name[1:].startswith(" "):  # top level: not indented under another import
                rows.append((int(cumulative), name.strip()))
    print(f"  slowest top-level imports of {handler.parent.name} (cumulative ms):")
    for cumulative, name in sorted(rows, reverse=True)[:top]:
        print(f"    {cumulative / 1000:7.1f}  {name}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--importtime", action="store_true", help="Show the slowest imports of one run.")
    args = ap.parse_args()
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="rag-cold-") as home:
        env = child_env(home)
        floor = statistics.median(
            run_once_floor(env) for _ in range(args.runs)
        )  # the interpreter alone: what the Lambda runtime pays before our code
        print(f"python -c pass (process start)            median {floor:6.0f} ms")
        for name in ("query", "ingest"):
            handler = ROOT / "functions" / name / "handler.py"
            runs = [run_once(handler, env) for _ in range(args.runs)]
            totals = [r["total_ms"] for r, _ in runs]
            medians[name] = statistics.median(totals)
            print(
                f"{name:6} handler import median {statistics.median(r['import_ms'] for r, _ in runs):6.0f} ms"
                f" + first embed (MiniLM load) {statistics.median(r['embed_ms'] for r, _ in runs):5.0f} ms"
                f" = {medians[name]:6.0f} ms (min {min(totals):.0f}, max {max(totals):.0f});"
                f" process wall {statistics.median(w for _, w in runs):6.0f} ms"
            )
            if args.importtime:
                importtime(handler, env)
    print(f"query_cold_ms={medians['query']:.0f} ingest_cold_ms={medians['ingest']:.0f} target_ms=800")


def run_once_floor(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
