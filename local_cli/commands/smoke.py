"""`smoke`: the operator's check after every deploy, through the deployed API and its document bucket.

Each run uploads a small marked document under a unique prefix (``smoke-<token>/``), waits (bounded,
with progress) until ``/search`` finds it, asks a question only it answers and checks the citation,
deletes it and waits until ``/search`` no longer finds it, then checks ``GET /health/detailed``. One line
per step with its time; the first failing step ends the run with exit 1. The document is deleted (every
version of it, best-effort) whatever happens, Ctrl-C included.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
from pydantic import BaseModel

from local_cli.output import UserError, echo
from local_cli.state import emit, json_option, user_errors
from shared.extras import needs_extra


class SmokeStep(BaseModel):
    name: str
    ok: bool
    seconds: float
    detail: str


class SmokeReport(BaseModel):
    ok: bool
    bucket: str
    key: str
    steps: list[SmokeStep]


class StepFailed(Exception):
    """A step's check failed; the message says what was expected and what came back."""


@dataclass
class SmokeRun:
    """One run: the API client (``search``, ``query``, ``health``), an S3 client, where to upload, and the
    bound on each wait. ``clock``/``sleep``/``say`` are the real ones except in tests."""

    client: Any
    s3: Any
    bucket: str
    prefix: str = ""
    timeout_s: float = 300.0
    poll_s: float = 2.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = echo
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    steps: list[SmokeStep] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.prefix}smoke-{self.token}/smoke-test.md"

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def word(self) -> str:
        return f"quillmarker{self.token}"

    def document(self) -> bytes:
        return (
            f"# Smoke test {self.token}\n\n"
            f"The smoke test code word of run {self.token} is {self.word}. This page is uploaded by "
            "rag-explorer smoke and deleted again within minutes.\n"
        ).encode()

    # ------------------------------------------------------------------ the run

    def run(self) -> SmokeReport:
        uploaded = False
        try:
            self._step("upload", self._upload)
            uploaded = True
            self._step("indexed", lambda: self._wait_for(found=True))
            self._step("answered", self._answered)
            self._step("delete", self._delete)
            self._step("removed", lambda: self._wait_for(found=False))
            self._step("health", self._health)
        except StepFailed:
            pass
        finally:
            if uploaded:
                self._purge()
        return SmokeReport(
            ok=bool(self.steps) and all(s.ok for s in self.steps) and len(self.steps) == 6,
            bucket=self.bucket,
            key=self.key,
            steps=self.steps,
        )

    def _step(self, name: str, action: Callable[[], str]) -> None:
        started = self.clock()
        try:
            detail, ok = action(), True
        except StepFailed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # an API or S3 error fails its step
            detail, ok = f"{type(exc).__name__}: {exc}", False
        step = SmokeStep(name=name, ok=ok, seconds=round(self.clock() - started, 1), detail=detail)
        self.steps.append(step)
        self.say(f"{'ok  ' if ok else 'FAIL'} {name:9} {step.seconds:7.1f} s  {detail}")
        if not ok:
            raise StepFailed(detail)

    def _upload(self) -> str:
        self.s3.put_object(
            Bucket=self.bucket, Key=self.key, Body=self.document(), ContentType="text/markdown"
        )
        return self.source

    def _found(self) -> bool:
        hits = self.client.search(self.word, k=10).hits
        return any(h.source == self.source for h in hits)

    def _wait_for(self, *, found: bool) -> str:
        what = "found by /search" if found else "gone from /search"
        started = self.clock()
        next_note = started + 10
        while True:
            if self._found() == found:
                return f"{what} after {self.clock() - started:.1f} s"
            if self.clock() - started >= self.timeout_s:
                raise StepFailed(f"not {what} within {self.timeout_s:.0f} s (is the ingest queue draining?)")
            if self.clock() >= next_note:
                self.say(f"     waiting: not yet {what} ({self.clock() - started:.0f} s)")
                next_note += 10
            self.sleep(self.poll_s)

    def _answered(self) -> str:
        answer = self.client.query(f"What is the smoke test code word of run {self.token}?")
        cited = [c.source for c in answer.citations]
        if answer.decision != "answer":
            reasons = "; ".join(answer.reasons) or "no reason given"
            raise StepFailed(f"refused ({reasons}): the test page was not used")
        if self.source not in cited:
            raise StepFailed(f"answered without citing the test page (cited: {', '.join(cited) or 'none'})")
        return f"answered, citing {self.source}"

    def _delete(self) -> str:
        self.s3.delete_object(Bucket=self.bucket, Key=self.key)
        return "deleted"

    def _health(self) -> str:
        report = self.client.health(detailed=True)
        failing = report.get("failing") or []
        if failing:
            raise StepFailed(f"/health/detailed reports {', '.join(map(str, failing))} down")
        return "/health/detailed: every check ok"

    def _purge(self) -> None:
        """Every version and delete marker under the run's prefix (a versioned bucket keeps them);
        best-effort: without s3:DeleteObjectVersion they expire with the bucket's lifecycle rule."""
        prefix = self.key.rsplit("/", 1)[0] + "/"
        try:
            listed = self.s3.list_object_versions(Bucket=self.bucket, Prefix=prefix)
            for entry in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]:
                self.s3.delete_object(Bucket=self.bucket, Key=entry["Key"], VersionId=entry["VersionId"])
        except Exception as exc:  # cleanup never hides the result
            self.say(f"     note: could not remove the test page's versions under {prefix}: {exc}")


@click.command()
@click.option("--endpoint", envvar="RAG_EXPLORER_ENDPOINT", help="The deployed API's URL (ApiUrl).")
@click.option("--api-key", envvar="RAG_EXPLORER_API_KEY", help="A secret API key of the API.")
@click.option(
    "--bucket",
    required=True,
    envvar="RAG_EXPLORER_DOCUMENT_BUCKET",
    help="The document bucket (DocumentBucketName) [env RAG_EXPLORER_DOCUMENT_BUCKET].",
)
@click.option("--prefix", default="", help="Key prefix of the test page, e.g. a collection's help/.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds each wait (indexed, removed) may take.",
)
@json_option
@click.pass_obj
def smoke(
    state: Any,
    endpoint: str | None,
    api_key: str | None,
    bucket: str,
    prefix: str,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Check a deployment end to end: upload a marked page, find it, get it cited, delete it, health.

    \b
    rag-explorer smoke --endpoint "$API_URL" --api-key "$API_KEY" --bucket "$BUCKET"
    """
    with needs_extra("aws", "uploads to S3"):
        import boto3

    from shared.adapters.client import RemoteClient

    flags = state.flags if state else {}
    url = endpoint or flags.get("endpoint")
    if not url:
        raise UserError("smoke needs the deployed API: --endpoint URL (the stack output ApiUrl)")
    with user_errors():
        client = RemoteClient(url, api_key or flags.get("api_key"))
        run = SmokeRun(client, boto3.client("s3"), bucket, prefix, timeout_s, say=_quiet if as_json else echo)
        report = run.run()
    if as_json:
        emit(report)
    if not report.ok:
        failed = next((s.name for s in report.steps if not s.ok), "interrupted")
        raise UserError(f"smoke test failed at step {failed}")


def _quiet(line: str) -> None:
    """--json prints the report alone."""
