"""The custom resource that sets the S3 Vectors index's mode and full-text search, run against the local
S3 Vectors endpoint (moto behind :class:`tests.fakes.s3vectors_server.S3VectorsFake`, real HTTP): with the
handler's own boto3 client (``AWS_ENDPOINT_URL_S3VECTORS``), and from its bundled asset in an interpreter
that sees nothing else."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.config import Config

from infra.bundling import LAMBDA_ARM64_PY312, dependency_site
from infra.components.vectors import SETUP_CODE, bundle_setup
from shared.stores.s3vectors_requests import INDEX_MODE, TEXT_SEARCH
from tests.aws import REGION, moto_server, set_aws_env
from tests.fakes.s3vectors_server import S3VectorsFake

BUCKET = "setup-vectors"
UPDATES = ("UpdateIndexMode", "UpdateMetadataConfiguration")


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vector_index_setup", SETUP_CODE / "index.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3VectorsFake]:
    with pytest.MonkeyPatch.context() as mp, moto_server() as url:
        set_aws_env(mp, tmp_path_factory.mktemp("aws"), url)
        with S3VectorsFake(url) as server:
            client = boto3.client("s3vectors", endpoint_url=server.url, region_name=REGION)
            client.create_vector_bucket(vectorBucketName=BUCKET)
            yield server


@pytest.fixture
def service(fake: S3VectorsFake, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A client of the fake; the handler's own client finds it through the environment, as boto3 does."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3VECTORS", fake.url)
    fake.clear_calls()
    return boto3.client(
        "s3vectors", endpoint_url=fake.url, region_name=REGION, config=Config(retries={"max_attempts": 0})
    )


def new_index(service: Any, name: str, *, mode: str = "CLASSIC", text_search: Any = None) -> str:
    """An index as CloudFormation creates it (no text search), in a bucket whose default mode is ``mode``."""
    service.put_vector_bucket_default_index_mode(vectorBucketName=BUCKET, defaultIndexMode=mode)
    config: dict[str, Any] = {"nonFilterableMetadataKeys": ["text", "chunk"]}
    if text_search:
        config["textSearchConfigurations"] = text_search
    service.create_index(
        vectorBucketName=BUCKET,
        indexName=name,
        dataType="float32",
        dimension=384,
        distanceMetric="cosine",
        metadataConfiguration=config,
    )
    arn: str = service.get_index(vectorBucketName=BUCKET, indexName=name)["index"]["indexArn"]
    return arn


def event(request_type: str, index_arn: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "PhysicalResourceId": f"{index_arn}#setup",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
            "IndexArn": index_arn,
            "IndexMode": INDEX_MODE,
            "TextSearchConfigurations": [dict(c) for c in TEXT_SEARCH],
        },
    }


def searches(service: Any, name: str) -> dict[str, str | None]:
    index = service.get_index(vectorBucketName=BUCKET, indexName=name)["index"]
    configs = index.get("metadataConfiguration", {}).get("textSearchConfigurations", [])
    return {c["metadataKey"]: c.get("language") for c in configs}


def test_create_sets_the_mode_then_adds_text_search_and_names_the_index(
    fake: S3VectorsFake, service: Any
) -> None:
    module, arn = load(), new_index(service, "classic")
    fake.clear_calls()
    result = module.on_event(event("Create", arn), None)
    assert result == {
        "PhysicalResourceId": f"{arn}#setup",
        "Data": {"VectorBucketName": BUCKET, "IndexName": "classic"},
    }
    # the mode first: full-text search needs an ENHANCED index
    assert [sorted(body) for body in fake.calls() if set(body) & {"indexMode", "add"}] == [
        ["indexArn", "indexMode"],
        ["add", "indexArn"],
    ]
    assert fake.calls("UpdateIndexMode") == [{"indexArn": arn, "indexMode": "ENHANCED"}]
    assert fake.calls("UpdateMetadataConfiguration") == [
        {"indexArn": arn, "add": {"textSearchConfigurations": [{"metadataKey": "text", "language": "en"}]}}
    ]
    assert service.get_index(indexArn=arn)["index"]["indexMode"] == "ENHANCED"
    assert searches(service, "classic") == {"text": "en"}


def test_a_second_run_changes_nothing(fake: S3VectorsFake, service: Any) -> None:
    module, arn = load(), new_index(service, "twice")
    module.on_event(event("Create", arn), None)
    fake.clear_calls()
    assert module.on_event(event("Update", arn), None)["Data"]["IndexName"] == "twice"
    assert [fake.calls(op) for op in UPDATES] == [[], []]
    assert len(fake.calls("GetIndex")) == 1


def test_an_enhanced_index_with_another_language_is_reconfigured_and_other_keys_stay(
    fake: S3VectorsFake, service: Any
) -> None:
    module = load()
    arn = new_index(
        service,
        "french",
        mode="ENHANCED",
        text_search=[{"metadataKey": "text", "language": "fr"}, {"metadataKey": "chunk", "language": "fr"}],
    )
    fake.clear_calls()
    module.on_event(event("Create", arn), None)
    assert fake.calls("UpdateIndexMode") == []
    assert fake.calls("UpdateMetadataConfiguration") == [
        {"indexArn": arn, "delete": {"textSearchConfigurations": [{"metadataKey": "text"}]}},
        {"indexArn": arn, "add": {"textSearchConfigurations": [{"metadataKey": "text", "language": "en"}]}},
    ]
    assert searches(service, "french") == {"text": "en", "chunk": "fr"}


def test_delete_calls_nothing(fake: S3VectorsFake, service: Any) -> None:
    module, arn = load(), new_index(service, "kept")
    fake.clear_calls()
    assert module.on_event(event("Delete", arn), None) == {"PhysicalResourceId": f"{arn}#setup"}
    assert fake.calls() == []


def test_throttling_is_retried_and_a_missing_index_fails_with_the_services_error(
    fake: S3VectorsFake, service: Any
) -> None:
    module, arn = load(), new_index(service, "busy")
    fake.clear_calls()
    fake.fail_next("GetIndex", 1)
    module.on_event(event("Create", arn), None)
    assert len(fake.calls("GetIndex")) == 2
    with pytest.raises(Exception, match="NotFoundException"):
        module.on_event(event("Create", arn.replace("/index/busy", "/index/gone")), None)


def test_calls_give_up_within_the_function_timeout() -> None:
    module = load()
    backoff_cap_s = 20  # botocore's standard mode
    worst = module.MAX_ATTEMPTS * (module.CONNECT_TIMEOUT_S + module.READ_TIMEOUT_S)
    worst += (module.MAX_ATTEMPTS - 1) * backoff_cap_s
    assert worst < 5 * 60 - 30  # the function's timeout (VectorIndex), less time to report


def test_a_botocore_without_the_operations_is_refused_by_name() -> None:
    module = load()
    module.check_operations(["GetIndex", "UpdateIndexMode", "UpdateMetadataConfiguration", "X"], "1.44.8")
    with pytest.raises(RuntimeError, match=r"botocore 1\.39\.0 does not know s3vectors UpdateIndexMode, "):
        module.check_operations(["GetIndex"], "1.39.0")


PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import boto3, index
print(json.dumps({"boto3": boto3.__file__, "result": index.on_event(json.loads(sys.argv[2]), None)}))
"""


def test_the_bundled_asset_sets_up_an_index_with_its_own_boto3(
    fake: S3VectorsFake, service: Any, tmp_path: Path
) -> None:
    """The asset as Lambda gets it (boto3 and botocore from the functions' pinned arm64 site, pure Python),
    run in ``python -I -S``: no site-packages, the asset alone on the path."""
    asset = bundle_setup(tmp_path / "asset", site=dependency_site(LAMBDA_ARM64_PY312))
    assert sorted(p.name for p in (asset / "botocore" / "data").iterdir() if p.is_dir()) == ["s3vectors"]
    arn = new_index(service, "bundled")
    fake.clear_calls()
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(asset), json.dumps(event("Create", arn))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["boto3"].startswith(str(asset))
    assert out["result"]["Data"] == {"VectorBucketName": BUCKET, "IndexName": "bundled"}
    assert [len(fake.calls(op)) for op in UPDATES] == [1, 1]
