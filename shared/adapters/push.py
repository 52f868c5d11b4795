"""`rag-explorer push`: make an S3 prefix mirror a local docs folder (the cloud index follows via S3 events).

Only changed files are uploaded: a file is unchanged when the object's ETag equals the file's MD5 (single
part uploads with SSE-S3) or, failing that, when the object's ``sha256`` metadata equals the file's
SHA-256. With ``delete``, objects under the prefix whose local file is gone are removed.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import RagExplorerError
from shared.loaders import iter_files, link_problem

MAX_SINGLE_PUT = 5 * 1024**3  # S3's single PUT limit


class PushError(RagExplorerError):
    """The bucket cannot be listed or written."""


class PushedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    path: str | None = None
    action: Literal["uploaded", "unchanged", "deleted", "skipped", "error"]
    reason: str | None = None


class PushSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket: str
    prefix: str
    uploaded: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    errors: int = 0
    dry_run: bool = False
    files: list[PushedFile] = Field(default_factory=list)


def _digests(path: Path) -> tuple[str, str]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest()


def _key(prefix: str, rel: Path) -> str:
    return prefix + rel.as_posix()


def local_files(folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """The files to push, as relative POSIX path -> file (the walk of ``ingest``: hidden files and
    folders skipped), and the files that must not be pushed, as relative path -> why (a symlink that
    leaves the folder, loops or dangles)."""
    files: dict[str, Path] = {}
    refused: dict[str, str] = {}
    for path in iter_files([folder]):
        rel = path.relative_to(folder).as_posix()
        problem = link_problem(path, [folder])
        if problem is not None:
            refused[rel] = problem
        elif path.is_file():
            files[rel] = path
    return files, refused


def _remote_objects(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    objects: dict[str, str] = {}
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                objects[obj["Key"]] = obj.get("ETag", "").strip('"')
    except Exception as exc:  # botocore ClientError, EndpointConnectionError, NoCredentialsError ...
        raise PushError(f"cannot list s3://{bucket}/{prefix}: {exc}") from exc
    return objects


def push_folder(
    s3: Any,
    folder: Path,
    *,
    bucket: str,
    prefix: str = "",
    delete: bool = False,
    dry_run: bool = False,
    on_file: Callable[[PushedFile], None] | None = None,
) -> PushSummary:
    if not folder.is_dir():
        raise PushError(f"{folder} is not a folder")
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    summary = PushSummary(bucket=bucket, prefix=prefix, dry_run=dry_run)
    remote = _remote_objects(s3, bucket, prefix)
    files, refused = local_files(folder)

    def record(item: PushedFile) -> None:
        summary.files.append(item)
        setattr(
            summary,
            item.action if item.action != "error" else "errors",
            getattr(summary, item.action if item.action != "error" else "errors") + 1,
        )
        if on_file:
            on_file(item)

    for rel, reason in refused.items():
        record(
            PushedFile(key=_key(prefix, Path(rel)), path=str(folder / rel), action="skipped", reason=reason)
        )
    for rel, path in files.items():
        record(
            _push_file(s3, path, bucket=bucket, key=_key(prefix, Path(rel)), remote=remote, dry_run=dry_run)
        )

    if delete:
        wanted = {_key(prefix, Path(rel)) for rel in files}  # a refused link pushed before goes
        for key in sorted(set(remote) - wanted):
            try:
                if not dry_run:
                    s3.delete_object(Bucket=bucket, Key=key)
                record(PushedFile(key=key, action="deleted"))
            except Exception as exc:
                record(PushedFile(key=key, action="error", reason=str(exc)))
    return summary


def _push_file(
    s3: Any, path: Path, *, bucket: str, key: str, remote: dict[str, str], dry_run: bool
) -> PushedFile:
    """Upload one file unless the bucket holds it already; an error is reported, never raised."""
    try:
        if path.stat().st_size > MAX_SINGLE_PUT:
            return PushedFile(key=key, path=str(path), action="error", reason="larger than 5 GB")
        md5, sha = _digests(path)
        if key in remote and (remote[key] == md5 or _remote_sha256(s3, bucket, key) == sha):
            return PushedFile(key=key, path=str(path), action="unchanged")
        if not dry_run:
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            with path.open("rb") as body:
                s3.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata={"sha256": sha}
                )
        return PushedFile(key=key, path=str(path), action="uploaded")
    except OSError as exc:
        return PushedFile(key=key, path=str(path), action="error", reason=f"cannot read: {exc.strerror}")
    except Exception as exc:  # an S3 error on one file never stops the others
        return PushedFile(key=key, path=str(path), action="error", reason=str(exc))


def _remote_sha256(s3: Any, bucket: str, key: str) -> str | None:
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except Exception:
        return None
    return dict(head.get("Metadata") or {}).get("sha256")
