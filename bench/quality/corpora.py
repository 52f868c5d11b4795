"""The documentation sets of the quality suite: where each comes from and which of its files are indexed.

None of them is committed; each is installed from a package registry by its ordinary client:

| set       | shape                                    | source                                            |
|-----------|------------------------------------------|---------------------------------------------------|
| gnucash   | narrative user guide, DocBook HTML       | Debian `gnucash-docs` (Tutorial and Concepts Guide) |
| borg      | man-page style reference + FAQ, Sphinx   | Debian `borgbackup-doc`                           |
| hatch     | Markdown docs site (MkDocs)              | the `docs/` folder of the hatch 1.18.2 sdist (PyPI) |
| python    | library reference + tutorial, Sphinx     | Debian `python3.11-doc` (214 pages of the manual)  |
| own_docs  | this project's docs/ (Markdown)          | the repository                                    |
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "bench" / ".cache" / "quality"
SETS = ROOT / "bench" / "quality" / "sets"
HATCH_VERSION = "1.18.2"
_SPHINX_SKIP = ("_sources", "_static", "_images", "genindex.html", "search.html", "py-modindex.html")


@dataclass(frozen=True)
class Corpus:
    name: str
    questions: Path
    root: Path
    install: str  # the command that makes ``root`` exist
    select: Callable[[Path], list[Path]]

    def files(self) -> list[Path]:
        return self.select(self.root)


def _html(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*.html") if not any(part in _SPHINX_SKIP for part in p.relative_to(root).parts)
    )


def _markdown(root: Path) -> list[Path]:
    return sorted(root.rglob("*.md"))


def _python_subset(root: Path) -> list[Path]:
    listed = (ROOT / "bench" / "devset" / "corpus_subset.txt").read_text(encoding="utf-8").split()
    return [root / p for p in listed]


CORPORA: dict[str, Corpus] = {
    c.name: c
    for c in (
        Corpus(
            "gnucash",
            SETS / "gnucash.jsonl",
            Path("/usr/share/doc/gnucash-docs/gnucash-guide-en"),
            "apt-get install -y gnucash-docs",
            _html,
        ),
        Corpus(
            "borg",
            SETS / "borg.jsonl",
            Path("/usr/share/doc/borgbackup/html"),
            "apt-get install -y borgbackup-doc",
            _html,
        ),
        Corpus(
            "hatch",
            SETS / "hatch.jsonl",
            CACHE / "corpora" / f"hatch-{HATCH_VERSION}" / "docs",
            f"python bench/quality/corpora.py hatch   # pip download of the hatch {HATCH_VERSION} sdist",
            _markdown,
        ),
        Corpus(
            "python",
            ROOT / "bench" / "devset" / "python_docs_questions.jsonl",
            Path("/usr/share/doc/python3.11/html"),
            "apt-get install -y python3.11-doc",
            _python_subset,
        ),
        Corpus("own_docs", SETS / "own_docs.jsonl", ROOT / "docs", "(in the repository)", _markdown),
    )
}


def fetch_hatch() -> Path:
    """Download the hatch sdist with pip (no install) and unpack its docs/ folder into the cache."""
    target = CORPORA["hatch"].root
    if target.is_dir():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", tmp,
             f"hatch=={HATCH_VERSION}"],
            check=True,
        )  # fmt: skip
        sdist = next(Path(tmp).glob("hatch-*.tar.gz"))
        prefix = f"hatch-{HATCH_VERSION}/docs/"
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
            for m in members:
                m.name = m.name[len(f"hatch-{HATCH_VERSION}/") :]
            tar.extractall(target.parent, members=members, filter="data")
    return target


if __name__ == "__main__":
    if sys.argv[1:] == ["hatch"]:
        print(fetch_hatch())
    else:
        for c in CORPORA.values():
            state = f"{len(c.files())} files" if c.root.is_dir() else f"missing: {c.install}"
            print(f"{c.name:9} {c.root}  {state}")
