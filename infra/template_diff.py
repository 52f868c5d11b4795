"""Compare the templates of two synthesized cloud assemblies, ignoring asset hashes.

    python -m infra.template_diff OLD_CDK_OUT NEW_CDK_OUT     # e.g. before and after a refactor

Asset hashes (64 hex digits) and the hash suffix CDK puts on a function's ``CurrentVersion`` logical id
(it follows the code) are replaced by placeholders; anything else that differs is printed as a unified
diff. Exits 1 when a template differs or is missing.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path

HASHES = (
    (re.compile(r"[0-9a-f]{64}"), "<asset-hash>"),
    (re.compile(r"(CurrentVersion[0-9A-F]{8})[0-9a-f]{32}"), r"\1<code-hash>"),
)


def normalised(path: Path) -> list[str]:
    text = json.dumps(json.loads(path.read_text(encoding="utf-8")), indent=1, sort_keys=True)
    for pattern, placeholder in HASHES:
        text = pattern.sub(placeholder, text)
    return text.splitlines()


def diff(old: Path, new: Path) -> dict[str, list[str]]:
    """Template file name → unified diff lines (empty when the templates match)."""
    names = sorted({p.name for d in (old, new) for p in d.glob("*.template.json")})
    result: dict[str, list[str]] = {}
    for name in names:
        if not (old / name).is_file() or not (new / name).is_file():
            result[name] = [f"only in {old if (old / name).is_file() else new}"]
            continue
        result[name] = list(
            difflib.unified_diff(normalised(old / name), normalised(new / name), name, name, lineterm="")
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    changed = 0
    for name, lines in diff(args.old, args.new).items():
        print(f"{name}: {'same' if not lines else f'{len(lines)} diff lines'}")
        if lines:
            changed += 1
            print("\n".join(lines))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
