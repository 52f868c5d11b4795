"""`make bench` on a machine without the outside data (BEIR SciFact in ../shared/data): each benchmark
that needs it says where to get it and exits 0; data named with --data that is missing is an error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def bench(script: str, *args: str, data_root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAG_EXPLORER_BENCH_DATA": str(data_root)}
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("script", ["scifact.py", "query_latency.py", "embed_throughput.py"])
def test_a_benchmark_without_its_data_skips_cleanly(script: str, tmp_path: Path) -> None:
    done = bench(script, data_root=tmp_path)
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith(
        f"skipped: {script.removesuffix('.py')}: needs BEIR SciFact in {tmp_path / 'scifact'}"
    )
    assert (
        "get it with `curl -LO https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip"
        in line
    )
    assert "Traceback" not in done.stderr


def test_missing_data_named_with_data_is_an_error(tmp_path: Path) -> None:
    done = bench("scifact.py", "--data", str(tmp_path / "nowhere"), data_root=tmp_path)
    assert done.returncode == 2 and "lacks corpus.jsonl" in done.stderr and not done.stdout
