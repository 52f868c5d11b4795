"""Load test of `rag-explorer serve` on 127.0.0.1: N concurrent clients for T seconds, bounded.

    python bench/load.py [--clients 100] [--duration 60] [--embedder hash:256] [--docs docs]
    python bench/load.py --home bench/.cache/latency-10000 [--workers 2] [--max-pending 128]
    python bench/load.py --url http://127.0.0.1:8000 [--pid PID] [--api-key KEY]

Without ``--url`` it starts `rag-explorer serve` on a free port (``--workers``, ``--max-pending``), its
log in a file, either on an existing index (``--home``, e.g. the 10k-chunk SciFact index that
bench/query_latency.py builds; served as it is, with its own settings) or on ``--docs`` (default: this
project's docs/) ingested into a temporary home with ``--embedder`` (default: the configured one, MiniLM).
Each client is a thread with its own keep-alive ``http.client`` connection that sends ``POST /query``
(70%) or ``POST /search`` (30%), one request at a time (after a 503 or 429 it waits ``Retry-After``
seconds, unless ``--ignore-retry-after``), until the duration is up or ``--max-requests`` have been
sent. The questions: ``--questions FILE`` (JSON Lines with ``"text"``), else the SciFact claims
(../shared/data/scifact/queries.jsonl) when ``--home`` is a SciFact index (``latency-*`` or
``*scifact*``), else a small built-in list. A separate prober thread sends ``GET /health`` every 50 ms
on its own connection. Only 127.0.0.1/localhost is ever contacted.

It prints the success rate (2xx), requests/s, p50/p95/p99/max latency (overall and per route), the 503s
(the server's queue was full: they should be fast) with their own latency, errors by status, the
prober's p50/p99 and failures, and the resident memory (``VmRSS``) of the server and its worker
processes together (the server's process tree under ``/proc``) before the load, in the middle and at the
end. The last line (its latencies are those of the 2xx) is ``success_rate=… p50_ms=… p95_ms=… p99_ms=…
rps=… n503=… p50_503_ms=… health_p50_ms=… health_p99_ms=… health_failed=… rss_start_mb=… rss_mid_mb=…
rss_end_mb=…``.
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

from outside_data import data_root

ROOT = Path(__file__).resolve().parent.parent
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_CLIENTS = 1000
MAX_DURATION_S = 600
SCIFACT_QUERIES = data_root() / "scifact" / "queries.jsonl"  # when present (else the built-in list)
PROBE_INTERVAL_S = 0.05
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
    busy_ms: list[float] = field(default_factory=list)  # the 503s
    ok_ms: list[float] = field(default_factory=list)  # the 2xx
    sent: int = 0

    def record(self, route: str, status: str, ms: float) -> None:
        with self.lock:
            self.latencies_ms[route].append(ms)
            self.statuses[status] += 1
            if status == "503":
                self.busy_ms.append(ms)
            elif status.startswith("2"):
                self.ok_ms.append(ms)


@dataclass
class Probe:
    """GET /health every 50 ms on its own connection, while the load runs."""

    url: str
    latencies_ms: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        conn: http.client.HTTPConnection | None = None
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(
                        parts.hostname or "127.0.0.1", parts.port or 80, timeout=10
                    )
                conn.request("GET", "/health")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.failures[str(response.status)] += 1
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                self.failures[type(exc).__name__] += 1
                if conn is not None:
                    conn.close()
                conn = None
            self.latencies_ms.append((time.perf_counter() - started) * 1000)
            self.stop.wait(PROBE_INTERVAL_S)
        if conn is not None:
            conn.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the server and its worker processes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


def rss_mb(pid: int | None) -> float | None:
    """The resident memory of ``pid`` and all its descendants, in MB."""
    if pid is None:
        return None
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024 if total else None


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


def load_questions(args: argparse.Namespace) -> list[str]:
    path: Path | None = args.questions
    if path is None and args.home is not None:
        name = args.home.resolve().name
        if (name.startswith("latency-") or "scifact" in name) and SCIFACT_QUERIES.exists():
            path = SCIFACT_QUERIES
    if path is None:
        return QUESTIONS
    texts = [
        json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    if not texts:
        raise SystemExit(f"{path}: no questions")
    print(f"questions: {len(texts)} from {path}")
    return texts


def prepare_home(args: argparse.Namespace, env: dict[str, str], tmp: str) -> None:
    """``--home`` as it is, or ``--docs`` ingested into a temporary home."""
    if args.home is not None:
        if not (args.home / "index").exists():
            raise SystemExit(f"{args.home}: no index there (build one, e.g. with bench/query_latency.py)")
        env["RAG_EXPLORER_HOME"] = str(args.home.resolve())
        return
    env["RAG_EXPLORER_HOME"] = str(Path(tmp) / "home")
    if args.embedder:
        env["RAG_EXPLORER_EMBEDDER"] = args.embedder
    started = time.perf_counter()
    ingest = subprocess.run(
        [sys.executable, "-m", "local_cli", "ingest", str(args.docs)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if ingest.returncode != 0:
        raise SystemExit(f"ingest failed:\n{ingest.stdout}{ingest.stderr}")
    summary = ingest.stdout.strip().splitlines()[-1] if ingest.stdout.strip() else ""
    print(f"ingested {args.docs} in {time.perf_counter() - started:.1f}s: {summary}")


@contextmanager
def started_server(args: argparse.Namespace) -> Iterator[tuple[str, int | None]]:
    """Run `rag-explorer serve` on ``--home`` or on freshly ingested docs; yields (url, pid)."""
    with tempfile.TemporaryDirectory(prefix="rag-load-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_EXPLORER_")}
        env["PYTHONUNBUFFERED"] = "1"
        prepare_home(args, env, tmp)
        port = free_port()
        log = Path(tmp) / "serve.log"
        command = [sys.executable, "-m", "local_cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--workers", str(args.workers), "--max-pending", str(args.max_pending)]
        with log.open("wb") as sink:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=sink)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process, log)
            print(log.read_text(errors="replace").splitlines()[0])
            yield url, process.pid
        finally:
            process.terminate()  # SIGTERM: a graceful stop, the workers too
            try:
                process.wait(timeout=60)
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
    args: argparse.Namespace,
    headers: dict[str, str],
    questions: list[str],
) -> None:
    rng = random.Random(args.seed * 1000 + number)
    parts = urllib.parse.urlsplit(url)
    conn: http.client.HTTPConnection | None = None
    while time.monotonic() < deadline:
        with results.lock:
            if results.sent >= args.max_requests:
                break
            results.sent += 1
        route = "/query" if rng.random() < 0.7 else "/search"
        question = rng.choice(questions)
        payload = {"question": question} if route == "/query" else {"query": question, "k": 5}
        body = json.dumps(payload).encode()
        started = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(
                    parts.hostname or "127.0.0.1", parts.port or 80, timeout=args.timeout
                )
            conn.request("POST", route, body=body, headers={"Content-Type": "application/json", **headers})
            response = conn.getresponse()
            response.read()
            status = str(response.status)
            retry_after = response.getheader("Retry-After")
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            status, retry_after = type(exc).__name__, None
            if conn is not None:
                conn.close()
            conn = None
        results.record(route, status, (time.perf_counter() - started) * 1000)
        if retry_after and retry_after.isdigit() and not args.ignore_retry_after:
            time.sleep(max(0.0, min(float(retry_after), deadline - time.monotonic())))
    if conn is not None:
        conn.close()


def sample_memory(
    pid: int | None, started: float, duration: float, threads: list[threading.Thread]
) -> float | None:
    """Wait for the clients; returns the memory of the server's process tree half-way through."""
    rss_mid: float | None = None
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        if rss_mid is None and time.monotonic() - started >= duration / 2:
            rss_mid = rss_mb(pid)
        if time.monotonic() > started + duration + 60:
            print("warning: clients still waiting a minute after the duration; not waiting longer")
            break
    return rss_mid


def run(args: argparse.Namespace, url: str, pid: int | None) -> tuple[int, str]:
    """Run the clients and the prober and print the figures; returns the exit code and the last line."""
    headers = {"x-api-key": args.api_key} if args.api_key else {}
    questions = load_questions(args)
    results = Results()
    probe = Probe(url)
    rss_start = rss_mb(pid)
    started = time.monotonic()
    deadline = started + args.duration
    threads = [
        threading.Thread(
            target=client, args=(n, url, deadline, results, args, headers, questions), daemon=True
        )
        for n in range(args.clients)
    ]
    prober = threading.Thread(target=probe.run, daemon=True)
    prober.start()
    for thread in threads:
        thread.start()
    rss_mid = sample_memory(pid, started, args.duration, threads)
    probe.stop.set()
    prober.join(15)
    elapsed = time.monotonic() - started
    rss_end = rss_mb(pid)
    return report(args, results, probe, elapsed, (rss_start, rss_mid, rss_end), pid)


def summary(
    success: float,
    rps: float,
    ok_ms: list[float],
    busy: list[float],
    health: list[float],
    failed: int,
    rss: tuple[float | None, float | None, float | None],
) -> str:
    """The last line: ``name=value`` pairs."""

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    figures = {
        "success_rate": f"{success:.4f}",
        **{f"p{q}_ms": f"{percentile(ok_ms, q):.1f}" for q in (50, 95, 99)},
        "rps": f"{rps:.1f}",
        "n503": str(len(busy)),
        "p50_503_ms": f"{percentile(busy, 50):.1f}",
        **{f"health_p{q}_ms": f"{percentile(health, q):.1f}" for q in (50, 99)},
        "health_failed": str(failed),
        **{f"rss_{name}_mb": fmt(value) for name, value in zip(("start", "mid", "end"), rss, strict=True)},
    }
    return " ".join(f"{name}={value}" for name, value in figures.items())


def report(
    args: argparse.Namespace,
    results: Results,
    probe: Probe,
    elapsed: float,
    rss: tuple[float | None, float | None, float | None],
    pid: int | None,
) -> tuple[int, str]:
    with results.lock:
        statuses = Counter(results.statuses)
        by_route = {route: list(values) for route, values in results.latencies_ms.items()}
        busy = list(results.busy_ms)
        ok_ms = list(results.ok_ms)
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
    print(
        f"latency     2xx: p50 {percentile(ok_ms, 50):.1f} ms  p95 {percentile(ok_ms, 95):.1f} ms  "
        f"p99 {percentile(ok_ms, 99):.1f} ms  max {max(ok_ms, default=float('nan')):.1f} ms"
    )
    print(
        f"503 (queue full): {len(busy)}, p50 {percentile(busy, 50):.1f} ms  "
        f"p99 {percentile(busy, 99):.1f} ms  max {max(busy, default=float('nan')):.1f} ms"
    )
    errors = {status: n for status, n in statuses.items() if not status.startswith("2")}
    print("errors by status: " + (", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "none"))
    failed = sum(probe.failures.values())
    health = probe.latencies_ms
    print(
        f"GET /health prober: {len(health)} probes, p50 {percentile(health, 50):.1f} ms  "
        f"p99 {percentile(health, 99):.1f} ms  max {max(health, default=float('nan')):.1f} ms, "
        f"{failed} failed" + (f" ({dict(probe.failures)})" if failed else "")
    )
    rss_start, rss_mid, rss_end = rss
    if pid is not None:
        print(
            f"RSS of the server and its workers (pid {pid} and descendants): start {fmt(rss_start)} MB, "
            f"middle {fmt(rss_mid)} MB, end {fmt(rss_end)} MB"
        )
    last = summary(success, rps, ok_ms, busy, health, failed, rss)
    return (0 if success >= args.min_success else 1), last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="an already running serve on 127.0.0.1 (default: start one)")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, for its memory")
    parser.add_argument("--home", type=Path, help="serve this existing index (default: ingest --docs)")
    parser.add_argument("--questions", type=Path, help='JSON Lines with "text" (default: see above)')
    parser.add_argument("--workers", type=int, default=2, help="serve --workers (default 2)")
    parser.add_argument("--max-pending", type=int, default=128, help="serve --max-pending (default 128)")
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients (default 100)")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load (default 60)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests")
    parser.add_argument("--timeout", type=float, default=120, help="per-request timeout in seconds")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="what to ingest (default docs/)")
    parser.add_argument("--embedder", help="e.g. hash:256 (default: the configured embedder, MiniLM)")
    parser.add_argument("--api-key", default=os.environ.get("RAG_EXPLORER_LOAD_API_KEY"), help="x-api-key")
    parser.add_argument("--min-success", type=float, default=0.99, help="exit 1 below this success rate")
    parser.add_argument(
        "--ignore-retry-after",
        action="store_true",
        help="retry a 503/429 at once (default: wait Retry-After seconds first, as a client should)",
    )
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
