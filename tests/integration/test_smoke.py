"""`rag-explorer smoke` against a local deployment: moto's S3 (versioned bucket, object events to an SQS
queue) and, over real HTTP, the resolver `serve` and the Lambdas run (``create_app``), fed by the ingest
function's ``S3Sync`` pumping that queue. Both share one service, as the deployed functions share the
OpenSearch index."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from local_cli.commands.smoke import SmokeRun
from local_cli.main import cli
from local_cli.server import LocalLambdaContext, build_event
from shared.adapters.client import RemoteClient
from shared.adapters.http_api import create_app
from shared.adapters.s3_sync import S3Sync
from shared.service import RagService
from shared.settings import load_settings

pytestmark = pytest.mark.integration
REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Deployment:
    url: str
    bucket: str
    s3: Any
    service: RagService
    pumping: threading.Event

    def versions(self) -> list[str]:
        listed = self.s3.list_object_versions(Bucket=self.bucket, Prefix="smoke-")
        return [v["Key"] for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]]


def _api_handler(service: RagService, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    app = create_app(service)

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            event = build_event(
                self.command,
                self.path,
                list(self.headers.items()),
                body,
                source_ip="127.0.0.1",
                request_id=uuid.uuid4().hex,
            )
            with lock:
                result = app.resolve(event, LocalLambdaContext(event["requestContext"]["requestId"]))
            payload = str(result.get("body") or "").encode()
            self.send_response(int(result["statusCode"]))
            for name, value in (result.get("headers") or {}).items():
                if name.lower() != "content-length":
                    self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve  # http.server's method names

        def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
            pass

    return Handler


@pytest.fixture(params=[False])
def deployment(
    request: pytest.FixtureRequest, moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Deployment]:
    """Unversioned by default: moto sends no event for a delete marker (S3 does,
    ``ObjectRemoved:DeleteMarkerCreated``), so only there does a deletion reach the index. The tests
    that never get that far run on a versioned bucket, like the deployed one (``versioned``)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_ENDPOINT_URL_S3": moto_url,  # the command's boto3 client reads it itself
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name=REGION)
    bucket = f"docs-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    if request.param:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    queue_url = sqs.create_queue(QueueName=f"ingest-{bucket}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}
            ]
        },
    )
    service = RagService(
        load_settings(env={"RAG_EXPLORER_HOME": str(tmp_path / "home"), "RAG_EXPLORER_EMBEDDER": "hash:256"})
    )
    lock, stop, pumping = threading.Lock(), threading.Event(), threading.Event()
    pumping.set()
    sync = S3Sync(service, s3)

    def pump() -> None:  # the SQS event source mapping and the ingest function
        while not stop.is_set():
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for message in got.get("Messages", []) if pumping.is_set() else []:
                with lock:
                    sync.handle_message(message["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            stop.wait(0.1)

    server = ThreadingHTTPServer(("127.0.0.1", 0), _api_handler(service, lock))
    threads = [
        threading.Thread(target=pump, daemon=True),
        threading.Thread(target=server.serve_forever, daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield Deployment(f"http://127.0.0.1:{server.server_port}", bucket, s3, service, pumping)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        for thread in threads:
            thread.join(timeout=10)


def smoke(deployment: Deployment, *args: str) -> Any:
    return CliRunner().invoke(
        cli,
        ["smoke", "--endpoint", deployment.url, "--api-key", "k" * 20, "--bucket", deployment.bucket, *args],
    )


def test_a_healthy_deployment_passes_every_step_and_leaves_nothing(deployment: Deployment) -> None:
    result = smoke(deployment, "--timeout", "60")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if not line.startswith("     ")]
    assert [line.split()[:2] for line in lines] == [
        ["ok", "upload"],
        ["ok", "indexed"],
        ["ok", "answered"],
        ["ok", "delete"],
        ["ok", "removed"],
        ["ok", "health"],
    ]
    assert all(" s " in line for line in lines)  # each step's time
    assert deployment.versions() == []  # every version and delete marker of the test page removed
    assert not [s for s in deployment.service.store.source_hashes() if "smoke-" in s]


def test_json_report(deployment: Deployment) -> None:
    result = smoke(deployment, "--timeout", "60", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["bucket"] == deployment.bucket
    assert [s["name"] for s in report["steps"]] == [
        "upload",
        "indexed",
        "answered",
        "delete",
        "removed",
        "health",
    ]


versioned = pytest.mark.parametrize("deployment", [True], indirect=True)


@versioned
def test_an_ingest_that_never_happens_fails_at_indexed_and_still_cleans_up(deployment: Deployment) -> None:
    deployment.pumping.clear()  # the queue is not drained: nothing gets indexed
    result = smoke(deployment, "--timeout", "1")
    assert result.exit_code == 1
    assert "FAIL indexed" in result.output and "not found by /search within 1 s" in result.output
    assert "smoke test failed at step indexed" in result.output
    assert "answered" not in result.output
    assert deployment.versions() == []


@versioned
def test_an_interrupted_run_cleans_up(deployment: Deployment) -> None:
    class Interrupted(RemoteClient):
        def search(self, *args: Any, **kwargs: Any) -> Any:
            raise KeyboardInterrupt

    run = SmokeRun(Interrupted(deployment.url), deployment.s3, deployment.bucket, say=lambda line: None)
    with pytest.raises(KeyboardInterrupt):
        run.run()
    assert [s.name for s in run.steps] == ["upload"]
    assert deployment.versions() == []


def test_an_api_error_fails_its_step(deployment: Deployment) -> None:
    """An API error (here a wrong base URL: 404) is the failing step's detail, not a traceback."""
    result = smoke(deployment, "--timeout", "5", "--endpoint", deployment.url + "/nope")
    assert result.exit_code == 1
    assert "FAIL indexed" in result.output
    assert deployment.versions() == []


def test_without_an_endpoint_it_says_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_EXPLORER_ENDPOINT", raising=False)
    result = CliRunner().invoke(cli, ["smoke", "--bucket", "b"])
    assert result.exit_code == 1 and "--endpoint URL" in result.output
