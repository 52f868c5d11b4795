"""The `rag-explorer` CLI through click's CliRunner, on a real Chroma index in a temporary --home.

These tests use the small hashing embedder (fast, no model files); the MiniLM end to end run is in
test_demo.py.
"""

from __future__ import annotations

import json
from contextlib import chdir
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from local_cli.main import cli

GUIDE = """---
title: Account guide
tags: [security]
---
# Account guide

## Rotating API keys

To rotate your API key, open the console and choose Regenerate key. The old key stops working one hour later.

## Invoices

Invoices are emailed to the account owner on the first day of every month.
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"RAG_EXPLORER_HOME": str(tmp_path / "home"), "RAG_EXPLORER_EMBEDDER": "hash:256"}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "account.md").write_text(GUIDE, encoding="utf-8")
    (d / "cache.txt").write_text(
        "Cache\n\nClear the download cache with the purge command.\n", encoding="utf-8"
    )
    (d / "broken.pdf").write_bytes(b"%PDF-1.7\ntruncated")
    return d


def run(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def ingest(env: dict[str, str], docs: Path) -> dict:  # type: ignore[type-arg]
    r = run(env, "ingest", str(docs), "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_ingest_json_summary_reports_each_file(env: dict[str, str], docs: Path) -> None:
    summary = ingest(env, docs)
    assert summary["files_seen"] == 3 and summary["files_indexed"] == 2 and summary["files_failed"] == 1
    broken = next(f for f in summary["files"] if f["path"].endswith("broken.pdf"))
    assert broken["status"] == "error" and broken["reason"]
    again = ingest(env, docs)
    assert again["files_unchanged"] == 2 and again["chunks_added"] == 0


def test_human_ingest_output(env: dict[str, str], docs: Path) -> None:
    r = run(env, "ingest", str(docs))
    assert r.exit_code == 0
    assert "broken.pdf" in r.output and "2 indexed" in r.output and "1 failed" in r.output
    strict = run(env, "ingest", "--strict", str(docs))
    assert strict.exit_code == 1 and "1 file failed to load" in strict.output


def test_unusable_home_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = run({"RAG_EXPLORER_HOME": str(blocker / "home"), "RAG_EXPLORER_EMBEDDER": "hash:256"}, "status")
    assert r.exit_code == 1 and "cannot open the Chroma index" in r.output and "Traceback" not in r.output


def test_search_json_shape(env: dict[str, str], docs: Path) -> None:
    ingest(env, docs)
    r = run(env, "search", "purge the download cache", "-k", "2", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["query"] == "purge the download cache"
    assert 1 <= len(data["hits"]) <= 2
    hit = data["hits"][0]
    assert {"chunk_id", "source", "title", "score", "text"} <= set(hit)
    assert hit["source"].endswith("cache.txt") and isinstance(hit["score"], float)


def test_ask_json_shape_and_citations(env: dict[str, str], docs: Path) -> None:
    ingest(env, docs)
    r = run(env, "ask", "How do I rotate my API key?", "--threshold", "0", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["decision"] == "answer" and 0.0 <= data["confidence"] <= 1.0
    assert "Regenerate" in data["answer"]
    c = data["citations"][0]
    assert {"n", "chunk_id", "source", "quote"} <= set(c) and c["source"].endswith("account.md")
    assert f"[{c['n']}]" in data["answer"]


INSTALL = """# Command line tool

## Installing on Linux

Download the archive first. To install the tool system-wide, run the following:

```
sudo tar -C /opt -xzf tool.tar.gz
sudo ln -s /opt/tool/bin/tool /usr/local/bin/tool
```

Then open a new terminal.
"""


def test_ask_prints_the_command_block_verbatim_and_where_it_comes_from(
    env: dict[str, str], docs: Path
) -> None:
    (docs / "install.md").write_text(INSTALL, encoding="utf-8")
    ingest(env, docs)
    question = "how do i install the tool system-wide on linux"
    data = json.loads(run(env, "ask", question, "--threshold", "0", "--json").stdout)
    block = "```\nsudo tar -C /opt -xzf tool.tar.gz\nsudo ln -s /opt/tool/bin/tool /usr/local/bin/tool\n```"
    assert "run the following: [1]\n\n" + block in data["answer"]
    c = data["citations"][0]
    assert c["location"] == "Command line tool › Installing on Linux"
    assert c["heading_path"] == ["Command line tool", "Installing on Linux"]
    human = run(env, "ask", question, "--threshold", "0").output
    # the block is printed as it is (indented, not re-wrapped), the citation with its location
    assert "  sudo ln -s /opt/tool/bin/tool /usr/local/bin/tool\n" in human
    assert "[1] Command line tool › Installing on Linux — " in human and "install.md" in human


def test_ask_refuses_with_reasons_and_escalation(env: dict[str, str], docs: Path) -> None:
    ingest(env, docs)
    r = run(env, "ask", "What is the boiling point of ethanol?", "--threshold", "0.99", "--json")
    data = json.loads(r.stdout)
    assert data["decision"] == "refuse" and data["answer"] is None and data["citations"] == []
    assert data["reasons"] and data["escalation"]
    human = run(env, "ask", "What is the boiling point of ethanol?", "--threshold", "0.99")
    assert "No answer" in human.output and "Why:" in human.output


def test_filters_by_tag_and_prefix(env: dict[str, str], docs: Path) -> None:
    ingest(env, docs)
    r = run(env, "search", "cache invoices keys", "--tag", "security", "--json")
    assert {Path(h["source"]).name for h in json.loads(r.stdout)["hits"]} == {"account.md"}
    prefix = str((docs / "cache").resolve())
    r = run(env, "search", "cache invoices keys", "--source-prefix", prefix, "--json")
    assert {Path(h["source"]).name for h in json.loads(r.stdout)["hits"]} == {"cache.txt"}
    # a relative prefix is taken from the current folder, as a user would type it
    with chdir(docs.parent):
        r = run(env, "search", "cache invoices keys", "--source-prefix", "docs/acc", "--json")
    assert {Path(h["source"]).name for h in json.loads(r.stdout)["hits"]} == {"account.md"}


def test_batch_prints_one_json_line_per_input(env: dict[str, str], docs: Path, tmp_path: Path) -> None:
    ingest(env, docs)
    batch = tmp_path / "q.jsonl"
    batch.write_text(
        '{"id": "q1", "question": "rotate api key"}\n'
        "not json\n"
        '{"id": 7, "question": ""}\n'
        '{"id": "q3", "question": "purge cache"}\n'
    )
    for command in ("ask", "search"):
        r = run(env, command, "--batch", str(batch))
        assert r.exit_code == 0, r.output
        lines = [json.loads(x) for x in r.stdout.splitlines()]
        assert [x.get("id") for x in lines] == ["q1", 2, 7, "q3"]
        assert "error" in lines[1] and "invalid JSON" in lines[1]["error"]
        assert lines[2]["error"] == "the question is empty" or lines[2]["error"] == "the query is empty"
        assert ("decision" in lines[0]) == (command == "ask") and ("hits" in lines[3]) == (
            command == "search"
        )


def test_status_and_remove(env: dict[str, str], docs: Path) -> None:
    ingest(env, docs)
    st = json.loads(run(env, "status", "--json").stdout)
    assert st["documents"] == 2 and st["chunks"] >= 2 and st["chunks"] == st["lexical_chunks"]
    assert st["health"]["ok"] and st["embedder"] == "hash:256"
    r = run(env, "remove", str(docs / "cache.txt"), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["sources_removed"][0].endswith("cache.txt")
    assert json.loads(run(env, "status", "--json").stdout)["documents"] == 1
    r = run(env, "remove", str(docs / "nothing.md"))
    assert r.exit_code == 1 and "none of the given paths is in the index" in r.output


def test_user_errors_exit_1_and_usage_errors_exit_2(env: dict[str, str], docs: Path, tmp_path: Path) -> None:
    r = run(env, "ask")
    assert r.exit_code == 2 and "give a QUESTION or --batch" in r.output
    r = run(env, "ingest", str(tmp_path / "missing"))
    assert r.exit_code == 2
    r = run(env, "ask", "   ")
    assert r.exit_code == 1 and "the question is empty" in r.output
    bad = {**env, "RAG_EXPLORER_CHUNK_TOKENS": "huge"}
    r = run(bad, "status")
    assert r.exit_code == 1 and "chunk_tokens" in r.output and "Traceback" not in r.output
    r = run({**env, "RAG_EXPLORER_EMBEDDER": "nope:1"}, "status")
    assert r.exit_code == 1 and "unknown embedder" in r.output


def test_index_built_with_another_embedder_is_refused(env: dict[str, str], docs: Path) -> None:
    ingest(env, docs)
    r = run({**env, "RAG_EXPLORER_EMBEDDER": "hash:128"}, "search", "keys")
    assert r.exit_code == 1 and "built with embedder 'hash:256'" in r.output


def test_deflect_bot_alias_is_installed() -> None:
    import importlib.metadata as md

    eps = {ep.name: ep.value for ep in md.entry_points(group="console_scripts")}
    assert eps.get("rag-explorer") == eps.get("deflect-bot") == "local_cli.main:cli"


def test_answers_name_their_provider(env: dict[str, str], docs: Path) -> None:
    ingest(env, docs)
    data = json.loads(run(env, "ask", "How do I rotate my API key?", "--json").stdout)
    assert data["provider"] == "extractive"


def test_llm_provider_chain_stream_and_providers_command(env: dict[str, str], docs: Path) -> None:
    from shared.llm.resilience import reset_breakers
    from tests.fakes import Reply
    from tests.fakes.openai_server import FakeOpenAIServer

    reset_breakers()
    ingest(env, docs)
    text = "Open the console and choose Regenerate key [1]."
    with FakeOpenAIServer(default_answer=text) as fake:
        llm_env = {
            **env,
            "RAG_EXPLORER_ANSWER_PROVIDERS": "openai:gpt-test,extractive",
            "RAG_EXPLORER_OPENAI_BASE_URL": fake.base_url,
            "RAG_EXPLORER_OPENAI_API_KEY": "sk-test",
            "RAG_EXPLORER_CONFIDENCE_THRESHOLD": "0",
            "RAG_EXPLORER_LLM_MAX_ATTEMPTS": "1",
        }
        data = json.loads(run(llm_env, "ask", "How do I rotate my API key?", "--json").stdout)
        assert data["provider"] == "openai:gpt-test" and data["citations"], data
        assert "Regenerate key" in data["answer"]
        r = run(llm_env, "ask", "How do I rotate my API key?", "--stream")
        assert r.exit_code == 0 and r.output.startswith(text)
        assert "Verified answer (openai:gpt-test)" in r.output
        rows = json.loads(run(llm_env, "providers", "--json").stdout)["providers"]
        assert [(x["provider"], x["ok"]) for x in rows] == [("openai:gpt-test", True), ("extractive", True)]
        fake.chat(Reply.fail(401, "bad key"), Reply.fail(401, "bad key"))
        r = run(llm_env, "providers")
        assert "FAIL openai:gpt-test" in r.output and "401" in r.output
        reset_breakers()
        data = json.loads(run(llm_env, "ask", "How do I rotate my API key?", "--json").stdout)
        assert data["provider"] == "extractive" and any("401" in reason for reason in data["reasons"])
    assert run(env, "ask", "x", "--stream", "--json").exit_code == 2


def test_ask_records_the_interaction_unless_no_log(env: dict[str, str], docs: Path) -> None:
    from shared.interactions_sqlite import SqliteInteractionStore

    ingest(env, docs)
    first = json.loads(run(env, "ask", "How do I rotate my API key?", "--json").stdout)
    assert first["interaction_id"]
    store = SqliteInteractionStore(Path(env["RAG_EXPLORER_HOME"]) / "interactions.sqlite3")
    kept = store.get(first["interaction_id"])
    assert kept is not None and kept.question == "How do I rotate my API key?" and kept.latency_ms
    quiet = json.loads(run(env, "ask", "How do I rotate my API key?", "--json", "--no-log").stdout)
    assert quiet["interaction_id"] is None and store.count() == 1
    off = json.loads(
        run({**env, "RAG_EXPLORER_RECORD_INTERACTIONS": "false"}, "ask", "x y z", "--json").stdout
    )
    assert off["interaction_id"] is None and store.count() == 1
