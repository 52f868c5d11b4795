"""The Lambda handlers end to end with the S3 Vectors store, as the ``store=s3vectors`` stacks deploy
them: S3 -> SQS -> ingest Lambda -> S3 Vectors index -> query and health Lambdas behind API Gateway events.

moto plays S3 and SQS; the local S3 Vectors fake (in front of moto's s3vectors) plays the vector bucket.
The index is created beforehand with the stack's definition and mode, as the stateful stack does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from shared.models import AskResponse, SearchResponse
from shared.stores import s3vectors_requests as rq
from tests.aws import moto_server
from tests.integration.test_lambda_e2e import INVOICES_TXT, KEYS_MD, Aws, api_event, load_handler, make_aws


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    from tests.fakes.s3vectors_server import S3VectorsFake

    with moto_server() as moto_url, S3VectorsFake(moto_url) as fake:
        yield moto_url, fake.url


@pytest.fixture
def aws(servers: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Aws:
    moto_url, vectors_url = servers
    env = make_aws(moto_url, monkeypatch, tmp_path)
    bucket, index = f"vectors-{uuid.uuid4().hex[:10]}", "chunks"
    client = boto3.client("s3vectors", endpoint_url=vectors_url, region_name="us-east-1")
    client.create_vector_bucket(vectorBucketName=bucket)
    client.create_index(vectorBucketName=bucket, indexName=index, **rq.index_definition(dimension=256))
    for name, value in {
        "AWS_ENDPOINT_URL_S3VECTORS": vectors_url,  # honoured by boto3 itself: the handlers have no test hook
        "RAG_EXPLORER_STORE": "s3vectors",
        "RAG_EXPLORER_S3VECTORS_BUCKET": bucket,
        "RAG_EXPLORER_S3VECTORS_INDEX": index,
    }.items():
        monkeypatch.setenv(name, value)
    return env


def test_upload_ingest_query_delete_on_s3_vectors(aws: Aws, lambda_context: Any) -> None:
    aws.put("account/api keys.md", KEYS_MD)
    aws.put("billing/invoices.txt", INVOICES_TXT)
    ingest = load_handler("ingest")
    assert aws.deliver(ingest, aws.receive(2), lambda_context) == {"batchItemFailures": []}
    keys_source = f"s3://{aws.bucket}/account/api keys.md"
    store = ingest.service.store
    assert type(store).__name__ == "S3VectorsStore"
    assert set(store.source_hashes()) == {keys_source, f"s3://{aws.bucket}/billing/invoices.txt"}

    query = load_handler("query")  # a fresh instance reads the index the ingest Lambda wrote
    result = query.lambda_handler(
        api_event("query_event.json", {"question": "How do I rotate my API key?"}), lambda_context
    )
    assert result["statusCode"] == 200, result["body"]
    answer = AskResponse.model_validate_json(result["body"])
    assert answer.decision == "answer"
    assert answer.citations and answer.citations[0].source == keys_source
    assert "[1]" in (answer.answer or "")
    result = query.lambda_handler(
        api_event("search_event.json", {"query": "invoices", "k": 1}), lambda_context
    )
    assert [h.source for h in SearchResponse.model_validate_json(result["body"]).hits] == [
        f"s3://{aws.bucket}/billing/invoices.txt"
    ]
    result = query.lambda_handler(
        api_event("query_event.json", {"question": "How do I configure the espresso machine's grinder?"}),
        lambda_context,
    )
    assert AskResponse.model_validate_json(result["body"]).decision == "refuse"

    health = load_handler("health")
    result = health.lambda_handler(api_event("health_detailed_event.json"), lambda_context)
    report = json.loads(result["body"])
    assert result["statusCode"] == 200, report
    assert report["store"]["documents"] == 2

    aws.delete("account/api keys.md")
    assert aws.deliver(ingest, aws.receive(1), lambda_context) == {"batchItemFailures": []}
    assert keys_source not in ingest.service.store.source_hashes()
    query = load_handler("query")
    result = query.lambda_handler(
        api_event("search_event.json", {"query": "rotate API key", "k": 10}), lambda_context
    )
    assert keys_source not in {h["source"] for h in json.loads(result["body"])["hits"]}
