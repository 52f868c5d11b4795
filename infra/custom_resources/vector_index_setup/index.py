"""Custom resource handler: what CloudFormation cannot say about the Amazon S3 Vectors index yet.

``AWS::S3Vectors::Index`` takes the dimension, data type, distance metric and non-filterable metadata keys,
but neither the index mode nor full-text search. On Create and Update this handler reads the index
(``GetIndex``) and then, only where it differs:

- sets the index mode (``UpdateIndexMode``, ``IndexMode``: ``ENHANCED`` filters before the vector search,
  and full-text search needs it);
- adds the full-text search configurations the index lacks (``UpdateMetadataConfiguration`` with
  ``add``); one whose language differs is deleted first and added again (the service takes either ``add``
  or ``delete`` in one request).

A second run changes nothing, and nothing else is touched: a configuration added by hand stays. The
resource's attributes ``VectorBucketName`` and ``IndexName`` are the names GetIndex answers (CloudFormation
generates them, and returns only ARNs). Delete does nothing: the index goes with its own CloudFormation
resource, or is retained with it.

The asset carries the functions' pinned boto3 and botocore (``infra/runtime/requirements.txt``), not the
Lambda runtime's, whose version lags behind the service: ``UpdateIndexMode`` and full-text search are
recent. :func:`make_client` refuses a botocore without them, naming its version. Retries are botocore's
standard mode (throttling, 5xx, timeouts): at most :data:`MAX_ATTEMPTS` attempts of :data:`CONNECT_TIMEOUT_S`
+ :data:`READ_TIMEOUT_S` each, with backoffs of at most 20 s, so one call gives up well within the
function's 5 minutes and reports the service's own error to CloudFormation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger()
log.setLevel(logging.INFO)

#: the operations this handler calls (and the IAM actions of its role, on this index only)
OPERATIONS = ("GetIndex", "UpdateIndexMode", "UpdateMetadataConfiguration")
MAX_ATTEMPTS = 5
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 20


def make_client() -> Any:
    """boto3's client, at ``AWS_ENDPOINT_URL_S3VECTORS`` when set (the tests' local endpoint)."""
    import boto3
    import botocore
    from botocore.config import Config

    client = boto3.client(
        "s3vectors",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
        ),
    )
    check_operations(client.meta.service_model.operation_names, botocore.__version__)
    return client


def check_operations(known: list[str], botocore_version: str) -> None:
    missing = sorted(set(OPERATIONS) - set(known))
    if missing:
        raise RuntimeError(
            f"botocore {botocore_version} does not know s3vectors {', '.join(missing)}: the asset must "
            "carry the pinned boto3/botocore (infra/components/vectors.py bundles them)"
        )


def _language(config: dict[str, Any]) -> str | None:
    language = config.get("language")
    return str(language) if language else None


def apply(
    client: Any, index_arn: str, *, mode: str, text_search: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[str]]:
    """Bring the index to ``mode`` with ``text_search``: the index as GetIndex saw it first, and what was
    changed (empty: nothing)."""
    index = client.get_index(indexArn=index_arn)["index"]
    changes: list[str] = []
    if index.get("indexMode") != mode:
        client.update_index_mode(indexArn=index_arn, indexMode=mode)
        changes.append(f"index mode {index.get('indexMode')} -> {mode}")
    current = {
        c["metadataKey"]: _language(c)
        for c in (index.get("metadataConfiguration") or {}).get("textSearchConfigurations") or []
    }
    stale = [
        c for c in text_search if c["metadataKey"] in current and current[c["metadataKey"]] != _language(c)
    ]
    if stale:
        keys = [{"metadataKey": c["metadataKey"]} for c in stale]
        client.update_metadata_configuration(indexArn=index_arn, delete={"textSearchConfigurations": keys})
        changes.append(f"text search removed from {[k['metadataKey'] for k in keys]} (language changes)")
    missing = [c for c in text_search if c["metadataKey"] not in current or c in stale]
    if missing:
        add = [{k: v for k, v in c.items() if k in ("metadataKey", "language") and v} for c in missing]
        client.update_metadata_configuration(indexArn=index_arn, add={"textSearchConfigurations": add})
        changes.append(f"text search added on {[c['metadataKey'] for c in add]}")
    return index, changes


def on_event(
    event: dict[str, Any], context: Any, client_factory: Callable[[], Any] = make_client
) -> dict[str, Any]:
    props = event["ResourceProperties"]
    index_arn = str(props["IndexArn"])
    physical_id = f"{index_arn}#setup"  # a new index is a new resource; the old one's Delete is a no-op
    log.info("%s %s", event["RequestType"], physical_id)
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId") or physical_id}
    index, changes = apply(
        client_factory(),
        index_arn,
        mode=str(props["IndexMode"]),
        text_search=[dict(c) for c in props.get("TextSearchConfigurations", [])],
    )
    log.info("changed: %s", "; ".join(changes) or "nothing (the index was already set up)")
    names = {"VectorBucketName": index["vectorBucketName"], "IndexName": index["indexName"]}
    return {"PhysicalResourceId": physical_id, "Data": names}
