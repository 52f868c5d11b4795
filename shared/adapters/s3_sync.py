"""Keep the index equal to an S3 bucket, driven by S3 event notifications delivered through SQS.

Every event is a hint, not a command: whatever its kind (created or removed), the key is looked up in S3
*now* and the index is made to match what is there. An object that exists is (re)indexed -- unchanged
content is a no-op, so duplicate deliveries are free -- and an object that is gone has its chunks
deleted. Reordered or duplicated create/delete events therefore always end with the index equal to the
bucket, without a ledger: a stale "created" event for a deleted object finds nothing and removes nothing
but what should not be there.

After indexing, the object is looked up once more (``head_object``). If it changed or disappeared while
it was being indexed (a concurrent upload or delete handled by another invocation), the key is
reconciled again from scratch, so a slow invocation never leaves an old version behind.

Failure policy (the SQS record handler): a document that cannot be parsed (``LoaderError``), an
unsupported file type, a too large file and a message that is not an S3 event are logged, counted and
acknowledged -- retrying cannot fix them. A store failure, an embedder failure, an S3 error other than
"not found" or anything unexpected raises, so that the message is retried and finally dead-lettered.

Sources are ``s3://bucket/key``; the records of a ``.jsonl`` object are ``s3://bucket/key#<_id>``.

Collections: an object belongs to the collection whose prefix (settings ``collections``) its key starts
with, longest prefix first, else to the default collection; its path in that collection (the key without
the prefix) fills the collection's URL template.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote_plus

from shared.errors import LoaderError, RagExplorerError
from shared.models import Document
from shared.observability import LoggerLike, MetricsSink, NullMetrics
from shared.sites import collection_for_key, relative_to_collection

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from shared.ingest import Placement
    from shared.service import RagService

_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_RECONCILE_PREFIXES = ("ObjectCreated:", "ObjectRemoved:", "LifecycleExpiration:")

Action = Literal["indexed", "unchanged", "removed", "absent", "failed", "skipped"]


class ObjectKeepsChangingError(RagExplorerError):
    """The object changed every time it was indexed; the message is retried later."""


class OutOfTimeError(RagExplorerError):
    """Too little of the invocation is left to start this record safely; it is retried later."""


#: Time a record may need beyond parsing (``loader_timeout_s``): fetching, embedding and writing it.
RECORD_MARGIN_S = 30.0


@dataclass
class KeyResult:
    """What reconciling one key did."""

    bucket: str
    key: str
    action: Action
    documents: int = 0
    chunks: int = 0
    reason: str | None = None

    @property
    def source(self) -> str:
        return source_for(self.bucket, self.key)


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    event_name: str


@dataclass
class _Fetched:
    data: bytes | None  # None: too large, not read
    etag: str
    size: int


def source_for(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def is_not_found(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _NOT_FOUND or status == 404


class NotAnS3EventError(ValueError):
    """The message body is not an S3 event notification (nor one wrapped by SNS or sent by EventBridge)."""


#: S3's EventBridge detail types as the notification event names they stand for (``reason`` completes them)
_EVENTBRIDGE_NAMES = {"Object Created": "ObjectCreated", "Object Deleted": "ObjectRemoved"}


def _eventbridge_refs(payload: dict[str, Any]) -> list[ObjectRef]:
    """An S3 event that an EventBridge rule sent to the queue: one object, its key URL-encoded as in a
    notification. ``Object Created``/``Object Deleted`` read as ``ObjectCreated:<reason>``/
    ``ObjectRemoved:<reason>`` (a lifecycle expiration as ``LifecycleExpiration:``); other types keep
    their own name, which the handler ignores."""
    detail, detail_type = payload.get("detail"), str(payload["detail-type"])
    if not isinstance(detail, dict):
        raise NotAnS3EventError("S3 EventBridge event without a 'detail' object")
    try:
        bucket, key = str(detail["bucket"]["name"]), unquote_plus(str(detail["object"]["key"]))
    except (KeyError, TypeError) as exc:
        raise NotAnS3EventError(f"malformed S3 EventBridge event: {exc!r}") from None
    reason = str(detail.get("reason") or "")
    name = _EVENTBRIDGE_NAMES.get(detail_type)
    if name == "ObjectRemoved" and reason == "Lifecycle Expiration":
        name = "LifecycleExpiration"
    return [ObjectRef(bucket, key, f"{name}:{reason.replace(' ', '')}" if name else detail_type)]


def parse_message(body: str) -> list[ObjectRef]:
    """The objects an SQS message body refers to: an S3 notification, possibly inside an SNS envelope, or
    an S3 event sent by an EventBridge rule (``source`` ``aws.s3``).

    An ``s3:TestEvent`` gives no objects. Keys are URL-decoded (``unquote_plus``), as S3 encodes them.
    Raises :class:`NotAnS3EventError` for anything else.
    """
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, TypeError) as exc:
        raise NotAnS3EventError(f"body is not JSON: {exc}") from None
    if isinstance(payload, dict) and payload.get("Type") == "Notification" and "Message" in payload:
        return parse_message(str(payload["Message"]))  # S3 -> SNS -> SQS
    if not isinstance(payload, dict):
        raise NotAnS3EventError("body is not a JSON object")
    if payload.get("source") == "aws.s3" and "detail-type" in payload:
        return _eventbridge_refs(payload)  # S3 -> EventBridge -> SQS
    if payload.get("Event") == "s3:TestEvent":
        return []
    records = payload.get("Records")
    if not isinstance(records, list):
        raise NotAnS3EventError("body has no 'Records' list")
    from aws_lambda_powertools.utilities.data_classes import S3Event

    refs: list[ObjectRef] = []
    try:
        for record in S3Event(payload).records:
            if record.get("eventSource") not in (None, "aws:s3"):
                raise NotAnS3EventError(f"record from {record.get('eventSource')!r}, not aws:s3")
            key = unquote_plus(record.s3.get_object.key)
            refs.append(ObjectRef(record.s3.bucket.name, key, record.event_name.removeprefix("s3:")))
    except (KeyError, TypeError, AttributeError) as exc:
        raise NotAnS3EventError(f"malformed S3 record: {exc!r}") from None
    return refs


class S3Sync:
    """Reconciles keys of S3 buckets with the index of a :class:`RagService`."""

    def __init__(
        self,
        service: RagService,
        s3_client: Any,
        *,
        metrics: MetricsSink | None = None,
        logger: LoggerLike | None = None,
        max_attempts: int = 3,
    ) -> None:
        self.service = service
        self.s3 = s3_client
        self.metrics: MetricsSink = metrics or NullMetrics()
        self.log: LoggerLike = logger or logging.getLogger(__name__)
        self.max_attempts = max_attempts

    # ------------------------------------------------------------------ SQS

    def handle_record(self, record: SQSRecord, lambda_context: Any = None) -> list[KeyResult]:
        """The BatchProcessor record handler: returns normally to acknowledge, raises to retry.

        A record is started only while the invocation has time for a slow one (``loader_timeout_s``
        plus :data:`RECORD_MARGIN_S`); later records of the batch are reported as failed without any
        work and come back alone, so a few slow documents never time out the whole batch (which would
        send every record back, again and again, to the dead-letter queue).
        """
        if lambda_context is not None:
            left = lambda_context.get_remaining_time_in_millis() / 1000
            needed = self.service.settings.loader_timeout_s + RECORD_MARGIN_S
            if left < needed:
                self.metrics.count("RecordsDeferred")
                self.log.warning(
                    "deferred: %.0f s left of the invocation, a record may need %.0f s",
                    left,
                    needed,
                    extra={"message_id": record.message_id},
                )
                raise OutOfTimeError(
                    f"deferred to a later invocation ({left:.0f} s left, {needed:.0f} s needed)"
                )
        return self.handle_message(record.body, message_id=record.message_id)

    def handle_message(self, body: str, *, message_id: str | None = None) -> list[KeyResult]:
        try:
            refs = parse_message(body)
        except NotAnS3EventError as exc:
            # retrying cannot fix it, and S3 (the source of truth) is unaffected: acknowledge it
            self.log.error(
                "rejected SQS message: %s",
                exc,
                extra={"message_id": message_id, "body_start": str(body)[:200]},
            )
            self.metrics.count("MessagesRejected")
            return []
        results: list[KeyResult] = []
        failure: BaseException | None = None
        for ref in refs:
            if not ref.event_name.startswith(_RECONCILE_PREFIXES):
                self.log.info("ignored %s event for s3://%s/%s", ref.event_name, ref.bucket, ref.key)
                continue
            try:
                results.append(self.reconcile(ref.bucket, ref.key))
            except Exception as exc:  # finish the other records, then fail the message
                self.log.error(
                    "could not reconcile s3://%s/%s: %s",
                    ref.bucket,
                    ref.key,
                    exc,
                    extra={"message_id": message_id, "event_name": ref.event_name},
                )
                failure = failure or exc
        if failure is not None:
            raise failure
        return results

    # ------------------------------------------------------------------ one key

    def reconcile(self, bucket: str, key: str) -> KeyResult:
        """Make the index match the object's current state in S3."""
        from shared.loaders import SUPPORTED_SUFFIXES, unsupported_type

        started = time.perf_counter()
        suffix = PurePosixPath(key).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:  # nothing of it can be in the index: no S3 call needed
            result = KeyResult(bucket, key, "skipped", reason=unsupported_type(key))
            self._count(result)
            self.log.info("skipped s3://%s/%s: %s", bucket, key, result.reason)
            return result
        for attempt in range(self.max_attempts):
            fetched = self._fetch(bucket, key)
            if fetched is None:
                result = self._remove(bucket, key, "object no longer exists")
                break
            result = self._index(bucket, key, fetched, clean=attempt > 0)
            current = self._head_etag(bucket, key)
            if current == fetched.etag:
                break
            self.log.info(
                "s3://%s/%s changed while it was indexed (attempt %d); reconciling again",
                bucket,
                key,
                attempt + 1,
            )
        else:
            raise ObjectKeepsChangingError(f"s3://{bucket}/{key} changed during {self.max_attempts} attempts")
        self._count(result)
        self.log.info(
            "%s s3://%s/%s",
            result.action,
            bucket,
            key,
            extra={
                "action": result.action,
                "documents": result.documents,
                "chunks": result.chunks,
                "reason": result.reason,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return result

    def _count(self, result: KeyResult) -> None:
        m = self.metrics
        if result.action == "indexed":
            m.count("DocumentsIndexed", result.documents)
            m.count("ChunksIndexed", result.chunks)
        elif result.action == "unchanged":
            m.count("DocumentsUnchanged")
        elif result.action == "removed":
            m.count("DocumentsRemoved", result.documents)
        elif result.action == "failed":
            m.count("DocumentsFailed")
        elif result.action == "skipped":
            m.count("DocumentsSkipped")

    # ------------------------------------------------------------------ S3

    def _fetch(self, bucket: str, key: str) -> _Fetched | None:
        """The object's bytes and ETag, or None when it does not exist. Other S3 errors raise."""
        limit = self.service.settings.max_file_bytes
        try:
            response = self.s3.get_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        body = response["Body"]
        size = int(response.get("ContentLength") or 0)
        etag = str(response.get("ETag", ""))
        try:
            if size > limit:
                return _Fetched(data=None, etag=etag, size=size)
            data = body.read(limit + 1)
        finally:
            body.close()
        if len(data) > limit:
            return _Fetched(data=None, etag=etag, size=len(data))
        return _Fetched(data=data, etag=etag, size=len(data))

    def _head_etag(self, bucket: str, key: str) -> str | None:
        try:
            return str(self.s3.head_object(Bucket=bucket, Key=key).get("ETag", ""))
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    # ------------------------------------------------------------------ index

    def _sources(self, bucket: str, key: str, known: Iterable[str] | None = None) -> list[str]:
        """Every indexed source that comes from this key (one, or one per JSON Lines record)."""
        source = source_for(bucket, key)
        indexed = self.service.store.source_hashes() if known is None else known
        if not key.lower().endswith(".jsonl"):  # "a.md#x.md" is another object, not a record of a.md
            return [s for s in indexed if s == source]
        return [s for s in indexed if s == source or s.startswith(source + "#")]

    def _delete(self, sources: Iterable[str]) -> tuple[int, int]:
        removed = self.service.ingestor.delete_sources(sources)
        self.service.store.flush()
        return removed

    def _remove(self, bucket: str, key: str, reason: str) -> KeyResult:
        documents, chunks = self._delete(self._sources(bucket, key))
        action: Action = "removed" if documents else "absent"
        return KeyResult(bucket, key, action, documents=documents, chunks=chunks, reason=reason)

    def _index(self, bucket: str, key: str, fetched: _Fetched, *, clean: bool) -> KeyResult:
        suffix = PurePosixPath(key).suffix.lower()
        if fetched.data is None:
            limit = self.service.settings.max_file_bytes
            self._delete(self._sources(bucket, key))  # an older, smaller version must not linger
            return KeyResult(
                bucket, key, "skipped", reason=f"file too large ({fetched.size} > {limit} bytes)"
            )
        try:
            docs = self._load(bucket, key, suffix, fetched.data)
        except LoaderError as exc:
            # the bucket now holds something unindexable: its older version must not keep answering
            self._delete(self._sources(bucket, key))
            self.log.warning("cannot load s3://%s/%s: %s", bucket, key, exc.reason)
            return KeyResult(bucket, key, "failed", reason=exc.reason)

        ingestor = self.service.ingestor
        known = self.service.store.source_hashes()
        mine = self._sources(bucket, key, known)
        if clean:  # re-index from scratch: the object changed while it was being indexed
            ingestor.delete_sources(mine, known)
        placement, path = self._placement(key)
        changed, embedded, _ = ingestor.replace(
            docs, owned=mine, known=known, placement=placement, relative_path=path
        )
        if changed == 0:
            return KeyResult(bucket, key, "unchanged", documents=len(docs))
        return KeyResult(bucket, key, "indexed", documents=changed, chunks=embedded)

    def _placement(self, key: str) -> tuple[Placement, str]:
        """The collection of ``key`` (with its URL template) and the key's path within it."""
        from shared.ingest import Placement

        settings = self.service.settings
        name = collection_for_key(settings.collections, key)
        placement = Placement(name, settings.collection(name).url_template)
        return placement, relative_to_collection(settings.collections, name, key)

    def _load(self, bucket: str, key: str, suffix: str, data: bytes) -> list[Document]:
        from shared.loaders import LoadLimits, load_bytes

        source = source_for(bucket, key)
        name = PurePosixPath(key).name
        if not name or name.startswith(".") or "\0" in name:
            name = f"object{suffix}"  # the file name is only a fallback title
        settings = self.service.settings
        docs = load_bytes(
            data,
            name=name,
            source=source,
            max_bytes=settings.max_file_bytes,
            limits=LoadLimits.from_settings(settings),
        )
        if suffix == ".jsonl":
            docs = [d.model_copy(update={"source": f"{source}#{d.source}"}) for d in docs]
        return docs
