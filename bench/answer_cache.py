"""Answer cache: a hit's latency against a miss's, side by side in one run, in-process and through the API.

    python bench/answer_cache.py [--questions 120] [--embedder local:all-MiniLM-L6-v2]

Needs no outside data: the corpus is this repository's own documentation (docs/*.md and README.md),
ingested once into a Chroma + BM25 index under bench/.cache/answer-cache-<embedder> with the default
settings (embedding cache on). The questions are made from the documentation's headings ("How do I
<heading>?"), each one new to the index's caches when it is first asked, so its first ask is a real miss
(query embedding included); the second ask, in other case and spacing, is a hit.

Half the questions go through ``RagService.ask``, the other half through ``POST /query`` on the API resolver
(an API Gateway event, no network), where every answer, cached or not, is recorded in the home's
interactions with its own interaction id: the hit path includes that write.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.evaluation import percentile  # noqa: E402
from shared.service import RagService  # noqa: E402
from shared.settings import DEFAULTS, Settings  # noqa: E402

EVENT = ROOT / "tests" / "events" / "query_event.json"


def corpus() -> list[Path]:
    return [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]


def questions(limit: int) -> list[str]:
    """ "How do I <heading>?" for every distinct heading of the documentation, in order."""
    seen: dict[str, None] = {}
    for path in corpus():
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.match(r"#{2,4}\s+(.+)", line)
            if match:
                heading = re.sub(r"[`*_]", "", match.group(1)).strip().rstrip(":").lower()
                if 3 <= len(heading) <= 80:
                    seen.setdefault(f"How do I {heading}?", None)
    return list(seen)[:limit]


def timed(call: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def row(name: str, samples: list[tuple[float, float]]) -> str:
    walls = [w for w, _ in samples]
    cpu = statistics.mean(c for _, c in samples)
    return (
        f"| {name} | {len(samples)} | {percentile(walls, 50):.2f} ms | {percentile(walls, 95):.2f} ms "
        f"| {max(walls):.2f} ms | {cpu:.2f} ms |"
    )


def api_caller(service: RagService) -> Callable[[str], Any]:
    from shared.adapters.http_api import create_app
    from tests.conftest import FakeLambdaContext

    app = create_app(service)
    template = json.loads(EVENT.read_text(encoding="utf-8"))

    def ask(question: str) -> Any:
        event = copy.deepcopy(template)
        event["body"] = json.dumps({"question": question})
        result = app.resolve(event, FakeLambdaContext())
        assert result["statusCode"] == 200, result["body"]
        return json.loads(result["body"])

    return ask


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=120)
    ap.add_argument("--embedder", default=DEFAULTS.embedder)
    args = ap.parse_args()
    home = ROOT / "bench" / ".cache" / f"answer-cache-{re.sub(r'[^a-z0-9]+', '-', args.embedder.lower())}"
    service = RagService(Settings(home=home, embedder=args.embedder))
    summary = service.ingest(corpus())  # a no-op once built
    print(
        f"index: {service.store.count_documents()} documents, {service.store.count_chunks()} chunks "
        f"({summary.files_indexed} files indexed now)",
        file=sys.stderr,
    )
    asked = questions(args.questions)
    service.ask("warm-up: how do I ingest a folder?")  # loads the model
    api = api_caller(service)
    api("warm-up: how do I ask a question?")
    half = len(asked) // 2
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in ("sm", "sh", "am", "ah")}
    ids: set[str] = set()
    for i, question in enumerate(asked):
        variant = "  " + question.upper() + " "
        if i < half:
            results["sm"].append(timed(lambda q=question: service.ask(q)))
            results["sh"].append(timed(lambda q=variant: service.ask(q)))
        else:
            results["am"].append(timed(lambda q=question: ids.add(api(q)["interaction_id"])))
            results["ah"].append(timed(lambda q=variant: ids.add(api(q)["interaction_id"])))
    assert len(ids) == 2 * (len(asked) - half), "every answer, cached or not, has its own interaction"
    print(f"{len(asked)} questions from the documentation's headings; embedder {args.embedder}\n")
    print("| path | asks | p50 | p95 | max | CPU per ask (mean) |")
    print("|---|---|---|---|---|---|")
    print(row("`RagService.ask`, miss", results["sm"]))
    print(row("`RagService.ask`, hit", results["sh"]))
    print(row("`POST /query` (recorded), miss", results["am"]))
    print(row("`POST /query` (recorded), hit", results["ah"]))
    for name, miss, hit in (("ask", "sm", "sh"), ("POST /query", "am", "ah")):
        ratio = percentile([w for w, _ in results[miss]], 50) / percentile([w for w, _ in results[hit]], 50)
        print(f"\n{name}: p50 miss / hit = {ratio:.0f}x", end="")
    print()


if __name__ == "__main__":
    main()
