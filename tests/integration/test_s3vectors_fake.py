"""The local S3 Vectors endpoint (:class:`tests.fakes.s3vectors_server.S3VectorsFake` in front of moto)
behaves as the store suite relies on: request validation from the botocore model, the service's limits,
the index configuration moto drops, metadata filters, vector / full-text / hybrid ranking, and fault
injection. Driven through boto3's ``s3vectors`` client over real HTTP."""

from __future__ import annotations

import http.client
import json
import math
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.aws import REGION, moto_server, set_aws_env
from tests.fakes.s3vectors_server import S3VectorsFake

BUCKET = "fake-vectors"
INDEX = "docs"
CONFIG = {
    "nonFilterableMetadataKeys": ["text", "chunk"],
    "textSearchConfigurations": [{"metadataKey": "text", "language": "en"}],
}


def doc(collection: str, year: int, text: str, **more: Any) -> dict[str, Any]:
    return {"collection": collection, "year": year, "text": text, **more}


DOCS: dict[str, tuple[list[float], dict[str, Any]]] = {
    "a": ([1, 0, 0], doc("support", 2020, "How to reset your password in settings",
                         tags=["billing", "urgent"], draft=False)),
    "b": ([0.9, 0.1, 0], doc("support", 2022, "Invoices and refunds are emailed monthly", tags=["billing"])),
    "c": ([0, 1, 0], doc("sales", 2024, "Password policies for new accounts: passwords expire",
                         tags=["onboarding"], draft=True)),
    "d": ([0, 0, 1], doc("sales", 2019, "Pricing tables and discounts")),
    "e": ([0.7, 0.7, 0], doc("support", 2023, "Reset a forgotten password quickly", tags=["urgent"])),
}  # fmt: skip


def make_client(fake: S3VectorsFake, attempts: int = 1, **config: Any) -> Any:
    """``attempts`` requests at most per call (botocore's ``max_attempts`` counts retries only)."""
    retries = {"mode": "standard", "total_max_attempts": attempts}
    return boto3.client(
        "s3vectors", endpoint_url=fake.url, region_name=REGION, config=Config(retries=retries, **config)
    )


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3VectorsFake]:
    with pytest.MonkeyPatch.context() as mp, moto_server() as url:
        set_aws_env(mp, tmp_path_factory.mktemp("aws"), url)
        with S3VectorsFake(url) as server:
            yield server


@pytest.fixture(scope="module")
def s3v(fake: S3VectorsFake) -> Any:
    client = make_client(fake)
    client.create_vector_bucket(vectorBucketName=BUCKET)
    create_index(client, INDEX)
    vectors = [{"key": k, "data": {"float32": v}, "metadata": m} for k, (v, m) in DOCS.items()]
    client.put_vectors(vectorBucketName=BUCKET, indexName=INDEX, vectors=vectors)
    return client


def create_index(client: Any, name: str, *, dimension: int = 3, metric: str = "cosine") -> None:
    client.create_index(
        vectorBucketName=BUCKET,
        indexName=name,
        dataType="float32",
        dimension=dimension,
        distanceMetric=metric,
        metadataConfiguration=CONFIG,
    )


def query(client: Any, index: str = INDEX, **kw: Any) -> list[dict[str, Any]]:
    return list(client.query_vectors(vectorBucketName=BUCKET, indexName=index, **kw)["vectors"])


def keys(results: list[dict[str, Any]]) -> list[str]:
    return [r["key"] for r in results]


def error_of(call: Any, *args: Any, **kw: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call(*args, **kw)
    response = caught.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def raw_post(fake: S3VectorsFake, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    try:
        connection.request("POST", f"/{operation}", json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())
    finally:
        connection.close()


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"collection": "sales"}, {"c", "d"}),
        ({"collection": {"$eq": "sales"}}, {"c", "d"}),
        ({"collection": {"$ne": "sales"}}, {"a", "b", "e"}),
        ({"tags": "billing"}, {"a", "b"}),
        ({"tags": {"$eq": "urgent"}}, {"a", "e"}),
        ({"tags": {"$in": ["onboarding", "urgent"]}}, {"a", "c", "e"}),
        ({"collection": {"$nin": ["sales", "marketing"]}}, {"a", "b", "e"}),
        ({"year": {"$gt": 2020}}, {"b", "c", "e"}),
        ({"year": {"$gte": 2020}}, {"a", "b", "c", "e"}),
        ({"year": {"$lt": 2020}}, {"d"}),
        ({"year": {"$lte": 2020}}, {"a", "d"}),
        ({"year": {"$gte": 2020, "$lte": 2022}}, {"a", "b"}),
        ({"draft": {"$exists": True}}, {"a", "c"}),
        ({"tags": {"$exists": False}}, {"d"}),
        ({"draft": False}, {"a"}),
        ({"$and": [{"collection": "support"}, {"tags": "urgent"}]}, {"a", "e"}),
        ({"$or": [{"collection": "sales"}, {"year": {"$gte": 2023}}]}, {"c", "d", "e"}),
        (
            {"$or": [{"$and": [{"collection": "support"}, {"year": {"$lt": 2021}}]}, {"tags": "onboarding"}]},
            {"a", "c"},
        ),
        ({"folders": "nowhere/"}, set()),
    ],
)
def test_filter_semantics(s3v: Any, document: dict[str, Any], expected: set[str]) -> None:
    found = query(s3v, topK=10, queryVector={"float32": [1, 1, 1]}, filter=document)
    assert set(keys(found)) == expected


@pytest.mark.parametrize(
    "document",
    [
        {"text": "password"},  # non-filterable
        {"year": {"$gt": "2020"}},  # a range needs a number
        {"tags": {"$regex": "bill"}},  # no such operator
        {"$and": []},  # an empty conjunction
        {"tags": {"$in": []}},
        {"tags": ["billing"]},  # a bare list is not a value
    ],
)
def test_bad_filters_are_validation_errors(s3v: Any, document: dict[str, Any]) -> None:
    code, status, _ = error_of(
        s3v.query_vectors,
        vectorBucketName=BUCKET,
        indexName=INDEX,
        topK=3,
        queryVector={"float32": [1, 0, 0]},
        filter=document,
    )
    assert (code, status) == ("ValidationException", 400)


def test_enhanced_prefilters_and_classic_filters_after_the_search(fake: S3VectorsFake, s3v: Any) -> None:
    create_index(s3v, "classic")
    vectors = [{"key": k, "data": {"float32": v}, "metadata": m} for k, (v, m) in DOCS.items()]
    s3v.put_vectors(vectorBucketName=BUCKET, indexName="classic", vectors=vectors)
    s3v.update_index_mode(vectorBucketName=BUCKET, indexName="classic", indexMode="CLASSIC")
    near_support = {"topK": 2, "queryVector": {"float32": [1, 0, 0]}, "filter": {"collection": "sales"}}
    assert keys(query(s3v, **near_support)) == ["c", "d"]  # ENHANCED: the two nearest sales vectors
    assert keys(query(s3v, "classic", **near_support)) == []  # CLASSIC: the two nearest are support
    code, _, message = error_of(
        s3v.query_vectors,
        vectorBucketName=BUCKET,
        indexName="classic",
        topK=2,
        queryTexts=[{"text": "password", "metadataKey": "text"}],
    )
    assert code == "ValidationException" and "ENHANCED" in message


# --------------------------------------------------------------------------- vector search


def test_cosine_top_k_order_and_distances(s3v: Any) -> None:
    found = query(s3v, topK=3, queryVector={"float32": [1, 0, 0]}, returnDistance=True)
    assert keys(found) == ["a", "b", "e"]
    expected = [0.0, 1 - 0.9 / math.sqrt(0.82), 1 - 0.7 / math.sqrt(0.98)]
    assert [r["distance"] for r in found] == pytest.approx(expected, abs=1e-6)
    bare = query(s3v, topK=3, queryVector={"float32": [1, 0, 0]})
    assert all(set(r) == {"key"} for r in bare)  # no distance, metadata or scores unless asked


def test_euclidean_distance_and_metric_in_response(s3v: Any) -> None:
    create_index(s3v, "flat", dimension=2, metric="euclidean")
    s3v.put_vectors(
        vectorBucketName=BUCKET,
        indexName="flat",
        vectors=[{"key": "p", "data": {"float32": [3, 4]}}, {"key": "q", "data": {"float32": [1, 1]}}],
    )
    response = s3v.query_vectors(
        vectorBucketName=BUCKET,
        indexName="flat",
        topK=2,
        queryVector={"float32": [0, 0]},
        returnDistance=True,
    )
    assert response["distanceMetric"] == "euclidean"
    assert [(r["key"], r["distance"]) for r in response["vectors"]] == [
        ("q", pytest.approx(math.sqrt(2))),
        ("p", pytest.approx(5.0)),
    ]


def test_metadata_returned_only_when_asked(s3v: Any) -> None:
    found = query(s3v, topK=1, queryVector={"float32": [0, 0, 1]}, returnMetadata=True)
    assert found == [{"key": "d", "metadata": DOCS["d"][1]}]  # non-filterable keys included


def test_query_limits(s3v: Any) -> None:
    common = {"vectorBucketName": BUCKET, "indexName": INDEX}
    assert error_of(s3v.query_vectors, **common, topK=101, queryVector={"float32": [1, 0, 0]})[:2] == (
        "ValidationException",
        400,
    )
    assert (
        error_of(s3v.query_vectors, **common, topK=1, queryVector={"float32": [1, 0]})[0]
        == "ValidationException"
    )
    assert (
        error_of(s3v.query_vectors, **common, topK=1)[0] == "ValidationException"
    )  # neither vector nor text
    missing = error_of(
        s3v.query_vectors,
        vectorBucketName=BUCKET,
        indexName="nope",
        topK=1,
        queryVector={"float32": [1, 0, 0]},
    )
    assert missing[:2] == ("NotFoundException", 404)


# --------------------------------------------------------------------------- full-text and hybrid


def test_full_text_ranks_by_bm25(s3v: Any) -> None:
    found = query(
        s3v,
        topK=10,
        queryTexts=[{"text": "reset password", "metadataKey": "text"}],
        returnScores=True,
        returnDistance=True,
    )
    # e and a hold both terms (e is shorter), c only "passwords"; b and d none
    assert keys(found) == ["e", "a", "c"]
    scores = [r["scores"]["bm25Scores"] for r in found]
    assert all(s[0]["metadataKey"] == "text" for s in scores)
    values = [s[0]["score"] for s in scores]
    assert values == sorted(values, reverse=True) and values[-1] > 0
    assert all("distance" not in r and "fused" not in r["scores"] for r in found)


def test_full_text_stems_and_drops_stop_words(s3v: Any) -> None:
    assert set(
        keys(query(s3v, topK=10, queryTexts=[{"text": "Resetting PASSWORDS", "metadataKey": "text"}]))
    ) == {"a", "c", "e"}
    assert query(s3v, topK=10, queryTexts=[{"text": "the and of", "metadataKey": "text"}]) == []
    assert query(s3v, topK=10, queryTexts=[{"text": "kubernetes", "metadataKey": "text"}]) == []


def test_full_text_needs_a_configured_key(s3v: Any) -> None:
    for texts in (
        [{"text": "password", "metadataKey": "chunk"}],  # not full-text searchable
        [
            {"text": "password", "metadataKey": "text"},
            {"text": "reset", "metadataKey": "text"},
        ],  # same key twice
    ):
        code, status, _ = error_of(
            s3v.query_vectors, vectorBucketName=BUCKET, indexName=INDEX, topK=3, queryTexts=texts
        )
        assert (code, status) == ("ValidationException", 400)


def test_text_search_being_built_is_reported_and_refused(fake: S3VectorsFake, s3v: Any) -> None:
    create_index(s3v, "building")
    fake.set_text_search_status(BUCKET, "building", "BUILDING")
    index = s3v.get_index(vectorBucketName=BUCKET, indexName="building")["index"]
    assert index["metadataConfiguration"]["textSearchConfigurations"][0]["status"] == "BUILDING"
    texts = [{"text": "password", "metadataKey": "text"}]
    code, _, message = error_of(
        s3v.query_vectors, vectorBucketName=BUCKET, indexName="building", topK=1, queryTexts=texts
    )
    assert code == "ValidationException" and "BUILDING" in message
    fake.set_text_search_status(BUCKET, "building", "ACTIVE")
    assert query(s3v, "building", topK=1, queryTexts=texts) == []  # allowed again; the index is empty


def test_hybrid_fuses_by_reciprocal_rank(s3v: Any) -> None:
    found = query(
        s3v,
        topK=5,
        queryVector={"float32": [1, 0, 0]},
        returnScores=True,
        returnDistance=True,
        queryTexts=[{"text": "reset password", "metadataKey": "text"}],
    )
    # vector leg a, b, e, c, d (c and d tie at distance 1); text leg e, a, c
    assert keys(found) == ["a", "e", "c", "b", "d"]
    by_key = {r["key"]: r for r in found}
    assert by_key["a"]["scores"]["fused"] == pytest.approx(1 / 61 + 1 / 62)
    assert by_key["e"]["scores"]["fused"] == pytest.approx(1 / 63 + 1 / 61)
    assert by_key["b"]["scores"]["fused"] == pytest.approx(1 / 62)
    assert by_key["a"]["scores"]["vectorDistance"] == pytest.approx(0.0, abs=1e-6) == by_key["a"]["distance"]
    assert "bm25Scores" not in by_key["b"]["scores"] and by_key["c"]["scores"]["bm25Scores"][0]["score"] > 0


def test_hybrid_honours_the_filter(s3v: Any) -> None:
    found = query(
        s3v,
        topK=5,
        queryVector={"float32": [1, 0, 0]},
        filter={"collection": "sales"},
        queryTexts=[{"text": "reset password", "metadataKey": "text"}],
    )
    assert keys(found) == ["c", "d"]


# --------------------------------------------------------------------------- request validation


@pytest.mark.parametrize(
    ("operation", "body", "mentions"),
    [
        ("QueryVectors", {"vectorBucketName": BUCKET, "indexName": INDEX, "topK": 1, "bogus": 1}, "bogus"),
        (
            "PutVectors",
            {
                "vectorBucketName": BUCKET,
                "indexName": INDEX,
                "vectors": [{"key": "z", "data": {"float32": [1, 0, 0]}, "extra": True}],
            },
            "extra",
        ),
        ("QueryVectors", {"vectorBucketName": BUCKET, "indexName": INDEX}, "topK"),
        (
            "GetVectors",
            {"vectorBucketName": BUCKET, "indexName": INDEX, "keys": [str(i) for i in range(101)]},
            "keys",
        ),
        (
            "PutVectors",
            {"vectorBucketName": BUCKET, "indexName": INDEX, "vectors": [{"key": "z", "data": {}}]},
            "data",
        ),
    ],
)
def test_requests_are_validated_against_the_model(
    fake: S3VectorsFake, operation: str, body: dict[str, Any], mentions: str
) -> None:
    status, headers, payload = raw_post(fake, operation, body)
    assert status == 400
    assert headers["x-amzn-errortype"] == "ValidationException"
    assert mentions in payload["message"]


def test_model_violation_is_a_client_error_for_boto3(fake: S3VectorsFake) -> None:
    unchecked = make_client(fake, parameter_validation=False)
    code, status, message = error_of(
        unchecked.create_index,
        vectorBucketName=BUCKET,
        indexName="dots",
        dataType="float32",
        dimension=3,
        distanceMetric="dotproduct",
    )
    assert (code, status) == ("ValidationException", 400) and "distanceMetric" in message


# --------------------------------------------------------------------------- limits and moto fixes


def test_put_vectors_limits(s3v: Any) -> None:
    common = {"vectorBucketName": BUCKET, "indexName": INDEX}
    many = [{"key": f"n{i}", "data": {"float32": [1, 0, 0]}} for i in range(501)]
    assert error_of(s3v.put_vectors, **common, vectors=many)[:2] == ("ValidationException", 400)
    tags = [f"tag-{i:04d}-" + "x" * 90 for i in range(20)]  # ~2.1 KB of filterable metadata
    big_filterable = [{"key": "big", "data": {"float32": [1, 0, 0]}, "metadata": {"tags": tags}}]
    assert error_of(s3v.put_vectors, **common, vectors=big_filterable)[0] == "ValidationException"
    too_big = [{"key": "big", "data": {"float32": [1, 0, 0]}, "metadata": {"text": "x" * 41_000}}]
    assert error_of(s3v.put_vectors, **common, vectors=too_big)[0] == "ValidationException"
    wrong_dimension = [{"key": "big", "data": {"float32": [1, 0]}}]
    assert error_of(s3v.put_vectors, **common, vectors=wrong_dimension)[0] == "ValidationException"
    zero = [{"key": "big", "data": {"float32": [0, 0, 0]}}]  # no cosine distance
    assert error_of(s3v.put_vectors, **common, vectors=zero)[0] == "ValidationException"
    assert s3v.get_vectors(**common, keys=["n0", "big"])["vectors"] == []  # nothing written
    # a large non-filterable text is fine
    large_text = [{"key": "big", "data": {"float32": [0, 0, 1]}, "metadata": {"text": "y" * 30_000}}]
    s3v.put_vectors(**common, vectors=large_text)
    s3v.delete_vectors(**common, keys=["big"])


def test_get_index_reports_configuration_and_mode(s3v: Any) -> None:
    index = s3v.get_index(vectorBucketName=BUCKET, indexName=INDEX)["index"]
    assert index["indexMode"] == "ENHANCED" and index["dimension"] == 3 and "creationTime" in index
    assert index["metadataConfiguration"] == {
        "nonFilterableMetadataKeys": ["text", "chunk"],
        "textSearchConfigurations": [{"metadataKey": "text", "language": "en", "status": "ACTIVE"}],
    }
    create_index(s3v, "modes")
    common = {"vectorBucketName": BUCKET, "indexName": "modes"}
    s3v.update_index_mode(**common, indexMode="CLASSIC")
    s3v.update_metadata_configuration(**common, add={"textSearchConfigurations": [{"metadataKey": "title"}]})
    s3v.update_metadata_configuration(
        **common, delete={"textSearchConfigurations": [{"metadataKey": "text"}]}
    )
    classic = s3v.get_index(**common)["index"]
    assert classic["indexMode"] == "CLASSIC"
    assert classic["metadataConfiguration"]["textSearchConfigurations"] == [
        {"metadataKey": "title", "status": "ACTIVE"}
    ]


def test_bucket_default_index_mode_applies_to_new_indexes(s3v: Any) -> None:
    s3v.create_vector_bucket(vectorBucketName="old-style")
    assert (
        s3v.get_vector_bucket(vectorBucketName="old-style")["vectorBucket"]["defaultIndexMode"] == "ENHANCED"
    )
    s3v.put_vector_bucket_default_index_mode(vectorBucketName="old-style", defaultIndexMode="CLASSIC")
    s3v.create_index(
        vectorBucketName="old-style",
        indexName="later",
        dataType="float32",
        dimension=2,
        distanceMetric="cosine",
    )
    assert s3v.get_index(vectorBucketName="old-style", indexName="later")["index"]["indexMode"] == "CLASSIC"


def test_creating_an_existing_index_is_a_conflict_and_keeps_its_vectors(s3v: Any) -> None:
    code, status, _ = error_of(create_index, s3v, INDEX, dimension=8)
    assert (code, status) == ("ConflictException", 409)
    index = s3v.get_index(vectorBucketName=BUCKET, indexName=INDEX)["index"]
    assert index["dimension"] == 3
    assert len(s3v.get_vectors(vectorBucketName=BUCKET, indexName=INDEX, keys=list(DOCS))["vectors"]) == 5


def test_list_vectors_paginates_with_metadata(s3v: Any) -> None:
    seen: list[dict[str, Any]] = []
    token: str | None = None
    pages = 0
    while True:
        extra = {"nextToken": token} if token else {}
        page = s3v.list_vectors(
            vectorBucketName=BUCKET, indexName=INDEX, maxResults=2, returnMetadata=True, **extra
        )
        seen.extend(page["vectors"])
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 3 and sorted(v["key"] for v in seen) == sorted(DOCS)
    assert all(v["metadata"] == DOCS[v["key"]][1] and "data" not in v for v in seen)
    segments = [
        {
            v["key"]
            for v in s3v.list_vectors(
                vectorBucketName=BUCKET, indexName=INDEX, segmentCount=2, segmentIndex=i
            )["vectors"]
        }
        for i in range(2)
    ]
    assert segments[0].isdisjoint(segments[1]) and segments[0] | segments[1] == set(DOCS)


def test_get_vectors_in_asked_order_missing_left_out_and_put_replaces(s3v: Any) -> None:
    create_index(s3v, "order", dimension=2)
    common = {"vectorBucketName": BUCKET, "indexName": "order"}
    s3v.put_vectors(**common, vectors=[{"key": k, "data": {"float32": [3, 4]}} for k in ("p", "q")])
    s3v.put_vectors(**common, vectors=[{"key": "p", "data": {"float32": [6, 8]}, "metadata": {"v": 2}}])
    got = s3v.get_vectors(**common, keys=["q", "missing", "p"], returnData=True, returnMetadata=True)[
        "vectors"
    ]
    assert [v["key"] for v in got] == ["q", "p"]
    assert got[1]["data"]["float32"] == [6.0, 8.0] and got[1]["metadata"] == {"v": 2}


# --------------------------------------------------------------------------- fault injection


def test_throttling_is_retried_by_botocore_and_counted(fake: S3VectorsFake, s3v: Any) -> None:
    fake.fail_next("GetIndex", 2)
    before = len(fake.calls("GetIndex"))
    retrying = make_client(fake, attempts=3)
    assert retrying.get_index(vectorBucketName=BUCKET, indexName=INDEX)["index"]["indexName"] == INDEX
    bodies = fake.calls("GetIndex")[before:]
    assert len(bodies) == 3 and all(b == {"vectorBucketName": BUCKET, "indexName": INDEX} for b in bodies)


def test_throttling_past_the_attempts_reaches_the_caller(fake: S3VectorsFake, s3v: Any) -> None:
    fake.fail_next("PutVectors", 2)
    before = len(fake.calls("PutVectors"))
    vectors = [{"key": "t", "data": {"float32": [1, 1, 1]}}]
    code, status, _ = error_of(
        make_client(fake, attempts=2).put_vectors, vectorBucketName=BUCKET, indexName=INDEX, vectors=vectors
    )
    assert (code, status) == ("TooManyRequestsException", 429)
    assert len(fake.calls("PutVectors")) - before == 2
    s3v.put_vectors(vectorBucketName=BUCKET, indexName=INDEX, vectors=vectors)  # the faults are used up
    s3v.delete_vectors(vectorBucketName=BUCKET, indexName=INDEX, keys=["t"])


def test_service_unavailable(fake: S3VectorsFake, s3v: Any) -> None:
    fake.fail_next("QueryVectors", 1, code="ServiceUnavailableException", status=503)
    code, status, _ = error_of(
        s3v.query_vectors,
        vectorBucketName=BUCKET,
        indexName=INDEX,
        topK=1,
        queryVector={"float32": [1, 0, 0]},
    )
    assert (code, status) == ("ServiceUnavailableException", 503)
    assert keys(query(s3v, topK=1, queryVector={"float32": [1, 0, 0]})) == ["a"]
