"""A local Amazon S3 Vectors endpoint: moto (buckets, indexes, vector CRUD) behind a front door that adds
what moto 5.2 lacks. Real HTTP on 127.0.0.1, for the store suite.

    with moto_server() as moto_url, S3VectorsFake(moto_url) as fake:
        config = Config(retries={"mode": "standard", "total_max_attempts": 3})  # 3 requests at most
        client = boto3.client("s3vectors", endpoint_url=fake.url, region_name="us-east-1", config=config)
        fake.fail_next("PutVectors", 2)           # two TooManyRequestsException (429), then normal
        ...
        [len(body["vectors"]) for body in fake.calls("PutVectors")]   # every request, retries included

What the front door does:

* validates every request body against the botocore input shape of its operation (a member the model does
  not have, at any depth except inside documents such as ``filter``/``metadata``; a missing required
  member; min/max/enum/pattern/union): 400 ``ValidationException`` (header ``x-amzn-ErrorType``, body
  ``{"message"}``), as the service's other errors;
* keeps what moto drops: ``metadataConfiguration`` (text search configurations reported ``ACTIVE``) and the
  index mode (the bucket's default, ENHANCED unless ``PutVectorBucketDefaultIndexMode`` says otherwise;
  ``UpdateIndexMode``, ``UpdateMetadataConfiguration``), merged into GetIndex / GetVectorBucket with a
  ``creationTime``;
* fixes moto: CreateIndex of an existing name is a ConflictException (moto silently replaces the index and
  its vectors); ListVectors paginates (``maxResults``, default 500, ``nextToken``) and segments (moto
  returns everything at once); GetVectors answers in the order of the keys asked;
* enforces the limits moto does not (PutVectors: at most 500 vectors, 20 MiB payload, filterable metadata
  2 KB and all metadata 40 KB per vector, finite values, no zero vector on a cosine index; QueryVectors:
  ``topK`` at most 100);
* answers QueryVectors itself (moto has none), from the index's vectors read from moto: see
  :mod:`tests.fakes.s3vectors_search` for the filters and the ranking.

Where the AWS documentation is silent, the fake chooses (and the suite should not depend on more): ``$ne``
and ``$nin`` match a vector without the key (as in MongoDB); range operators and ``$in`` on a list-valued
key match when any element does; several keys in one filter object are ANDed; in CLASSIC mode a filter is
applied after the nearest ``topK`` are taken (so fewer than ``topK`` may come back), in ENHANCED mode
before; ``$startsWith`` works in ENHANCED mode only. Hybrid search fuses the ``topK`` best of each leg
(vector, and one full-text ranking per query text) by RRF (k=60); a full-text-only search with several
query texts ranks by the sum of their BM25 scores. BM25 statistics cover the whole index. The tag
operations are not served faithfully (the base server records every request as a POST; the adapter uses
none of them).
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import botocore.session

from tests.fakes import FakeServer, Recorded, send_bytes, send_json
from tests.fakes.s3vectors_search import (
    DEFAULT_INDEX_MODE,
    IndexInfo,
    ServiceError,
    invalid,
    json_size,
    rank,
    search_legs,
    validation_problem,
    vector_values,
)

MODEL = botocore.session.get_session().get_service_model("s3vectors")
_OPERATIONS = {
    MODEL.operation_model(name).http["requestUri"].split("/")[1]: name for name in MODEL.operation_names
}
_TAG_OPERATIONS = {"GET": "ListTagsForResource", "POST": "TagResource", "DELETE": "UntagResource"}

# https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-limitations.html (the service's numbers,
# written here on purpose rather than imported from the adapter: the fake is the oracle for them)
MAX_PAYLOAD_BYTES = 20 * 1024 * 1024
MAX_FILTERABLE_BYTES = 2 * 1024
MAX_METADATA_BYTES = 40 * 1024
MAX_TOP_K = 100
DEFAULT_LIST_RESULTS = 500

# --------------------------------------------------------------------------- the server


class S3VectorsFake(FakeServer):
    """The S3 Vectors endpoint (``url``) in front of the moto server at ``moto_url``."""

    def __init__(self, moto_url: str) -> None:
        super().__init__()
        self.moto_host = urlsplit(moto_url).netloc
        self._faults: dict[str, deque[ServiceError]] = {}
        self._indexes: dict[tuple[str, str], dict[str, Any]] = {}
        self._buckets: dict[str, dict[str, Any]] = {}
        self._handlers: dict[str, Callable[[dict[str, Any], dict[str, str]], Any]] = {
            "CreateVectorBucket": self._create_bucket,
            "GetVectorBucket": self._get_bucket,
            "PutVectorBucketDefaultIndexMode": self._put_default_mode,
            "CreateIndex": self._create_index,
            "DeleteIndex": self._delete_index,
            "GetIndex": self._get_index,
            "UpdateIndexMode": self._update_mode,
            "UpdateMetadataConfiguration": self._update_metadata_configuration,
            "PutVectors": self._put_vectors,
            "GetVectors": self._get_vectors,
            "ListVectors": self._list_vectors,
            "QueryVectors": self._query_vectors,
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(
        self,
        operation: str,
        count: int = 1,
        code: str = "TooManyRequestsException",
        status: int = 429,
        message: str = "Slow down (injected by the test)",
    ) -> None:
        """The next ``count`` requests of ``operation`` fail with ``code``/``status`` (also e.g.
        ``ServiceUnavailableException``/503), before any validation. Each botocore retry is one request:
        build the client under test with its real retry config (mode standard; note that botocore's
        ``retries={"max_attempts": n}`` means n retries, n + 1 requests, while ``total_max_attempts`` and
        ``AWS_MAX_ATTEMPTS`` count requests) and count them with :meth:`calls`."""
        with self._lock:
            self._faults.setdefault(operation, deque()).extend(
                ServiceError(code, message, status) for _ in range(count)
            )

    def set_text_search_status(
        self, bucket: str, index: str, status: str, metadata_key: str | None = None
    ) -> None:
        """Report the index's text search configurations (or the one on ``metadata_key``) as ``status``:
        ``BUILDING`` as while the service builds one (full-text queries on it are refused), ``ACTIVE``."""
        with self._lock:
            config = self._indexes[(bucket, index)].get("metadataConfiguration") or {}
            for search in config.get("textSearchConfigurations") or []:
                if metadata_key in (None, search["metadataKey"]):
                    search["status"] = status

    def calls(self, operation: str = "") -> list[Any]:
        """The request bodies (parsed JSON) of ``operation`` (all operations when empty), in arrival order,
        failed and retried requests included."""
        with self._lock:
            return [r.body for r in self.requests if not operation or _operation_of(r) == operation]

    def clear_calls(self) -> None:
        with self._lock:
            self.requests.clear()

    # -------------------------------------------------------------- dispatch

    def handle(self, request: BaseHTTPRequestHandler, recorded: Recorded) -> None:
        operation = _operation_of(recorded)
        headers = {
            k: v for k, v in recorded.headers.items() if k not in ("host", "content-length", "connection")
        }
        try:
            with self._lock:
                queue = self._faults.get(operation or "")
                fault = queue.popleft() if queue else None
            if fault is not None:
                raise fault
            body = self._checked_body(operation, recorded)
            handler = self._handlers.get(operation or "")
            if handler is None:
                status, out_headers, raw = self._forward(recorded.method, recorded.path, headers, body)
                send_bytes(request, status, raw, headers=out_headers)
            else:
                send_json(
                    request, 200, handler(body, headers), headers={"x-amzn-RequestId": uuid.uuid4().hex}
                )
        except ServiceError as error:
            send_json(
                request,
                error.status,
                {"message": error.message},
                headers={"x-amzn-ErrorType": error.code, "x-amzn-RequestId": uuid.uuid4().hex},
            )

    def _checked_body(self, operation: str | None, recorded: Recorded) -> dict[str, Any]:
        if operation is None:
            raise ServiceError("UnknownOperationException", f"no operation at {recorded.path}", 404)
        if int(recorded.headers.get("content-length") or 0) > MAX_PAYLOAD_BYTES:
            raise invalid(f"Request payload is over the {MAX_PAYLOAD_BYTES} bytes limit")
        body = recorded.body if recorded.body is not None else {}
        if not isinstance(body, dict):
            raise ServiceError("SerializationException", "The request body is not a JSON object")
        problem = validation_problem(MODEL.operation_model(operation).input_shape, body)
        if problem:
            raise invalid(f"1 validation error detected. {problem}")
        return body

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self.moto_host, timeout=60)
        try:
            payload = json.dumps(body).encode() if body is not None and method != "GET" else None
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower().startswith("x-amz")}
            return response.status, kept, raw
        finally:
            connection.close()

    def _moto(self, operation: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """Call moto; its errors become this server's errors."""
        status, out_headers, raw = self._forward("POST", f"/{operation}", headers, body)
        payload = json.loads(raw) if raw.strip() else {}
        if status >= 300:
            code = next(
                (v for k, v in out_headers.items() if k.lower() == "x-amzn-errortype"),
                "InternalServerException",
            )
            raise ServiceError(code.split(":")[0], str(payload.get("message") or payload), status)
        return dict(payload)

    # -------------------------------------------------------------- buckets and indexes

    def _create_bucket(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        result = self._moto("CreateVectorBucket", body, headers)
        with self._lock:
            self._buckets[body["vectorBucketName"]] = {
                "creationTime": time.time(),
                "defaultIndexMode": DEFAULT_INDEX_MODE,
            }
        return result

    def _bucket_side(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self._buckets.setdefault(
                name, {"creationTime": time.time(), "defaultIndexMode": DEFAULT_INDEX_MODE}
            )

    def _get_bucket(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        result = self._moto("GetVectorBucket", body, headers)
        result["vectorBucket"].update(self._bucket_side(result["vectorBucket"]["vectorBucketName"]))
        return result

    def _put_default_mode(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        lookup: dict[str, Any] = {k: body[k] for k in ("vectorBucketName", "vectorBucketArn") if k in body}
        bucket = self._moto("GetVectorBucket", lookup, headers)["vectorBucket"]["vectorBucketName"]
        side = self._bucket_side(bucket)
        with self._lock:
            side["defaultIndexMode"] = body["defaultIndexMode"]
        return {}

    def _index_key(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[str, str]:
        if arn := body.get("indexArn"):
            match = re.search(r":bucket/([^/]+)/index/([^/]+)$", arn)
            if not match:
                raise invalid("Invalid indexArn")
            return match.group(1), match.group(2)
        if body.get("vectorBucketArn"):
            bucket = self._moto("GetVectorBucket", {"vectorBucketArn": body["vectorBucketArn"]}, headers)
            return bucket["vectorBucket"]["vectorBucketName"], str(body.get("indexName"))
        return str(body.get("vectorBucketName")), str(body.get("indexName"))

    def _index_lookup(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("indexArn"):
            return {"indexArn": body["indexArn"]}
        return {"vectorBucketName": body.get("vectorBucketName"), "indexName": body.get("indexName")}

    def _index_info(self, body: dict[str, Any], headers: dict[str, str]) -> IndexInfo:
        moto = self._moto("GetIndex", self._index_lookup(body), headers)["index"]
        with self._lock:
            side = dict(self._indexes.get(self._index_key(body, headers), {}))
        return IndexInfo(
            dimension=int(moto["dimension"]),
            metric=str(moto["distanceMetric"]),
            mode=str(side.get("indexMode", DEFAULT_INDEX_MODE)),
            config=side.get("metadataConfiguration") or {},
        )

    def _create_index(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        key = self._index_key(body, headers)
        try:
            self._moto("GetIndex", {"vectorBucketName": key[0], "indexName": key[1]}, headers)
        except ServiceError as error:
            if error.code != "NotFoundException":
                raise
        else:
            raise ServiceError("ConflictException", "An index with the specified name already exists", 409)
        config = json.loads(json.dumps(body.get("metadataConfiguration") or {}))
        for search in config.get("textSearchConfigurations") or []:
            search["status"] = "ACTIVE"
        result = self._moto("CreateIndex", body, headers)
        mode = self._bucket_side(key[0])["defaultIndexMode"]
        with self._lock:
            self._indexes[key] = {
                "metadataConfiguration": config,
                "indexMode": mode,
                "creationTime": time.time(),
            }
        return result

    def _delete_index(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        key = self._index_key(body, headers)
        result = self._moto("DeleteIndex", body, headers)
        with self._lock:
            self._indexes.pop(key, None)
        return result

    def _side(self, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """The side-table entry of an existing index (NotFoundException from moto otherwise)."""
        self._moto("GetIndex", self._index_lookup(body), headers)
        key = self._index_key(body, headers)
        with self._lock:
            return self._indexes.setdefault(
                key, {"indexMode": DEFAULT_INDEX_MODE, "creationTime": time.time()}
            )

    def _get_index(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        side = self._side(body, headers)
        result = self._moto("GetIndex", body, headers)
        with self._lock:
            result["index"].update(json.loads(json.dumps({k: v for k, v in side.items() if v})))
        return result

    def _update_mode(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        side = self._side(body, headers)
        with self._lock:
            side["indexMode"] = body["indexMode"]
        return {}

    def _update_metadata_configuration(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        side = self._side(body, headers)
        with self._lock:
            config = side.setdefault("metadataConfiguration", {})
            searches = {c["metadataKey"]: c for c in config.get("textSearchConfigurations") or []}
            for item in (body.get("delete") or {}).get("textSearchConfigurations") or []:
                if searches.pop(item["metadataKey"], None) is None:
                    raise invalid(f"No text search configuration on {item['metadataKey']!r}")
            for item in (body.get("add") or {}).get("textSearchConfigurations") or []:
                new = {**item, "status": "ACTIVE"}
                if item["metadataKey"] in searches and searches[item["metadataKey"]] != new:
                    raise ServiceError(
                        "ConflictException", f"{item['metadataKey']!r} is already configured", 409
                    )
                searches[item["metadataKey"]] = new
            config["textSearchConfigurations"] = list(searches.values())
        return {"indexArn": self._moto("GetIndex", self._index_lookup(body), headers)["index"]["indexArn"]}

    # -------------------------------------------------------------- vectors

    def _put_vectors(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        info = self._index_info(body, headers)
        for record in body["vectors"]:
            what = f"record for key {record['key']!r}"
            vector_values(record["data"], info.dimension, info.metric, what)
            metadata = record.get("metadata") or {}
            if not isinstance(metadata, dict):
                raise invalid(f"Invalid {what}: metadata must be an object")
            filterable = {k: v for k, v in metadata.items() if k not in info.non_filterable}
            if (size := json_size(filterable)) > MAX_FILTERABLE_BYTES:
                raise invalid(
                    f"Invalid {what}: filterable metadata is {size} bytes, over {MAX_FILTERABLE_BYTES}"
                )
            if (size := json_size(metadata)) > MAX_METADATA_BYTES:
                raise invalid(f"Invalid {what}: metadata is {size} bytes, over {MAX_METADATA_BYTES}")
        return self._moto("PutVectors", body, headers)

    def _get_vectors(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        found = {v["key"]: v for v in self._moto("GetVectors", body, headers)["vectors"]}
        return {"vectors": [found[k] for k in dict.fromkeys(body["keys"]) if k in found]}

    def _list_vectors(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        count, segment = body.get("segmentCount"), body.get("segmentIndex")
        if (count is None) != (segment is None) or (count is not None and segment >= count):
            raise invalid("segmentCount and segmentIndex go together, with segmentIndex < segmentCount")
        paging = ("maxResults", "nextToken", "segmentCount", "segmentIndex")
        listed = self._moto("ListVectors", {k: v for k, v in body.items() if k not in paging}, headers)
        vectors = sorted(listed["vectors"], key=lambda v: v["key"])
        if count is not None:
            vectors = [v for v in vectors if _crc(v["key"]) % count == segment]
        if token := body.get("nextToken"):
            try:
                after = base64.urlsafe_b64decode(token.encode()).decode()
            except ValueError as exc:
                raise invalid("Invalid nextToken") from exc
            vectors = [v for v in vectors if v["key"] > after]
        page = vectors[: body.get("maxResults", DEFAULT_LIST_RESULTS)]
        result: dict[str, Any] = {"vectors": page}
        if len(page) < len(vectors):
            result["nextToken"] = base64.urlsafe_b64encode(page[-1]["key"].encode()).decode()
        return result

    # -------------------------------------------------------------- QueryVectors

    def _query_vectors(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        if int(body["topK"]) > MAX_TOP_K:
            raise invalid(
                "1 validation error detected. Value at '/topK' failed to satisfy constraint: "
                f"Member must have value less than or equal to {MAX_TOP_K}"
            )
        if body.get("queryVector") is None and not body.get("queryTexts"):
            raise invalid("Specify queryVector, queryTexts or both")
        if body.get("nextToken"):
            raise invalid("Invalid nextToken")
        info = self._index_info(body, headers)
        listing = {**self._index_lookup(body), "returnData": True, "returnMetadata": True}
        vectors = {v["key"]: v for v in self._moto("ListVectors", listing, headers)["vectors"]}
        legs = search_legs(body, info, vectors)
        return {"vectors": rank(body, legs, vectors), "distanceMetric": info.metric}


def _crc(key: str) -> int:
    return zlib.crc32(key.encode())


def _operation_of(recorded: Recorded) -> str | None:
    first = recorded.path.split("?")[0].split("/")[1] if recorded.path.startswith("/") else ""
    if first == "tags":
        return _TAG_OPERATIONS.get(recorded.method)
    return _OPERATIONS.get(first)
