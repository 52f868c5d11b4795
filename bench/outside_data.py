"""Data that some benchmarks read from outside the repository, and a clean skip when it is not there.

BEIR SciFact is expected in ``../shared/data/scifact`` beside the clone (``RAG_EXPLORER_BENCH_DATA``
names another folder holding ``scifact/``; ``--data DIR`` another SciFact folder). A benchmark whose
default data is missing prints one ``skipped: ...`` line saying where to get it and exits 0, so that
``make bench`` runs the rest; data named with ``--data`` that is missing is an error (exit 2).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent

#: The public BEIR release of SciFact; it unzips into ``scifact/``.
SCIFACT_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip"
SCIFACT_FILES = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")


def data_root() -> Path:
    """The folder of the outside data sets [env RAG_EXPLORER_BENCH_DATA; default ../shared/data]."""
    return Path(os.environ.get("RAG_EXPLORER_BENCH_DATA") or ROOT.parent / "shared" / "data")


def scifact(given: Path | None, bench: str, needs: Sequence[str] = SCIFACT_FILES) -> Path:
    """The SciFact folder holding ``needs``: ``given`` (``--data``), else the default one. A missing
    default skips the benchmark (exit 0, after saying how to get the data); missing given data is an
    error."""
    folder = given if given is not None else data_root() / "scifact"
    missing = [name for name in needs if not (folder / name).is_file()]
    if not missing:
        return folder
    if given is not None:
        print(f"{bench}: --data {folder} lacks {', '.join(missing)} (a BEIR SciFact folder)", file=sys.stderr)
        raise SystemExit(2)
    skip(
        bench,
        f"needs BEIR SciFact in {folder} (missing: {', '.join(missing)}); get it with "
        f"`curl -LO {SCIFACT_URL} && unzip scifact.zip -d {folder.parent}`, or pass --data DIR",
    )


def skip(bench: str, why: str) -> NoReturn:
    """End the benchmark cleanly: one ``skipped:`` line on stdout, exit status 0."""
    print(f"skipped: {bench}: {why}", flush=True)
    raise SystemExit(0)
