"""The shared answer cache table: what shared.adapters.answer_cache_dynamodb needs, nothing more."""

from __future__ import annotations

import json
import re
from typing import Any

from infra.components.answer_cache import CACHE_ACTIONS
from tests.infra.conftest import ROOT, Synthesized
from tests.infra.test_widget import HEALTH, INGEST, QUERY, actions, env, policy_statements


def cache_table(stage: Synthesized) -> tuple[str, dict[str, Any]]:
    tables = stage.resources(stage.stateful, "AWS::DynamoDB::Table")
    ((logical_id, table),) = [(k, v) for k, v in tables.items() if k.startswith("AnswerCache")]
    return logical_id, dict(table)


def test_cache_table_is_on_demand_with_ttl_and_deleted_with_the_stack(stage: Synthesized) -> None:
    _, table = cache_table(stage)
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "cache_key", "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert "TableName" not in props and "GlobalSecondaryIndexes" not in props
    assert table["DeletionPolicy"] == "Delete"  # a cache: recomputed on a miss


def test_only_the_query_function_uses_the_cache(stage: Synthesized) -> None:
    logical_id, _ = cache_table(stage)
    assert logical_id in json.dumps(env(stage, QUERY)["RAG_EXPLORER_ANSWER_CACHE_TABLE"])
    assert "RAG_EXPLORER_ANSWER_CACHE_TABLE" not in env(stage, HEALTH)
    assert "RAG_EXPLORER_ANSWER_CACHE_TABLE" not in env(stage, INGEST)
    granted = [
        s
        for s in policy_statements(stage, "QueryFunctionsQueryRole")
        if logical_id in json.dumps(s["Resource"])
    ]
    assert granted and all(set(actions(s)) == set(CACHE_ACTIONS) for s in granted)


def test_the_grants_match_the_cache_calls() -> None:
    source = (ROOT / "shared" / "adapters" / "answer_cache_dynamodb.py").read_text()
    calls = set(re.findall(r"\.(get_item|put_item|update_item|delete_item|query|scan)\(", source))
    assert calls == {"get_item", "put_item"}
    assert {a.removeprefix("dynamodb:") for a in CACHE_ACTIONS} == {"GetItem", "PutItem"}
