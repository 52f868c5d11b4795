"""Sanity checks for the Python-docs answer/refuse development set.

Usage:
    python bench/devset/check_devset.py [HTML_ROOT]

HTML_ROOT defaults to /usr/share/doc/python3.11/html (Debian package
python3.11-doc). If it does not exist, the file-existence checks are skipped
and only the structural checks run. Exits non-zero on the first failed run.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "python_docs_questions.jsonl"
SUBSET = HERE / "corpus_subset.txt"
DEFAULT_ROOT = Path("/usr/share/doc/python3.11/html")

MIN_ANSWERABLE = 50
MIN_OUT_OF_SCOPE = 20


def check(html_root: Path) -> list[str]:
    errors: list[str] = []
    rows = []
    for n, line in enumerate(QUESTIONS.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            errors.append(f"line {n}: blank line")
            continue
        try:
            rows.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            errors.append(f"line {n}: invalid JSON: {exc}")

    subset_lines = SUBSET.read_text(encoding="utf-8").splitlines()
    subset = set(subset_lines)
    if subset_lines != sorted(subset):
        errors.append("corpus_subset.txt is not sorted and de-duplicated")

    seen: set[str] = set()
    n_ans = n_oos = 0
    for n, row in rows:
        expected_keys = {"id", "question", "expected_sources"}
        if str(row.get("id", "")).startswith("o"):
            expected_keys.add("negative")  # same-domain or unrelated, as bench/quality reports them
            if row.get("negative") not in ("same-domain", "unrelated"):
                errors.append(f"line {n}: 'negative' must be same-domain or unrelated")
        if set(row) != expected_keys:
            errors.append(f"line {n}: unexpected keys {sorted(row)}")
        qid = row.get("id")
        if not isinstance(qid, str) or not re.fullmatch(r"[ao]\d{2,}", qid):
            errors.append(f"line {n}: bad id {qid!r}")
            continue
        if qid in seen:
            errors.append(f"line {n}: duplicate id {qid}")
        seen.add(qid)
        q = row.get("question")
        if not isinstance(q, str) or len(q.strip()) < 10:
            errors.append(f"{qid}: question missing or too short")
        src = row.get("expected_sources")
        if qid.startswith("o"):
            n_oos += 1
            if src is not None:
                errors.append(f"{qid}: out-of-scope question must have expected_sources null")
            continue
        n_ans += 1
        if not isinstance(src, list) or not src or not all(isinstance(s, str) for s in src):
            errors.append(f"{qid}: expected_sources must be a non-empty list of paths")
            continue
        if len(set(src)) != len(src):
            errors.append(f"{qid}: duplicate expected source")
        for s in src:
            if s.startswith("/") or not s.endswith(".html"):
                errors.append(f"{qid}: source {s!r} must be a relative .html path")
            if s not in subset:
                errors.append(f"{qid}: source {s} not listed in corpus_subset.txt")

    if n_ans < MIN_ANSWERABLE:
        errors.append(f"only {n_ans} answerable questions (< {MIN_ANSWERABLE})")
    if n_oos < MIN_OUT_OF_SCOPE:
        errors.append(f"only {n_oos} out-of-scope questions (< {MIN_OUT_OF_SCOPE})")

    if html_root.is_dir():
        for p in sorted(subset):
            if not (html_root / p).is_file():
                errors.append(f"{p}: listed in corpus_subset.txt but missing under {html_root}")
    else:
        print(f"note: {html_root} not found; skipping file-existence checks")

    print(
        f"{len(rows)} questions ({n_ans} answerable, {n_oos} out-of-scope), "
        f"{len(subset)} pages in corpus_subset.txt"
    )
    return errors


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ROOT
    errors = check(root)
    for e in errors:
        print("ERROR:", e)
    print("OK" if not errors else f"{len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
