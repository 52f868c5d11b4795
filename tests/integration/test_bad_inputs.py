"""A batch of hostile files through the CLI: every bad file is reported, every good one is indexed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from local_cli.main import cli


def test_bad_inputs_never_stop_the_batch(fixtures_dir: Path, tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    shutil.copytree(fixtures_dir / "bad_inputs", batch)
    shutil.copy(fixtures_dir / "docs" / "guide.md", batch / "zz_good_guide.md")
    shutil.copy(fixtures_dir / "docs" / "sample.pdf", batch / "aa_good_sample.pdf")
    big = batch / "huge.txt"  # 50 MB, generated here (never committed)
    with big.open("wb") as fh:
        fh.write(b"all work and no play makes a large file\n" * (50 * 1024 * 1024 // 40))
    env = {"RAG_EXPLORER_HOME": str(tmp_path / "home"), "RAG_EXPLORER_EMBEDDER": "hash:256"}

    r = CliRunner().invoke(cli, ["ingest", str(batch), "--json"], env=env, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    reports = {Path(f["path"]).name: f for f in summary["files"]}
    assert set(reports) == {p.name for p in batch.iterdir()}  # every file is accounted for

    indexed = {name for name, f in reports.items() if f["status"] == "indexed"}
    assert {"zz_good_guide.md", "aa_good_sample.pdf", "scripts.html"} <= indexed
    for name in (
        "empty.md",
        "binary.md",
        "truncated.pdf",
        "not_a_pdf.pdf",
        "nul_bytes.txt",
        "all_invalid.jsonl",
    ):
        assert reports[name]["status"] == "error", name
        assert reports[name]["reason"], name
    assert reports["huge.txt"]["status"] == "skipped" and "too large" in reports["huge.txt"]["reason"]
    assert reports["unknown.xyz"]["status"] == "skipped"
    assert any("UTF-8" in w for w in reports["invalid_utf8.txt"]["warnings"])
    assert any("invalid lines skipped" in w for w in reports["mixed.jsonl"]["warnings"])

    st = json.loads(CliRunner().invoke(cli, ["status", "--json"], env=env).stdout)
    assert st["health"]["ok"] and st["documents"] >= len(indexed)
    r = CliRunner().invoke(cli, ["search", "script", "--json"], env=env)
    assert all("alert(" not in h["text"] for h in json.loads(r.stdout)["hits"])
