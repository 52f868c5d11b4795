"""A newcomer's first run through CliRunner on a real Chroma index (hashing embedder): an empty index
says so and how to fill it, `ingest` without a terminal prints progress lines, and the summaries speak
plainly (plurals, a file without an extension, a symlinked duplicate)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from local_cli.commands.query import EMPTY_INDEX_REASON
from local_cli.main import cli


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no .rag-demo here
    return {"RAG_EXPLORER_HOME": str(tmp_path / "home"), "RAG_EXPLORER_EMBEDDER": "hash:256"}


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def guide(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text(
        "# Guide\n\n## Reset\n\nTo reset the index, delete the index folder and ingest again.\n",
        encoding="utf-8",
    )
    return docs


@pytest.mark.parametrize(
    "args",
    [("ask", "How do I reset the index?"), ("search", "reset the index"), ("status",)],
    ids=["ask", "search", "status"],
)
def test_an_empty_index_says_so_and_how_to_fill_it(env: dict[str, str], args: tuple[str, ...]) -> None:
    r = run(env, *args)
    assert r.exit_code == 0, r.output
    assert f"The index in {env['RAG_EXPLORER_HOME']} is empty" in r.stdout
    assert "rag-explorer ingest PATH" in r.stdout
    assert "rag-explorer --home .rag-demo " + args[0] in r.stdout


def test_json_output_stays_the_model_with_a_note_on_stderr(env: dict[str, str]) -> None:
    asked = run(env, "ask", "How do I reset the index?", "--json")
    answer = json.loads(asked.stdout)
    assert answer["decision"] == "refuse" and answer["reasons"][0] == EMPTY_INDEX_REASON
    assert "is empty" in asked.stderr
    found = run(env, "search", "reset", "--json")
    assert json.loads(found.stdout) == {"query": "reset", "hits": []}
    assert "rag-explorer ingest PATH" in found.stderr
    status = run(env, "status", "--json")
    assert json.loads(status.stdout)["chunks"] == 0 and "is empty" in status.stderr


def test_a_filled_index_gives_no_hint(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "ingest", str(guide(tmp_path))).exit_code == 0
    for args in (("ask", "What is the capital of Mongolia?"), ("search", "zzz"), ("status",)):
        r = run(env, *args)
        assert r.exit_code == 0 and "is empty" not in r.output, r.output
    asked = json.loads(run(env, "ask", "What is the capital of Mongolia?", "--json").stdout)
    assert EMPTY_INDEX_REASON not in asked["reasons"]


def test_ingest_without_a_terminal_prints_progress_lines(env: dict[str, str], tmp_path: Path) -> None:
    docs = guide(tmp_path)
    (docs / "faq.txt").write_text("FAQ\n\nInvoices are emailed monthly.\n", encoding="utf-8")
    r = run(env, "ingest", str(docs))
    assert r.exit_code == 0, r.output
    progress = r.stderr.splitlines()
    assert progress[0] == "Ingesting 2 files ..."
    # every tenth of the files prints a line: here each file; the chunks as they are embedded
    assert progress[1].startswith("  1/2 files, ") and progress[2].startswith("  2/2 files, ")
    assert " chunks embedded" in progress[2] and progress[2].endswith(" in all")
    assert r.stdout.splitlines()[-1].startswith("2 files: 2 indexed, 0 unchanged, 0 skipped, 0 failed;")


def test_plain_wording_in_the_summaries(env: dict[str, str], tmp_path: Path) -> None:
    docs = guide(tmp_path)
    (docs / "LICENSE").write_text("MIT\n", encoding="utf-8")
    (docs / "a-copy.md").symlink_to(docs / "guide.md")  # sorts first: still the duplicate
    r = run(env, "ingest", str(docs))
    assert r.exit_code == 0, r.output
    assert "LICENSE: unsupported file type: no file extension" in r.stdout
    assert "(the file types RAG Explorer reads: .htm .html .jsonl" in r.stdout
    assert f"a-copy.md: same file as {docs / 'guide.md'} (through a symlink)" in r.stdout
    assert "3 files: 1 indexed, 0 unchanged, 2 skipped, 0 failed; 1 document, " in r.stdout
    again = json.loads(run(env, "ingest", str(docs), "--json").stdout)
    statuses = {Path(f["path"]).name: f["status"] for f in again["files"]}
    assert statuses == {"a-copy.md": "skipped", "guide.md": "unchanged", "LICENSE": "skipped"}
    removed = run(env, "remove", str(docs / "guide.md"))
    assert removed.stdout.splitlines()[-1].startswith("1 document, ") and " chunk" in removed.stdout
