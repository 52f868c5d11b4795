"""The CLI with hostile documents and settings: symlinks, terminal escapes, secrets (CliRunner, real
Chroma index, hashing embedder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from local_cli.main import cli

ESCAPES = ("\x1b", "\x07", "\x9b", "\r")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"RAG_EXPLORER_HOME": str(tmp_path / "home"), "RAG_EXPLORER_EMBEDDER": "hash:256"}


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_a_symlink_loop_or_escape_never_stops_the_batch_and_is_not_indexed(
    env: dict[str, str], tmp_path: Path
) -> None:
    secret = tmp_path / "private" / "settings.json"
    secret.parent.mkdir()
    secret.write_text('{"openai_api_key": "sk-live-zebrafish-4242"}')
    secret.chmod(0o600)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\nRotate the API key from the console.\n")
    (docs / "keys.json").symlink_to(secret)
    (docs / "a.md").symlink_to(docs / "b.md")
    (docs / "b.md").symlink_to(docs / "a.md")
    (docs / "copy.md").symlink_to(docs / "guide.md")
    r = run(env, "ingest", str(docs), "--json")
    assert r.exit_code == 0, r.output
    files = {Path(f["path"]).name: f for f in json.loads(r.stdout)["files"]}
    # a link inside the folder is fine: the same document as its target, indexed once, under its own name
    assert files["guide.md"]["status"] == "indexed" and files["copy.md"]["status"] == "skipped"
    assert files["copy.md"]["reason"].startswith(f"same file as {docs / 'guide.md'} (through a symlink)")
    assert files["keys.json"]["status"] == "skipped"
    assert "outside the folder" in files["keys.json"]["reason"]
    assert {files["a.md"]["status"], files["b.md"]["status"]} == {"skipped"}
    assert "loops" in files["a.md"]["reason"]
    found = run(env, "search", "zebrafish sk-live", "--json")
    assert not any("zebrafish" in h["text"] for h in json.loads(found.stdout)["hits"])
    assert run(env, "ingest", str(docs), "--prune").exit_code == 0  # the loop does not break --prune


def test_human_output_carries_no_terminal_control(env: dict[str, str], tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    name = "evil\x1b]0;owned\x07\x1b[2J\rname.md"
    (docs / name).write_text(
        "# Billing\x1b[31m\n\nInvoices are emailed\x1b]8;;http://evil.example\x1b\\ monthly"
        "\r\nto the account owner.\x9b2J\n",
        encoding="utf-8",
    )
    (docs / "bad\x1b[2J.pdf").write_bytes(b"%PDF-1.7 broken")
    outputs = [
        run(env, "ingest", str(docs)),
        run(env, "search", "invoices emailed"),
        run(env, "ask", "How are invoices emailed to the account owner?", "--threshold", "0"),
        run(env, "status"),
    ]
    for r in outputs:
        assert r.exit_code == 0, r.output
        assert not any(c in r.output for c in ESCAPES), repr(r.output)
    assert "bad.pdf" in outputs[0].output and "evilname.md" in outputs[1].output
    assert "Invoices are emailed" in outputs[1].output
    exact = run(env, "search", "invoices emailed", "--json")  # --json stays exact
    assert any(h["source"].endswith(name) for h in json.loads(exact.stdout)["hits"])


def test_secrets_are_never_echoed(env: dict[str, str]) -> None:
    r = run(env, "configure", "--set", "opensearch_password=hunter2-secret", "--remote-api-key", "key-abc-9")
    assert r.exit_code == 0, r.output
    assert "hunter2" not in r.output and "key-abc-9" not in r.output and "***" in r.output
    r = run(env, "configure", "--set", "opensearch_password=hunter2-secret", "--json")
    assert "hunter2" not in r.output
    bad = run(env, "configure", "--set", "endpoint=ftp://x", "--remote-api-key", "sk-live-abcdef123456")
    assert bad.exit_code == 1 and "invalid settings" in bad.output
    assert "abcdef123456" not in bad.output and "123456" not in bad.output
    settings = Path(env["RAG_EXPLORER_HOME"]) / "settings.json"
    assert json.loads(settings.read_text())["opensearch_password"] == "hunter2-secret"
    bad_env = run(
        {**env, "RAG_EXPLORER_OPENAI_API_KEY": "sk-env-777", "RAG_EXPLORER_STORE": "nope"}, "status"
    )
    assert bad_env.exit_code == 1 and "sk-env-777" not in bad_env.output


def test_one_writer_per_home(env: dict[str, str], tmp_path: Path) -> None:
    """A second writer gets a clear error at once, or with --wait waits for the first to finish."""
    from local_cli.lock import write_lock

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\nRotate the API key from the console.\n")
    home = Path(env["RAG_EXPLORER_HOME"])
    with write_lock(home, "test holder"):
        busy = run(env, "ingest", str(docs))
        assert busy.exit_code == 1
        assert "is writing to" in busy.output and "test holder" in busy.output and "--wait" in busy.output
        assert run(env, "remove", str(docs)).exit_code == 1
        waiting = subprocess.Popen(
            [sys.executable, "-m", "local_cli", "ingest", "--wait", "--json", str(docs)],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert waiting.stderr is not None
        first = waiting.stderr.readline()  # blocks until the second writer says it waits
        assert "waiting for pid" in first and "test holder" in first
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert json.loads(out)["files_indexed"] == 1
    assert run(env, "ingest", str(docs)).exit_code == 0  # released: the next writer goes ahead
