"""`rag-explorer report` on a local home (Chroma index + interactions.sqlite3) and against the API of
`rag-explorer serve` with a secret key: the same numbers in --json, text and --html."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from local_cli.main import cli
from shared.feedback import CitedPage, Interaction
from shared.interactions_sqlite import SqliteInteractionStore
from shared.models import utc_timestamp
from tests.servers import serve

pytestmark = pytest.mark.integration

GUIDE = (
    "# Billing\n\n## Invoices\n\nInvoices are e-mailed to the account owner on the first day of each month.\n"
)
PAGE = CitedPage(n=1, source="docs/billing.md", title="Billing", url="https://docs.example.com/billing")


def interactions() -> list[Interaction]:
    now = utc_timestamp()
    rows = [
        ("answer", True, None, "When are invoices sent?"),
        ("answer", False, now, "Can I get invoices by post?"),
        ("refuse", None, now, "Can I export invoices to CSV?"),
        ("refuse", None, None, "export invoices as a CSV file"),
        ("refuse", None, None, "<script>alert(1)</script> invoices to csv export"),
    ]
    return [
        Interaction(
            interaction_id=f"{n:032x}",
            created_at=now,
            question=q,
            decision=d,
            confidence=0.8 if d == "answer" else 0.1,
            helpful=h,
            handoff_at=handoff,
            latency_ms=100.0 * n,
            citations=[PAGE] if d == "answer" else [],
        )
        for n, (d, h, handoff, q) in enumerate(rows, 1)
    ]


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return make_home(tmp_path)


def make_home(tmp_path: Path) -> dict[str, str]:
    """A home with a one-page index and :func:`interactions` recorded; returns its environment."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "billing.md").write_text(GUIDE, encoding="utf-8")
    env = {"RAG_EXPLORER_HOME": str(tmp_path / "home"), "RAG_EXPLORER_EMBEDDER": "hash:256"}
    assert CliRunner().invoke(cli, ["ingest", str(docs)], env=env).exit_code == 0
    store = SqliteInteractionStore(tmp_path / "home" / "interactions.sqlite3")
    for item in interactions():
        store.put(item)
    return env


def test_report_json_text_and_html_agree(home: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", "--since", "1d", "--json", "--html", str(out)], env=home)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    totals = data["summary"]["totals"]
    assert (totals["questions"], totals["answered"], totals["deflected"], totals["handoffs"]) == (5, 2, 1, 2)
    assert data["gaps"]["considered"] == 4
    export = data["gaps"]["clusters"][0]
    assert export["size"] == 3 and export["refused"] == 3
    assert data["summary"]["weak_pages"][0]["page"] == "https://docs.example.com/billing"
    page = out.read_text(encoding="utf-8")
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', page)) == 3
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<a href="https://docs.example.com/billing">' in page
    text = CliRunner().invoke(cli, ["report", "--since", "1d"], env=home)
    assert text.exit_code == 0
    assert "5 questions -> 2 answered -> 1 not rated down -> 1 deflected (20%)" in text.stdout
    assert "3 questions (3 refused, 0 rated down)" in text.stdout


def test_report_rejects_a_bad_period(home: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["report", "--since", "last week"], env=home)
    assert result.exit_code == 2 and "7d" in result.output


def test_report_from_the_api_with_a_secret_key(home: dict[str, str], tmp_path: Path) -> None:
    env = {**home, "RAG_EXPLORER_SERVE_API_KEYS": "sk-report-0123456789"}
    with serve(env) as (url, _):
        remote = {
            "RAG_EXPLORER_HOME": str(tmp_path / "empty"),
            "RAG_EXPLORER_ENDPOINT": url,
            "RAG_EXPLORER_API_KEY": "sk-report-0123456789",
        }
        result = CliRunner().invoke(cli, ["report", "--since", "1d", "--json"], env=remote)
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["summary"]["totals"]["questions"] == 5 and data["gaps"]["clusters"][0]["size"] == 3
        denied = CliRunner().invoke(
            cli, ["report"], env={**remote, "RAG_EXPLORER_API_KEY": "wrong-key-000000"}
        )
        assert denied.exit_code == 1 and "403" in denied.output
