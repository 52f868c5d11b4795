"""Fitness tests for the layers: the core imports no delivery framework, and handlers stay thin.

The core (models, settings, loaders, chunking, embeddings, stores, retrieval, answering, ingest,
service, evaluation, and the support desk: sites, feedback, interactions, redaction, analytics, gaps)
must run with no AWS SDK, HTTP framework or CLI library. Backend adapters behind a core port (a store,
an embedder, an LLM provider) may use their backend's client, and are listed here with the reason;
delivery adapters (HTTP API, S3 sync, health, metrics, push) sit on top of the core.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("boto3", "botocore", "opensearchpy", "click", "http.server", "aws_lambda_powertools")
CORE = [
    "shared/models.py", "shared/settings.py", "shared/errors.py", "shared/observability.py",
    "shared/extras.py",
    "shared/text.py", "shared/chunking.py", "shared/retrieval.py", "shared/ingest.py", "shared/service.py",
    "shared/evaluation.py", "shared/sites.py", "shared/feedback.py", "shared/support.py",
    "shared/interactions_sqlite.py", "shared/redaction.py", "shared/analytics.py", "shared/gaps.py",
    "shared/calibration.py", "shared/loaders", "shared/embeddings", "shared/stores", "shared/answering",
    "shared/llm", "shared/remote", "shared/answer_cache.py",
]  # fmt: skip
#: Adapters inside core packages, each the implementation of a core port for one backend.
BACKEND_ADAPTERS = {
    "shared/stores/opensearch.py": "the OpenSearch VectorStore (opensearch-py, SigV4 via botocore)",
    "shared/stores/s3vectors.py": "the S3 Vectors VectorStore (botocore errors of its index lookup)",
    "shared/stores/s3vectors_client.py": "the S3 Vectors transport (boto3 client, botocore errors)",
    "shared/remote/bedrock.py": "the Bedrock client and its error classification (boto3, botocore)",
    "shared/llm/secrets.py": "LLM keys from Secrets Manager (boto3), used only in Lambda",
}
MAX_HANDLER_LINES = 40


def test_every_shared_module_is_core_or_a_delivery_adapter() -> None:
    """The folder tells a newcomer which layer a module is in: listed core, or under shared/adapters/."""
    core = {ROOT / entry for entry in CORE}
    unplaced = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "shared").rglob("*.py"))
        if path.name != "__init__.py" or path.parent != ROOT / "shared"
        if not any(path == c or c in path.parents for c in core)
        and (ROOT / "shared" / "adapters") not in path.parents
    ]
    assert not unplaced, f"modules in no layer: {unplaced} (add to CORE or move under shared/adapters/)"


def core_files() -> list[Path]:
    files: list[Path] = []
    for entry in CORE:
        path = ROOT / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def forbidden_in(names: set[str]) -> set[str]:
    return {n for n in names for f in FORBIDDEN if n == f or n.startswith(f + ".")}


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_modules_import_no_delivery_framework(path: Path) -> None:
    found = forbidden_in(imported_modules(path))
    rel = str(path.relative_to(ROOT))
    if rel in BACKEND_ADAPTERS:
        assert "click" not in found and "aws_lambda_powertools" not in found and "http.server" not in found
        return
    assert not found, f"{rel} imports {sorted(found)}: core modules must not (move it to an adapter)"


def test_importing_the_core_loads_no_delivery_framework() -> None:
    """Also what the core pulls in at run time, through every import of every module it loads."""
    code = (
        "import sys\n"
        "import shared.service, shared.ingest, shared.retrieval, shared.evaluation, shared.loaders\n"
        "import shared.answering.extractive, shared.stores.factory, shared.embeddings.factory\n"
        f"bad = {FORBIDDEN!r}\n"
        "print(sorted(m for m in sys.modules if any(m == b or m.startswith(b + '.') for b in bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import json\nfrom botocore.config import Config\n\ndef f():\n    import click\n")
    assert forbidden_in(imported_modules(bad)) == {"botocore.config", "click"}


@pytest.mark.parametrize(
    "handler", sorted((ROOT / "functions").glob("*/handler.py")), ids=lambda p: p.parent.name
)
def test_handlers_stay_thin(handler: Path) -> None:
    lines = handler.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_HANDLER_LINES, f"{handler.parent.name}: {len(lines)} lines"
    tree = ast.parse("\n".join(lines))
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "lambda_handler"]
    assert len(fn.body) == 1, "lambda_handler delegates in one statement"
