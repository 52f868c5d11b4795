"""`ingest --collection` and `ask/search --collection` through click's CliRunner on a real Chroma index in a
temporary --home, with a collection URL template from the environment: links in the JSON and in the human
output, the collection filter, the name checked before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from local_cli.main import cli

KEYS = """---
title: Account guide
---
# Account guide

## Rotating API keys {#rotate}

To rotate your API key, open the console and choose Regenerate key. The old key stops working one hour later.
"""
BILLING = (
    "# Billing\n\nInvoices are emailed to the account owner; rotate the billing contact in the console.\n"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    collections = {"support": {"url_template": "https://help.example.com/{path}"}}
    return {
        "RAG_EXPLORER_HOME": str(tmp_path / "home"),
        "RAG_EXPLORER_EMBEDDER": "hash:256",
        "RAG_EXPLORER_COLLECTIONS": json.dumps(collections),
    }


@pytest.fixture
def docs(tmp_path: Path) -> tuple[Path, Path]:
    support, sales = tmp_path / "support", tmp_path / "sales"
    (support / "account").mkdir(parents=True)
    sales.mkdir()
    (support / "account" / "keys.md").write_text(KEYS, encoding="utf-8")
    (sales / "billing.md").write_text(BILLING, encoding="utf-8")
    return support, sales


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def ingest_both(env: dict[str, str], docs: tuple[Path, Path]) -> None:
    support, sales = docs
    assert run(env, "ingest", str(support), "--collection", "support").exit_code == 0
    assert run(env, "ingest", str(sales)).exit_code == 0


def test_search_by_collection_with_links(env: dict[str, str], docs: tuple[Path, Path]) -> None:
    ingest_both(env, docs)
    everything = json.loads(run(env, "search", "rotate console", "--json").stdout)["hits"]
    assert {(Path(h["source"]).name, h["collection"], h["url"]) for h in everything} == {
        ("keys.md", "support", "https://help.example.com/account/keys#rotate"),
        ("billing.md", "default", None),
    }
    support = json.loads(run(env, "search", "rotate console", "--collection", "support", "--json").stdout)
    assert [h["collection"] for h in support["hits"]] == ["support"]
    default = json.loads(run(env, "search", "rotate console", "--collection", "default", "--json").stdout)
    assert [Path(h["source"]).name for h in default["hits"]] == ["billing.md"]
    human = run(env, "search", "rotate console", "--collection", "support").output
    assert "keys.md" in human and "    https://help.example.com/account/keys#rotate\n" in human
    assert "billing.md" not in human


def test_ask_prints_the_citation_link_after_its_location(
    env: dict[str, str], docs: tuple[Path, Path]
) -> None:
    ingest_both(env, docs)
    question = "How do I rotate my API key?"
    data = json.loads(
        run(env, "ask", question, "--collection", "support", "--threshold", "0", "--json").stdout
    )
    assert data["decision"] == "answer"
    assert data["citations"][0]["url"] == "https://help.example.com/account/keys#rotate"
    human = run(env, "ask", question, "--collection", "support", "--threshold", "0").output
    location = "[1] Account guide › Rotating API keys — "
    assert location in human
    after = human.split(location, 1)[1].split("\n")
    assert after[1] == "      https://help.example.com/account/keys#rotate"
    other = json.loads(run(env, "ask", question, "--collection", "nowhere", "--json").stdout)
    assert other["decision"] == "refuse" and other["citations"] == []


def test_the_collection_comes_from_the_environment_and_a_re_ingest_moves_it(
    env: dict[str, str], docs: tuple[Path, Path]
) -> None:
    support, _ = docs
    assert run({**env, "RAG_EXPLORER_COLLECTION": "support"}, "ingest", str(support)).exit_code == 0
    hits = json.loads(run(env, "search", "rotate", "--collection", "support", "--json").stdout)["hits"]
    assert hits and hits[0]["url"] == "https://help.example.com/account/keys#rotate"
    moved = json.loads(run(env, "ingest", str(support), "--collection", "archive", "--json").stdout)
    assert moved["files_indexed"] == 1
    assert json.loads(run(env, "search", "rotate", "--collection", "support", "--json").stdout)["hits"] == []
    archived = json.loads(run(env, "search", "rotate", "--collection", "archive", "--json").stdout)["hits"]
    assert archived and archived[0]["url"] is None  # archive has no url_template


@pytest.mark.parametrize("command", ["ingest", "search", "ask"])
def test_a_bad_collection_name_is_a_usage_error(
    env: dict[str, str], docs: tuple[Path, Path], command: str
) -> None:
    arg = str(docs[0]) if command == "ingest" else "question"
    r = run(env, command, arg, "--collection", "Not Valid")
    assert r.exit_code == 2
    assert "Invalid value for '--collection'" in r.output and "is not a collection name" in r.output
    assert not (Path(env["RAG_EXPLORER_HOME"]) / "index").exists()
