"""The shared answer cache tier in DynamoDB, against a moto server: round trip, TTL, failures that are misses,
and two "Lambda instances" (services with their own in-process LRU) sharing answers through the table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from shared.adapters.answer_cache_dynamodb import KEY_ATTRIBUTE, TTL_ATTRIBUTE, DynamoAnswerCache
from shared.answer_cache import LruAnswerCache, TieredAnswerCache, make_answer_cache
from shared.models import AskResponse
from shared.service import RagService
from tests.aws import REGION, moto_server, set_aws_env
from tests.servers import free_port
from tests.unit.test_answer_cache import QUESTION, CountingStore
from tests.unit.test_http_api import make_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def table(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A table as infrastructure creates it: partition key cache_key, on demand."""
    set_aws_env(monkeypatch, tmp_path, moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)  # the adapter's own client finds moto
    client = boto3.client("dynamodb", endpoint_url=moto_url, region_name=REGION)
    name = f"answers-{tmp_path.name}"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )
    return name


def client(url: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=url, region_name=REGION)


def answer(text: str = "Open the console and choose Regenerate key. [1]") -> AskResponse:
    return AskResponse(question=QUESTION, decision="answer", answer=text, confidence=0.8)


def test_round_trip_and_ttl(moto_url: str, table: str) -> None:
    now = [1_800_000_000.0]
    cache = DynamoAnswerCache(table, ttl_s=600, client=client(moto_url), clock=lambda: now[0])
    assert cache.get("k") is None
    cache.put("k", answer())
    assert cache.get("k") == answer()
    item = client(moto_url).get_item(TableName=table, Key={KEY_ATTRIBUTE: {"S": "k"}})["Item"]
    assert int(item[TTL_ATTRIBUTE]["N"]) == 1_800_000_600
    now[0] += 600  # expired: DynamoDB deletes it within days, reads skip it at once
    assert cache.get("k") is None


def test_failures_are_misses_never_errors(moto_url: str, table: str) -> None:
    cache = DynamoAnswerCache("no-such-table", client=client(moto_url))
    cache.put("k", answer())
    assert cache.get("k") is None
    down = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name=REGION,
        config=__import__("botocore.config").config.Config(retries={"total_max_attempts": 1}),
    )
    cache = DynamoAnswerCache(table, client=down)
    cache.put("k", answer())
    assert cache.get("k") is None
    client(moto_url).put_item(
        TableName=table,
        Item={KEY_ATTRIBUTE: {"S": "bad"}, "response": {"S": "{}"}, TTL_ATTRIBUTE: {"N": "9999999999"}},
    )
    assert DynamoAnswerCache(table, client=client(moto_url)).get("bad") is None  # another release's shape


def test_settings_add_the_shared_tier(table: str) -> None:
    service = make_service(answer_cache_table=table)
    cache = service.answer_cache
    assert isinstance(cache, TieredAnswerCache) and isinstance(cache.local, LruAnswerCache)
    assert isinstance(cache.shared, DynamoAnswerCache) and cache.shared.table == table
    assert make_answer_cache(service.settings.model_copy(update={"answer_cache": False})) is None


def test_two_instances_share_answers_through_the_table(moto_url: str, table: str) -> None:
    """A second instance (empty LRU, same index) answers from the table: no retrieval at all."""
    first = make_service(CountingStore, answer_cache_table=table)
    response = first.ask(QUESTION)
    assert first.store.retrievals == 1
    second = RagService(first.settings, embedder=first.embedder, store=first.store)
    hit = second.ask(QUESTION.lower())
    assert first.store.retrievals == 1 and hit.answer == response.answer
    assert hit.question == QUESTION.lower()
    scan = client(moto_url).scan(TableName=table)["Items"]
    assert len(scan) == 1
