"""The S3 Vectors transport of :mod:`shared.stores.s3vectors`: boto3's ``s3vectors`` client, botocore
errors mapped onto the core's store errors, and writes sent in batches within the service limits (500
vectors and :data:`~shared.stores.s3vectors_requests.PUT_BATCH_BYTES` per request). A batch refused for
throttling or capacity (after botocore's own retries) is split in halves and retried with backoff, a
bounded number of times: PutVectors replaces by key and DeleteVectors ignores missing keys, so sending
again is safe.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from shared.errors import ConfigError, StoreError, StoreUnavailableError
from shared.extras import needs_extra
from shared.stores import s3vectors_requests as rq

log = logging.getLogger(__name__)

WRITE_ATTEMPTS = 5
"""How often a refused write batch is retried (split in halves each time) before the error is raised."""
BACKOFF_S = 0.5
BACKOFF_CAP_S = 8.0
_RETRYABLE = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "SlowDown",
        "ServiceUnavailableException",
        "InternalServerException",
        "RequestTimeoutException",
    }
)


def build_client(region: str | None, *, timeout_s: float = 10.0) -> Any:
    """boto3's ``s3vectors`` client (standard retries; ``AWS_ENDPOINT_URL_S3VECTORS`` is honoured)."""
    with needs_extra("aws", "the S3 Vectors store"):
        import boto3
        from botocore.config import Config

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"mode": "standard", "total_max_attempts": 3},
    )
    try:
        return boto3.client("s3vectors", region_name=region, config=config)
    except Exception as exc:  # NoRegionError, an unknown service in an old botocore...
        raise ConfigError(f"cannot build an S3 Vectors client: {exc}") from exc


class VectorsClient:
    """Requests to one index of one vector bucket, with errors mapped and writes batched."""

    def __init__(
        self, client: Any, *, bucket: str, index: str, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.index = index
        self._sleep = sleep

    @property
    def where(self) -> str:
        return f"the S3 Vectors index '{self.index}' of vector bucket '{self.bucket}'"

    @contextmanager
    def backend(self, what: str) -> Iterator[None]:
        """Map botocore errors raised while doing ``what`` onto the core's store errors."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _RETRYABLE or (isinstance(status, int) and status >= 500):
                raise StoreUnavailableError(
                    f"S3 Vectors {what} failed ({code}, retry later): {message}"
                ) from exc
            if code == "NotFoundException":
                raise StoreError(
                    f"S3 Vectors {what}: {self.where} was not found ({message}); check s3vectors_bucket, "
                    "s3vectors_index and aws_region"
                ) from exc
            if code == "AccessDeniedException":
                raise StoreError(
                    f"S3 Vectors refused {what} on {self.where} ({message}); check the role's s3vectors:* "
                    "permissions (a filter, metadata or full-text query also needs s3vectors:GetVectors)"
                ) from exc
            raise StoreError(f"S3 Vectors {what} failed ({code}): {message}") from exc
        except NoCredentialsError as exc:
            raise StoreError(f"S3 Vectors {what}: no AWS credentials (environment, profile or role)") from exc
        except BotoCoreError as exc:  # unreachable endpoint, timeouts, TLS
            raise StoreUnavailableError(f"S3 Vectors {what} failed: {exc}") from exc

    def call(self, operation: str, what: str, **request: Any) -> dict[str, Any]:
        with self.backend(what):
            response: dict[str, Any] = getattr(self.client, operation)(**request)
        return response

    def write(self, operation: str, field: str, items: list[Any], what: str) -> None:
        limit = rq.MAX_PUT_VECTORS if operation == "put_vectors" else rq.MAX_DELETE_VECTORS
        batch: list[Any] = []
        size = 0
        for item in items:
            item_size = rq.json_size(item)
            if batch and (len(batch) >= limit or size + item_size > rq.PUT_BATCH_BYTES):
                self._send(operation, field, batch, what, attempt=0)
                batch, size = [], 0
            batch.append(item)
            size += item_size
        if batch:
            self._send(operation, field, batch, what, attempt=0)

    def _send(self, operation: str, field: str, batch: list[Any], what: str, *, attempt: int) -> None:
        """Send one batch; refused for throttling or capacity, split it in halves and retry each (PutVectors
        replaces by key and DeleteVectors ignores missing keys: sending again is safe)."""
        try:
            self.call(operation, what, vectorBucketName=self.bucket, indexName=self.index, **{field: batch})
        except StoreUnavailableError:
            if attempt + 1 >= WRITE_ATTEMPTS:
                raise
            delay = min(BACKOFF_CAP_S, BACKOFF_S * 2**attempt)
            log.warning("S3 Vectors %s of %d refused, retrying in %.1f s", what, len(batch), delay)
            self._sleep(delay)
            halves = [batch[: len(batch) // 2], batch[len(batch) // 2 :]] if len(batch) > 1 else [batch]
            for half in halves:
                self._send(operation, field, half, what, attempt=attempt + 1)
