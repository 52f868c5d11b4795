"""Unzipped size of each Lambda asset, against Lambda's 250 MB limit and this project's 200 MB target.

    python -m infra.asset_sizes               # bundle the three functions (arm64) into a temp folder
    python -m infra.asset_sizes cdk.out/dev   # measure the assets of a synthesized cloud assembly

Sizes are in MiB (2**20 bytes), the unit of Lambda's quota (250 MB = 262,144,000 bytes). Exits 1 when an
asset reaches the limit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from infra.bundling import FUNCTION_NAMES, bundle, tree_size

MIB = 2**20
LIMIT_MIB = 250
TARGET_MIB = 200


@dataclass(frozen=True)
class AssetSize:
    name: str
    path: Path
    bytes: int

    @property
    def mib(self) -> float:
        return self.bytes / MIB


def assembly_sizes(outdir: Path) -> list[AssetSize]:
    """The code assets of every Python function in a cloud assembly (bundled assets only)."""
    sizes = []
    for template_file in sorted(outdir.glob("*.template.json")):
        resources = json.loads(template_file.read_text())["Resources"]
        for logical_id, resource in resources.items():
            props = resource.get("Properties", {})
            if resource["Type"] != "AWS::Lambda::Function" or not str(props.get("Runtime", "")).startswith(
                "python"
            ):
                continue
            key = props.get("Code", {}).get("S3Key")
            if not isinstance(key, str):
                continue
            asset = outdir / f"asset.{key.removesuffix('.zip')}"
            if asset.is_dir():
                sizes.append(
                    AssetSize(f"{template_file.name.split('.')[0]}/{logical_id}", asset, tree_size(asset))
                )
    return sizes


def fresh_sizes(workdir: Path) -> list[AssetSize]:
    return [
        AssetSize(name, workdir / name, tree_size(bundle(name, workdir / name))) for name in FUNCTION_NAMES
    ]


def report(sizes: list[AssetSize]) -> str:
    lines = [f"{'asset':60} {'unzipped MiB':>12}  (limit {LIMIT_MIB}, target {TARGET_MIB})"]
    for size in sizes:
        verdict = (
            "OVER LIMIT" if size.mib >= LIMIT_MIB else ("over target" if size.mib > TARGET_MIB else "ok")
        )
        lines.append(f"{size.name:60} {size.mib:12.1f}  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assembly", nargs="?", type=Path, help="a cdk.out folder (default: bundle afresh)")
    args = parser.parse_args(argv)
    if args.assembly:
        sizes = assembly_sizes(args.assembly)
        if not sizes:
            print(f"no bundled Python assets in {args.assembly}", file=sys.stderr)
            return 1
    else:
        with tempfile.TemporaryDirectory(prefix="rag-assets-") as tmp:
            sizes = fresh_sizes(Path(tmp))
    print(report(sizes))
    return 1 if any(size.mib >= LIMIT_MIB for size in sizes) else 0


if __name__ == "__main__":
    sys.exit(main())
