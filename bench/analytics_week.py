"""A realistic synthetic week of help-widget traffic, for `rag-explorer report` and its screenshot.

    python bench/analytics_week.py [--home bench/.cache/week] [--per-day 60] [--seed 7]
    rag-explorer --home bench/.cache/week report --since 2026-11-23 --until 2026-11-30 --html report.html

Ingests this project's docs/ (MiniLM, the default embedder) into ``--home`` unless already there, then
asks real questions through the same path as ``POST /query`` (the service, then the support desk, which
records each interaction): the customer-phrased answerable questions of bench/quality/sets/own_docs.jsonl
and paraphrase groups of same-domain questions the docs do not answer (SSO, Slack, Zendesk, ...), so
that the coverage gaps are real refusals. Each interaction is dated into the week 2026-11-23 .. 29
(more on weekdays), and customers react the way a seeded random model says: some answers rated, most
helpful; some refusals and "not helpful" answers handed off. Nothing is hard-coded in the report.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.feedback import FeedbackRequest  # noqa: E402
from shared.interactions_sqlite import SqliteInteractionStore  # noqa: E402
from shared.service import RagService  # noqa: E402
from shared.settings import load_settings  # noqa: E402
from shared.support import SupportDesk  # noqa: E402

GAPS = {
    "sso": [
        "Can our employees log in with SSO through Okta or SAML?",
        "does rag explorer support single sign-on for staff?",
        "SAML login for our admins - is that possible?",
        "how do I set up Okta SSO",
    ],
    "slack": [
        "is there a Slack integration so people can ask inside our workspace?",
        "can the bot answer questions in Slack channels?",
        "Slack app for rag explorer?",
    ],
    "zendesk": [
        "Can it auto-reply to incoming Zendesk tickets with an answer from our docs?",
        "zendesk integration to answer tickets automatically",
        "hook it up to Zendesk so tickets get a suggested answer",
    ],
    "confluence": [
        "how do I import our Confluence space directly?",
        "confluence connector for ingest?",
    ],
    "kubernetes": [
        "Do you ship a Helm chart for running it on Kubernetes?",
        "deploy on our k8s cluster instead of lambda",
    ],
    "pricing": ["What do the paid plans cost?", "is there an enterprise licence with support?"],
}
WEEK_START = datetime(2026, 11, 23, tzinfo=UTC)
DAY_WEIGHTS = [1.0, 1.1, 1.0, 0.9, 0.8, 0.35, 0.3]  # Monday .. Sunday


def answerable() -> list[str]:
    rows = [json.loads(line) for line in (ROOT / "bench/quality/sets/own_docs.jsonl").open(encoding="utf-8")]
    return [r["question"] for r in rows if r["expected_sources"]]


def ensure_index(service: RagService) -> None:
    if service.store.count_chunks() == 0:
        t = time.perf_counter()
        summary = service.ingest([ROOT / "docs"])
        print(
            f"ingested {summary.documents_indexed} documents in {time.perf_counter() - t:.0f}s",
            file=sys.stderr,
        )


def simulate(desk: SupportDesk, service: RagService, per_day: int, rng: random.Random) -> int:
    store = desk.store
    assert store is not None
    questions, gaps = answerable(), [q for group in GAPS.values() for q in group]
    n = 0
    for day, weight in enumerate(DAY_WEIGHTS):
        for _ in range(round(per_day * weight)):
            question = rng.choice(gaps) if rng.random() < 0.3 else rng.choice(questions)
            started = time.perf_counter()
            response = service.ask(question)
            shown = desk.record(
                response,
                collection=None,
                page_url="https://help.example.com/support",
                latency_ms=round((time.perf_counter() - started) * 1000 + rng.uniform(40, 90), 1),
            )
            iid = shown.interaction_id or ""
            at = WEEK_START + timedelta(days=day, hours=rng.uniform(7, 19))
            kept = store.get(iid)
            assert kept is not None
            store.put(
                kept.model_copy(
                    update={"created_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
                )
            )
            react(desk, shown.decision, shown.confidence, iid, rng)
            n += 1
    return n


def react(desk: SupportDesk, decision: str, confidence: float, iid: str, rng: random.Random) -> None:
    """A customer's reaction: rate some answers (helpful more often when confident), hand off some."""
    if decision == "refuse":
        if rng.random() < 0.45:
            desk.feedback(FeedbackRequest(interaction_id=iid, handoff=True))
        return
    if rng.random() < 0.35:
        helpful = rng.random() < 0.55 + 0.4 * confidence
        comment = None if helpful or rng.random() < 0.5 else "This did not answer my question."
        desk.feedback(FeedbackRequest(interaction_id=iid, helpful=helpful, comment=comment))
        if not helpful and rng.random() < 0.5:
            desk.feedback(FeedbackRequest(interaction_id=iid, handoff=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=ROOT / "bench/.cache/week")
    parser.add_argument("--per-day", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    settings = load_settings(
        {
            "home": args.home,
            "collections": {"default": {"handoff": "mailto:support@example.com"}},
        }
    )
    service = RagService(settings)
    ensure_index(service)
    store = SqliteInteractionStore(settings.interactions_path)
    store.prune("9999")  # start the week afresh
    desk = SupportDesk(settings, store)
    n = simulate(desk, service, args.per_day, random.Random(args.seed))
    print(f"recorded {n} interactions in {settings.interactions_path}")


if __name__ == "__main__":
    main()
