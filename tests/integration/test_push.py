"""`push_folder` against S3 from moto in server mode (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from shared.adapters.push import PushError, push_folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for var, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(var, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="docs")
    yield client
    for obj in client.list_objects_v2(Bucket="docs").get("Contents", []):
        client.delete_object(Bucket="docs", Key=obj["Key"])
    client.delete_bucket(Bucket="docs")


def keys(s3: Any) -> dict[str, bytes]:
    out = {}
    for obj in s3.list_objects_v2(Bucket="docs").get("Contents", []):
        out[obj["Key"]] = s3.get_object(Bucket="docs", Key=obj["Key"])["Body"].read()
    return out


def test_upload_skip_unchanged_and_delete(s3: Any, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# A\n")
    (docs / "sub" / "b.txt").write_text("B")
    (docs / ".hidden").write_text("secret")

    first = push_folder(s3, docs, bucket="docs", prefix="handbook")
    assert (first.uploaded, first.unchanged, first.deleted, first.errors) == (2, 0, 0, 0)
    assert keys(s3) == {"handbook/a.md": b"# A\n", "handbook/sub/b.txt": b"B"}
    head = s3.head_object(Bucket="docs", Key="handbook/a.md")
    assert head["ContentType"] == "text/markdown" and len(head["Metadata"]["sha256"]) == 64

    (docs / "a.md").write_text("# A changed\n")
    second = push_folder(s3, docs, bucket="docs", prefix="handbook/")
    assert {f.key: f.action for f in second.files} == {
        "handbook/a.md": "uploaded",
        "handbook/sub/b.txt": "unchanged",
    }

    (docs / "sub" / "b.txt").unlink()
    s3.put_object(Bucket="docs", Key="elsewhere/keep.md", Body=b"not under the prefix")
    dry = push_folder(s3, docs, bucket="docs", prefix="handbook", delete=True, dry_run=True)
    assert dry.deleted == 1 and "handbook/sub/b.txt" in keys(s3)  # a dry run changes nothing
    third = push_folder(s3, docs, bucket="docs", prefix="handbook", delete=True)
    assert (third.uploaded, third.unchanged, third.deleted) == (0, 1, 1)
    assert set(keys(s3)) == {"handbook/a.md", "elsewhere/keep.md"}


def test_missing_bucket_is_a_clear_error(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(PushError, match="cannot list s3://nope/"):
        push_folder(s3, tmp_path, bucket="nope")
    with pytest.raises(PushError, match="is not a folder"):
        push_folder(s3, tmp_path / "missing", bucket="docs")


def test_links_that_leave_the_folder_are_not_uploaded(s3: Any, tmp_path: Path) -> None:
    secret = tmp_path / "settings.json"
    secret.write_text('{"api_key": "sk-live-123"}')
    secret.chmod(0o600)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n")
    (docs / "keys.md").symlink_to(secret)
    (docs / "inside.md").symlink_to(docs / "a.md")
    (docs / "loop.md").symlink_to(docs / "loop.md")
    summary = push_folder(s3, docs, bucket="docs")
    assert set(keys(s3)) == {"a.md", "inside.md"}
    skipped = {f.key: f.reason for f in summary.files if f.action == "skipped"}
    assert set(skipped) == {"keys.md", "loop.md"} and summary.skipped == 2 and summary.errors == 0
    assert "outside the folder" in (skipped["keys.md"] or "")
    assert "broken or loops" in (skipped["loop.md"] or "")
