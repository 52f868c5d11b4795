"""What recording interactions costs a request, and what `report` costs at 100k interactions.

    python bench/analytics_week.py          # once: the index and a week of traffic in bench/.cache/week
    python bench/analytics_scale.py [--requests 300] [--interactions 100000]

1. **Recording overhead.** On the week's index (MiniLM), the same questions are answered with
   recording off (``service.ask``) and on (``service.ask`` + ``SupportDesk.record`` into SQLite), the two
   alternating question by question so both see the same machine; p50/p95 of each and of the recording
   step alone. Then the DynamoDB writer's ``put`` against a local moto server (an emulator: a lower bound
   on code cost, not AWS latency).
2. **Report at scale.** ``--interactions`` records (default 100,000) spread over 30 days are written to a
   fresh SQLite file (questions drawn from the quality set and gap paraphrases, with customer noise so
   that thousands are distinct); then the summary and the gaps (embedding and clustering at most 4,000
   distinct questions) are timed, with the peak memory of the process.
"""

from __future__ import annotations

import argparse
import logging
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from analytics_week import GAPS, answerable  # noqa: E402

from shared.evaluation import percentile  # noqa: E402
from shared.feedback import Interaction  # noqa: E402
from shared.interactions_sqlite import SqliteInteractionStore  # noqa: E402
from shared.models import SearchFilter, SearchHit  # noqa: E402
from shared.service import RagService  # noqa: E402
from shared.settings import load_settings  # noqa: E402
from shared.support import SupportDesk  # noqa: E402

NOISE = ["", " thanks", " asap", " please help", "??", " (urgent)", " - we are on the pro plan", " again"]


def ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):.2f} ms, p95 {percentile(values, 95):.2f} ms"


def recording_overhead(home: Path, requests: int) -> None:
    settings = load_settings({"home": home})
    service = RagService(settings)
    with tempfile.TemporaryDirectory() as tmp:
        desk = SupportDesk(settings, SqliteInteractionStore(Path(tmp) / "interactions.sqlite3"))
        questions = answerable() + [q for group in GAPS.values() for q in group]
        rng = random.Random(3)
        for q in questions[:10]:  # warm-up
            desk.record(service.ask(q), collection=None)
        off, on, record_only = [], [], []
        for _ in range(requests):
            q = rng.choice(questions)
            t = time.perf_counter()
            service.ask(q)
            off.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            response = service.ask(q)
            r = time.perf_counter()
            desk.record(response, collection=None, page_url="https://help.example.com/x", latency_ms=1.0)
            end = time.perf_counter()
            on.append((end - t) * 1000)
            record_only.append((end - r) * 1000)
    print(f"ask, recording off: {ms(off)}")
    print(f"ask, recording on (SQLite): {ms(on)}")
    print(f"the recording step alone (SQLite, WAL): {ms(record_only)}")
    print(
        f"overhead p50 {statistics.median(on) - statistics.median(off):+.2f} ms "
        f"(ratio {statistics.median(on) / statistics.median(off):.3f})"
    )
    dynamodb_put(requests)


def dynamodb_put(requests: int) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    from shared.adapters.interactions_dynamodb import DynamoInteractionStore

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client(
            "dynamodb",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        client.create_table(
            TableName="bench",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "interaction_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "interaction_id", "AttributeType": "S"}],
        )
        store = DynamoInteractionStore("bench", client=client)
        times = []
        for n in range(requests):
            item = Interaction(
                interaction_id=f"{n:032x}",
                question="How do I rotate my API key?",
                decision="answer",
                confidence=0.8,
            )
            t = time.perf_counter()
            store.put(item)
            times.append((time.perf_counter() - t) * 1000)
        print(f"DynamoDB put against moto server on 127.0.0.1 (emulator): {ms(times[10:])}")
    finally:
        server.stop()


def fill(store: SqliteInteractionStore, n: int, rng: random.Random) -> None:
    answerable_qs = answerable()
    gaps = [q for group in GAPS.values() for q in group]
    start = datetime.now(UTC) - timedelta(days=30)
    rows = []
    for i in range(n):
        gap = rng.random() < 0.3
        question = rng.choice(gaps if gap else answerable_qs) + rng.choice(NOISE)
        if rng.random() < 0.2:
            question = f"{question} [{rng.randrange(3000)}]"  # a long tail of distinct phrasings
        helpful = None if rng.random() < 0.7 else rng.random() < 0.8
        at = start + timedelta(seconds=rng.uniform(0, 30 * 86400))
        rows.append(
            Interaction(
                interaction_id=f"{i:032x}",
                created_at=at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                collection=rng.choice(["default", "default", "billing"]),
                question=question,
                decision="refuse" if gap else "answer",
                confidence=0.2 if gap else 0.8,
                helpful=None if gap else helpful,
                handoff_at=at.isoformat() if gap and rng.random() < 0.4 else None,
                latency_ms=rng.uniform(20, 120),
            )
        )
    db = store._db()  # bulk load in one transaction; `put` commits one by one
    with db:
        db.executemany(
            "INSERT OR REPLACE INTO interactions VALUES (?, ?, ?, ?, ?)",
            [(r.interaction_id, r.created_at, r.collection, r.decision, r.model_dump_json()) for r in rows],
        )


def report_at_scale(home: Path, n: int) -> None:
    settings = load_settings({"home": home})
    service = RagService(settings)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteInteractionStore(Path(tmp) / "interactions.sqlite3")
        t = time.perf_counter()
        fill(store, n, random.Random(5))
        print(f"wrote {store.count():,} interactions in {time.perf_counter() - t:.1f} s")
        desk = SupportDesk(settings, store)
        t = time.perf_counter()
        summary = desk.summary(since="31d")
        t_summary = time.perf_counter() - t

        def search(text: str) -> list[SearchHit]:
            return service.search(text, k=3, filters=SearchFilter()).hits

        t = time.perf_counter()
        gaps = desk.gaps(embedder=service.embedder, search=search, since="31d")
        t_gaps = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"summary of {summary.totals.questions:,} interactions: {t_summary:.2f} s")
    print(
        f"gaps: {gaps.considered:,} refused or rated-down questions, {gaps.clustered:,} distinct clustered, "
        f"{len(gaps.clusters)} groups: {t_gaps:.2f} s"
    )
    print(f"report total {t_summary + t_gaps:.2f} s; peak RSS {peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=ROOT / "bench/.cache/week")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--interactions", type=int, default=100_000)
    args = parser.parse_args()
    if not (args.home / "index").exists():
        raise SystemExit(f"no index in {args.home}: run python bench/analytics_week.py first")
    recording_overhead(args.home, args.requests)
    report_at_scale(args.home, args.interactions)


if __name__ == "__main__":
    main()
