"""Load test of `rag-explorer serve` on 127.0.0.1: N concurrent clients for T seconds, bounded.

    python bench/load.py [--clients 100] [--duration 60] [--embedder hash:256] [--docs docs]
    python bench/load.py --url http://127.0.0.1:8000 [--pid PID] [--api-key KEY]

Without ``--url`` it ingests ``--docs`` (default: this project's docs/) into a temporary home with
``--embedder`` (default: the configured one, MiniLM) and starts `rag-explorer serve` on a free port, its
log in a file. Each client is a thread with its own keep-alive ``http.client`` connection that sends
``POST /query`` (70%) or ``POST /search`` (30%) with a question from a small built-in list, one request at
a time, until the duration is up or ``--max-requests`` have been sent. Only 127.0.0.1/localhost is ever
contacted.

It prints the success rate (2xx), requests/s, p50/p95/p99/max latency (overall and per route), errors by
status, and the server's resident memory (``VmRSS`` from ``/proc/<pid>/status``) before the load, in the
middle and at the end, to show memory is stable. The first step (idle to warm, a tenth of the way in)
is the 100 connection threads and the caches filling; after that it should stay flat.

Read the latency for what it is: the server handles one request at a time (the resolver lock, like one
Lambda instance), so with 100 clients almost all of it is queueing; the service time per request is
about 1/throughput. The last line is
``success_rate=… p50_ms=… p95_ms=… p99_ms=… rps=… rss_start_mb=… rss_warm_mb=… rss_mid_mb=… rss_end_mb=…``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_CLIENTS = 1000
MAX_DURATION_S = 600
QUESTIONS = [
    "How do I reset the index?",
    "Which file types can I ingest?",
    "How do I rotate my API key?",
    "What does the confidence threshold do?",
    "How do I run the HTTP API locally?",
    "Where are the settings stored?",
    "How are PDF page numbers cited?",
    "What happens when a document is re-ingested unchanged?",
    "How do I filter search results by tag?",
    "Why was my question refused?",
    "How do I deploy to AWS?",
    "What is hybrid search?",
    "What is the capital of Mongolia?",  # out of scope: a refusal is a 200 too
    "Can I use an OpenAI-compatible endpoint for answers?",
    "How do I remove a document from the index?",
]


@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {"/query": [], "/search": []})
    statuses: Counter[str] = field(default_factory=Counter)
    sent: int = 0

    def record(self, route: str, status: str, ms: float) -> None:
        with self.lock:
            self.latencies_ms[route].append(ms)
            self.statuses[status] += 1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(
    url: str, process: subprocess.Popen[bytes] | None, log: Path | None, timeout: float = 300
) -> None:
    parts = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            text = log.read_text(errors="replace") if log else ""
            raise SystemExit(f"serve exited with {process.returncode}:\n{text}")
        try:
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url}/health did not answer within {timeout:.0f} s")
        time.sleep(0.2)


@contextmanager
def started_server(args: argparse.Namespace) -> Iterator[tuple[str, int | None]]:
    """Ingest the docs into a temporary home and run `rag-explorer serve` there; yields (url, pid)."""
    with tempfile.TemporaryDirectory(prefix="rag-load-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_EXPLORER_")}
        env.update({"RAG_EXPLORER_HOME": str(Path(tmp) / "home"), "PYTHONUNBUFFERED": "1"})
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        env.setdefault("OMP_NUM_THREADS", "1")
        if args.embedder:
            env["RAG_EXPLORER_EMBEDDER"] = args.embedder
        cli = [sys.executable, "-m", "local_cli"]
        started = time.perf_counter()
        ingest = subprocess.run(
            [*cli, "ingest", str(args.docs)], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        if ingest.returncode != 0:
            raise SystemExit(f"ingest failed:\n{ingest.stdout}{ingest.stderr}")
        summary = ingest.stdout.strip().splitlines()[-1] if ingest.stdout.strip() else ""
        print(f"ingested {args.docs} in {time.perf_counter() - started:.1f}s: {summary}")
        port = free_port()
        log = Path(tmp) / "serve.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process, log)
            print(log.read_text(errors="replace").splitlines()[0])
            yield url, process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            lines = log.read_text(errors="replace").splitlines()
            bad = [line for line in lines if "Traceback" in line or line.startswith(("ERROR", "CRITICAL"))]
            print(
                f"server log: {len(lines)} lines, {len(bad)} errors" + (f"; first: {bad[0]}" if bad else "")
            )


def client(
    number: int,
    url: str,
    deadline: float,
    results: Results,
    max_requests: int,
    headers: dict[str, str],
    timeout: float,
    seed: int,
) -> None:
    rng = random.Random(seed * 1000 + number)
    parts = urllib.parse.urlsplit(url)
    conn: http.client.HTTPConnection | None = None
    while time.monotonic() < deadline:
        with results.lock:
            if results.sent >= max_requests:
                break
            results.sent += 1
        route = "/query" if rng.random() < 0.7 else "/search"
        question = rng.choice(QUESTIONS)
        payload = {"question": question} if route == "/query" else {"query": question, "k": 5}
        body = json.dumps(payload).encode()
        started = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(
                    parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout
                )
            conn.request("POST", route, body=body, headers={"Content-Type": "application/json", **headers})
            response = conn.getresponse()
            response.read()
            status = str(response.status)
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            status = type(exc).__name__
            if conn is not None:
                conn.close()
            conn = None
        results.record(route, status, (time.perf_counter() - started) * 1000)
    if conn is not None:
        conn.close()


def run(args: argparse.Namespace, url: str, pid: int | None) -> tuple[int, str]:
    """Run the clients and print the figures; returns the exit code and the last line."""
    headers = {"x-api-key": args.api_key} if args.api_key else {}
    results = Results()
    rss_start = rss_mb(pid)
    rss_samples: list[float] = []
    started = time.monotonic()
    deadline = started + args.duration
    threads = [
        threading.Thread(
            target=client,
            args=(n, url, deadline, results, args.max_requests, headers, args.timeout, args.seed),
            daemon=True,
        )
        for n in range(args.clients)
    ]
    for thread in threads:
        thread.start()
    rss_warm: float | None = None  # once every client has connected and the caches are filled
    rss_mid: float | None = None
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        now = rss_mb(pid)
        if now is not None:
            rss_samples.append(now)
        if rss_warm is None and time.monotonic() - started >= args.duration / 10:
            rss_warm = now
        if rss_mid is None and time.monotonic() - started >= args.duration / 2:
            rss_mid = now
        if time.monotonic() > deadline + args.timeout + 5:
            print("warning: clients still waiting after the duration and the timeout; not waiting longer")
            break
    elapsed = time.monotonic() - started
    rss_end = rss_mb(pid)
    with results.lock:
        statuses = Counter(results.statuses)
        by_route = {route: list(values) for route, values in results.latencies_ms.items()}
    all_ms = [ms for values in by_route.values() for ms in values]
    total = sum(statuses.values())
    ok = sum(n for status, n in statuses.items() if status.startswith("2"))
    success = ok / total if total else 0.0
    rps = total / elapsed if elapsed else 0.0

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    print(
        f"\n{args.clients} clients, {elapsed:.1f}s, {total} requests "
        f"({len(by_route['/query'])} /query, {len(by_route['/search'])} /search)"
    )
    print(f"success rate: {success:.4f} ({ok}/{total} 2xx)   throughput: {rps:.1f} requests/s")
    for route, values in [("all", all_ms), *by_route.items()]:
        print(
            f"latency {route:>7}: p50 {percentile(values, 50):.1f} ms  p95 {percentile(values, 95):.1f} ms  "
            f"p99 {percentile(values, 99):.1f} ms  max {max(values, default=float('nan')):.1f} ms"
        )
    errors = {status: n for status, n in statuses.items() if not status.startswith("2")}
    print("errors by status: " + (", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "none"))
    if rps:
        print(
            f"one request at a time through the resolver lock: ~{1000 / rps:.1f} ms of service per request; "
            f"the rest of the latency is queueing behind {args.clients - 1} other clients"
        )
    if pid is not None:
        peak = max(rss_samples, default=None)
        print(
            f"server RSS (pid {pid}): start {fmt(rss_start)} MB (idle), warm {fmt(rss_warm)} MB "
            f"({args.duration / 10:.0f} s in), middle {fmt(rss_mid)} MB, end {fmt(rss_end)} MB, "
            f"peak {fmt(peak)} MB"
        )
    last = (
        f"success_rate={success:.4f} p50_ms={percentile(all_ms, 50):.1f} p95_ms={percentile(all_ms, 95):.1f} "
        f"p99_ms={percentile(all_ms, 99):.1f} rps={rps:.1f} rss_start_mb={fmt(rss_start)} "
        f"rss_warm_mb={fmt(rss_warm)} rss_mid_mb={fmt(rss_mid)} rss_end_mb={fmt(rss_end)}"
    )
    return (0 if success >= args.min_success else 1), last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="an already running serve on 127.0.0.1 (default: start one)")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, for its memory")
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients (default 100)")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load (default 60)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests")
    parser.add_argument("--timeout", type=float, default=120, help="per-request timeout in seconds")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="what to ingest (default docs/)")
    parser.add_argument("--embedder", help="e.g. hash:256 (default: the configured embedder, MiniLM)")
    parser.add_argument("--api-key", default=os.environ.get("RAG_EXPLORER_LOAD_API_KEY"), help="x-api-key")
    parser.add_argument("--min-success", type=float, default=0.99, help="exit 1 below this success rate")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS:
        parser.error(f"--clients must be between 1 and {MAX_CLIENTS}")
    if not 0 < args.duration <= MAX_DURATION_S:
        parser.error(f"--duration must be between 0 and {MAX_DURATION_S} s")
    if args.url:
        host = urllib.parse.urlsplit(args.url).hostname
        if host not in LOCAL_HOSTS:
            parser.error(f"--url must be on 127.0.0.1 or localhost, not {host!r}")
        wait_healthy(args.url, None, None, timeout=10)
        code, last = run(args, args.url.rstrip("/"), args.pid)
    else:
        with started_server(args) as (url, pid):
            code, last = run(args, url, pid)
    print(last)
    return code


if __name__ == "__main__":
    sys.exit(main())
