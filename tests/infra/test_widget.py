"""The cloud side of the help widget: the stage configuration of sites and collections, the interactions
table, one publishable key and usage plan per site, the functions' environment (read back by the app's
own settings), least-privilege grants, the webhook secret, and the bundles that carry widget.js."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.bundling import LAMBDA_ARM64_PY312, _files, bundle, site_key
from infra.components.interactions import INTERACTIONS_TABLE_LOGICAL_ID
from infra.config import WidgetConfig, collection, site, stage_config
from shared.adapters.interactions_dynamodb import DAY_INDEX
from shared.settings import Settings, load_settings
from tests.infra.conftest import ROOT, Synthesized, prod_with_sites
from tests.infra.test_cfn_lint import CFN_LINT
from tests.infra.test_nag import violations

WIDGET_JS = ROOT / "shared" / "adapters" / "http_api" / "static" / "widget.js"
QUERY, HEALTH, INGEST = "QueryFunctionsQueryFunction", "QueryFunctionsHealthFunction", "IngestionFunction"


def function(stage: Synthesized, prefix: str) -> dict[str, Any]:
    found = stage.resources(stage.stateless, "AWS::Lambda::Function")
    (props,) = (f["Properties"] for name, f in found.items() if name.startswith(prefix))
    return dict(props)


def env(stage: Synthesized, prefix: str) -> dict[str, Any]:
    return dict(function(stage, prefix)["Environment"]["Variables"])


def resolve(value: Any, refs: dict[str, str]) -> str:
    """A CloudFormation value as a string, with each reference replaced by a stand-in for what
    CloudFormation would put there (``refs`` by logical id, else ``<id>``)."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return str(delimiter).join(resolve(part, refs) for part in parts)
    if "Ref" in value:
        return refs.get(value["Ref"], f"<{value['Ref']}>")
    if "Fn::GetAtt" in value:
        return f"<{value['Fn::GetAtt'][0]}.{value['Fn::GetAtt'][1]}>"
    if "Fn::GetStackOutput" in value:
        return "stack-output"
    if "Fn::ImportValue" in value:
        return "imported"
    raise AssertionError(f"unexpected value {value!r}")


def policy_statements(stage: Synthesized, role_prefix: str) -> list[dict[str, Any]]:
    statements = []
    for policy in stage.resources(stage.stateless, "AWS::IAM::Policy").values():
        roles = json.dumps(policy["Properties"]["Roles"])
        if role_prefix in roles:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def actions(statement: dict[str, Any]) -> list[str]:
    found = statement["Action"]
    return [found] if isinstance(found, str) else list(found)


# --- stage configuration ---------------------------------------------------------------------------------


def test_dev_has_one_placeholder_site_prod_none() -> None:
    dev, prod = stage_config("dev"), stage_config("prod")
    (docs,) = dev.widget.sites
    assert (docs.name, docs.collection, docs.origins) == ("docs", "default", ["http://localhost:8000"])
    assert docs.key is None and docs.key_id is None  # API Gateway creates the key
    assert prod.widget.sites == () and prod.widget.collections == {}
    assert not dev.widget.webhook and not prod.widget.webhook


def test_a_bad_site_or_collection_fails_with_the_apps_own_reason() -> None:
    with pytest.raises(
        ValueError, match=r"site 'help': origins: 'https://help.example.com/faq' is not an origin"
    ):
        site("help", origins=["https://help.example.com/faq"])
    with pytest.raises(ValueError, match=r"site 'help': origins: .*no wildcard"):
        site("help", origins=["https://*.example.com"])
    with pytest.raises(ValueError, match="site 'Help Center': name"):
        site("Help Center", origins=["https://help.example.com"])
    with pytest.raises(ValueError, match="collection: handoff: a webhook handoff must be webhook:https://"):
        collection(handoff="webhook:http://hooks.example.com/t")
    with pytest.raises(ValueError, match="collection: url_template"):
        collection(url_template="docs.example.com/{path}")
    # the same models the app validates its settings with
    docs = site("docs", origins=["HTTPS://Docs.Example.com/"])
    assert docs.origins == ["https://docs.example.com"]


def test_widget_config_refuses_what_the_app_would_not_run() -> None:
    docs = site("docs", origins=["https://docs.example.com"])
    with pytest.raises(ValueError, match="two sites share"):
        WidgetConfig(sites=(docs, docs))
    with pytest.raises(ValueError, match="two sites share"):  # help-center and help_center: one output id
        WidgetConfig(
            sites=(
                site("help-center", origins=["https://a.example.com"]),
                site("help_center", origins=["https://b.example.com"]),
            )
        )
    with pytest.raises(ValueError, match="leave key and key_id unset"):
        WidgetConfig(sites=(docs.model_copy(update={"key": "pk_live_0123456789"}),))
    with pytest.raises(ValueError, match="collection name 'Help'"):
        WidgetConfig(collections={"Help": collection()})
    with pytest.raises(ValueError, match="interaction_retention_days"):
        WidgetConfig(interaction_retention_days=0)
    many = tuple(
        site(f"site-{i}", origins=[f"https://help-{i}-{j}.example.com" for j in range(4)]) for i in range(20)
    )
    with pytest.raises(ValueError, match="Lambda allows 4 KB"):
        WidgetConfig(sites=many)


def test_a_webhook_needs_internet_egress_from_the_prod_vpc() -> None:
    prod = stage_config("prod")
    webhook = WidgetConfig(collections={"default": collection(handoff="webhook:https://hooks.example.com/t")})
    assert webhook.webhook
    with pytest.raises(ValueError, match="nat_gateways=1"):
        dataclasses.replace(prod, widget=webhook)
    assert prod.network is not None
    dataclasses.replace(prod, network=dataclasses.replace(prod.network, nat_gateways=1), widget=webhook)
    dataclasses.replace(stage_config("dev"), widget=webhook)  # no VPC: the functions reach the internet


# --- the interactions table ------------------------------------------------------------------------------


def test_interactions_table(stage: Synthesized) -> None:
    tables = stage.resources(stage.stateful, "AWS::DynamoDB::Table")
    # pinned: a refactoring never replaces it (the other table is the answer cache, test_answer_cache.py)
    assert INTERACTIONS_TABLE_LOGICAL_ID in tables and len(tables) == 2
    table = tables[INTERACTIONS_TABLE_LOGICAL_ID]
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "interaction_id", "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # SSE enabled without a key of ours: KMS with the AWS managed key (aws/dynamodb)
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert "TableName" not in props
    (index,) = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == DAY_INDEX
    assert index["KeySchema"] == [
        {"AttributeName": "day", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == {"interaction_id": "S", "day": "S", "created_at": "S"}


def test_interactions_table_retention_follows_the_stage(dev: Synthesized, prod: Synthesized) -> None:
    def table(stage: Synthesized) -> dict[str, Any]:
        return dict(stage.resources(stage.stateful, "AWS::DynamoDB::Table")[INTERACTIONS_TABLE_LOGICAL_ID])

    assert table(dev)["DeletionPolicy"] == "Delete" and not table(dev)["Properties"].get(
        "DeletionProtectionEnabled"
    )
    assert table(prod)["DeletionPolicy"] == "Retain" and table(prod)["UpdateReplacePolicy"] == "Retain"
    assert table(prod)["Properties"]["DeletionProtectionEnabled"] is True
    # what the query function writes as expires_at: created_at + these days
    assert env(dev, QUERY)["RAG_EXPLORER_INTERACTION_RETENTION_DAYS"] == "30"
    assert env(prod, QUERY)["RAG_EXPLORER_INTERACTION_RETENTION_DAYS"] == "90"


def test_prod_vpc_reaches_dynamodb_through_a_gateway_endpoint(prod: Synthesized) -> None:
    endpoints = prod.resources(prod.stateful, "AWS::EC2::VPCEndpoint").values()
    gateways = [
        json.dumps(e["Properties"]["ServiceName"])
        for e in endpoints
        if e["Properties"].get("VpcEndpointType", "Gateway") == "Gateway"
    ]
    assert any(".dynamodb" in name for name in gateways) and any(".s3" in name for name in gateways)


# --- publishable keys ------------------------------------------------------------------------------------


def site_keys(stage: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        name: key
        for name, key in stage.resources(stage.stateless, "AWS::ApiGateway::ApiKey").items()
        if name.startswith("SiteKeys")
    }


@pytest.mark.parametrize(("fixture", "count"), [("dev", 1), ("prod", 0), ("widget", 2)])
def test_one_generated_key_in_its_own_usage_plan_per_site(
    fixture: str, count: int, request: pytest.FixtureRequest
) -> None:
    stage: Synthesized = request.getfixturevalue(fixture)
    config = stage_config(stage.stage).api
    keys = site_keys(stage)
    assert len(keys) == count
    for key in keys.values():
        props = key["Properties"]
        assert "Value" not in props and "Name" not in props  # the value is generated by API Gateway
        assert "StageKeys" not in props  # attached through its usage plan only
        assert props["Enabled"] is True
    plans = {
        name: plan["Properties"]
        for name, plan in stage.resources(stage.stateless, "AWS::ApiGateway::UsagePlan").items()
        if name.startswith("SiteKeys")
    }
    assert len(plans) == count
    plan_keys = stage.resources(stage.stateless, "AWS::ApiGateway::UsagePlanKey").values()
    members: dict[str, list[str]] = {}
    for link in plan_keys:
        members.setdefault(link["Properties"]["UsagePlanId"]["Ref"], []).append(
            link["Properties"]["KeyId"]["Ref"]
        )
    for name, plan in plans.items():
        assert plan["Throttle"] == {"RateLimit": 10, "BurstLimit": 20}
        assert plan["Quota"] == {"Limit": config.publishable_quota_per_day, "Period": "DAY"}
        (api_stage,) = plan["ApiStages"]
        assert "DeploymentStage" in json.dumps(api_stage["Stage"])
        (member,) = members[name]  # exactly one key per plan, and it is a site's
        assert member in keys
    assert sorted(k for plan in plans for k in members[plan]) == sorted(keys)


def test_site_outputs_give_the_key_id_and_the_command(widget: Synthesized) -> None:
    outputs = widget.stateless.to_json()["Outputs"]
    keys = site_keys(widget)
    for site_id in ("HelpCenter", "DocsSite"):
        key_ref = outputs[f"Site{site_id}KeyId"]["Value"]["Ref"]
        assert key_ref in keys
        command = resolve(outputs[f"Site{site_id}GetKeyCommand"]["Value"], {key_ref: "abc123defg"})
        assert (
            command
            == "aws apigateway get-api-key --api-key abc123defg --include-value --query value --output text"
        )


# --- the functions' environment --------------------------------------------------------------------------


def test_sites_reach_the_api_functions_as_the_app_reads_them(widget: Synthesized, tmp_path: Path) -> None:
    """RAG_EXPLORER_SITES names each site's key by id, never by value; loaded by the app's own settings
    with the ids CloudFormation would fill in, it is the configured sites."""
    keys = site_keys(widget)
    ids = {logical_id: f"id{n:08d}" for n, logical_id in enumerate(sorted(keys))}
    configured = {s.name: s for s in prod_with_sites().widget.sites}
    for prefix in (QUERY, HEALTH):
        variables = env(widget, prefix)
        text = resolve(variables["RAG_EXPLORER_SITES"], ids)
        assert '"key"' not in text
        resolved = {name: resolve(value, ids) for name, value in variables.items()}
        settings = load_settings(env={**resolved, "RAG_EXPLORER_HOME": str(tmp_path)})
        assert {s.name for s in settings.sites} == set(configured)
        assert {s.key_id for s in settings.sites} == set(ids.values())
        for found in settings.sites:
            assert found.key is None
            expected = configured[found.name]
            assert (found.collection, found.origins) == (expected.collection, expected.origins)
            # the key id is that of this site's key
            (logical_id,) = (i for i, v in ids.items() if v == found.key_id)
            assert found.name in keys[logical_id]["Properties"]["Description"]
        assert settings.collection("help").handoff == "webhook:https://hooks.example.com/tickets"
        assert settings.collection("help").prefix == "help-center/"
    assert "RAG_EXPLORER_SITES" not in env(widget, INGEST)


def test_every_function_variable_is_a_setting(stage: Synthesized) -> None:
    for prefix in (QUERY, HEALTH, INGEST):
        names = [
            n.removeprefix("RAG_EXPLORER_").lower()
            for n in env(stage, prefix)
            if n.startswith("RAG_EXPLORER_")
        ]
        assert set(names) <= set(Settings.model_fields), prefix


def test_collections_reach_every_function(widget: Synthesized, dev: Synthesized) -> None:
    """The ingest function files each object under its collection (by prefix) and links its chunks."""
    for prefix in (QUERY, HEALTH, INGEST):
        collections = json.loads(env(widget, prefix)["RAG_EXPLORER_COLLECTIONS"])
        assert collections["help"] == {
            "url_template": "https://help.example.com/{path}",
            "handoff": "webhook:https://hooks.example.com/tickets",
            "prefix": "help-center/",
        }
        assert json.loads(env(dev, prefix)["RAG_EXPLORER_COLLECTIONS"]) == {}


def test_only_the_query_function_keeps_interactions_with_exactly_what_it_calls(stage: Synthesized) -> None:
    table_name = env(stage, QUERY)["RAG_EXPLORER_INTERACTIONS_TABLE"]
    assert INTERACTIONS_TABLE_LOGICAL_ID in json.dumps(table_name)  # the stateful stack's table
    assert "RAG_EXPLORER_INTERACTIONS_TABLE" not in env(stage, HEALTH)
    assert "RAG_EXPLORER_INTERACTIONS_TABLE" not in env(stage, INGEST)
    dynamo = [
        s
        for s in policy_statements(stage, "QueryFunctionsQueryRole")
        if any(a.startswith("dynamodb:") for a in actions(s))
    ]
    by_actions = {tuple(sorted(actions(s))): s["Resource"] for s in dynamo}
    assert set(by_actions) == {("dynamodb:GetItem", "dynamodb:PutItem"), ("dynamodb:Query",)}
    # get and put on two tables (interactions, answer cache): the table ARNs, no index, no wildcard
    table_arn = json.dumps(by_actions[("dynamodb:GetItem", "dynamodb:PutItem")])
    assert INTERACTIONS_TABLE_LOGICAL_ID in table_arn
    assert "/index/" not in table_arn and "*" not in table_arn
    index_arn = resolve(by_actions[("dynamodb:Query",)], {})
    assert index_arn.endswith(f"/index/{DAY_INDEX}")
    for role in ("QueryFunctionsHealthRole", "IngestionFunctionRole"):
        assert not [
            s for s in policy_statements(stage, role) if any(a.startswith("dynamodb:") for a in actions(s))
        ]


def test_the_grants_match_the_store_calls() -> None:
    """The actions granted are those of the boto3 calls DynamoInteractionStore makes."""
    import re

    from infra.components.interactions import INDEX_ACTIONS, TABLE_ACTIONS

    source = (ROOT / "shared" / "adapters" / "interactions_dynamodb.py").read_text()
    calls = set(re.findall(r"self\.client\.(\w+)\(", source))
    assert calls == {"put_item", "get_item", "query"}
    granted = {a.removeprefix("dynamodb:") for a in (*TABLE_ACTIONS, *INDEX_ACTIONS)}
    assert granted == {"".join(part.title() for part in call.split("_")) for call in calls}


# --- the webhook secret ----------------------------------------------------------------------------------


def test_no_webhook_secret_without_a_webhook_handoff(stage: Synthesized) -> None:
    (secret,) = stage.resources(stage.stateless, "AWS::SecretsManager::Secret").values()  # the LLM secret
    assert "LLM" in secret["Properties"]["Description"]
    assert "RAG_EXPLORER_WEBHOOK_SECRET_ARN" not in env(stage, QUERY)
    assert "WebhookSecretArn" not in stage.stateless.to_json()["Outputs"]


def test_webhook_secret_generated_and_readable_by_the_query_function_only(widget: Synthesized) -> None:
    secrets = widget.resources(widget.stateless, "AWS::SecretsManager::Secret")
    (secret_id,) = (name for name in secrets if name.startswith("QueryFunctionsWebhookSecret"))
    props = secrets[secret_id]["Properties"]
    assert props["GenerateSecretString"]["PasswordLength"] >= 32 and "Name" not in props
    assert env(widget, QUERY)["RAG_EXPLORER_WEBHOOK_SECRET_ARN"] == {"Ref": secret_id}
    for prefix in (HEALTH, INGEST):
        assert "RAG_EXPLORER_WEBHOOK_SECRET_ARN" not in env(widget, prefix)
    readers = [
        name
        for name, policy in widget.resources(widget.stateless, "AWS::IAM::Policy").items()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if {"Ref": secret_id}
        in (statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]])
    ]
    assert len(readers) == 1 and readers[0].startswith("QueryFunctionsQueryRole")
    (deny,) = (
        p["Properties"]["ResourcePolicy"]["Statement"][0]
        for p in widget.resources(widget.stateless, "AWS::SecretsManager::ResourcePolicy").values()
        if p["Properties"]["SecretId"] == {"Ref": secret_id}
    )
    assert deny["Effect"] == "Deny" and deny["Action"] == "secretsmanager:GetSecretValue"
    assert deny["Condition"]["StringNotEquals"]["aws:PrincipalArn"]["Fn::GetAtt"][0].startswith(
        "QueryFunctionsQueryRole"
    )
    assert widget.stateless.to_json()["Outputs"]["WebhookSecretArn"]["Value"] == {"Ref": secret_id}


# --- the stage with sites and a webhook passes the same checks -------------------------------------------


def test_stage_with_sites_is_nag_and_cfn_lint_clean(widget: Synthesized) -> None:
    assert widget.error is None, widget.error
    assert violations(widget.outdir) == []
    result = subprocess.run(
        [str(CFN_LINT), "--format", "json", *map(str, widget.template_files())],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 4, 8, 12), result.stderr[-2000:]
    errors = [f for f in json.loads(result.stdout) if f["Level"] == "Error"]
    assert errors == []


# --- widget.js in the bundles ----------------------------------------------------------------------------


def test_widget_script_is_part_of_the_bundle_and_its_hash(tmp_path: Path) -> None:
    """The health function serves GET /widget.js from the packaged static file: bundle shared/ with an
    empty dependency tree (so no wheels are needed) and find the very file; it also counts in the asset
    hash, so that a new widget.js deploys."""
    assert WIDGET_JS.is_file() and WIDGET_JS.stat().st_size > 0
    cache = tmp_path / "cache"
    (cache / "lambda-site" / f"{LAMBDA_ARM64_PY312.slug}-{site_key(LAMBDA_ARM64_PY312)}").mkdir(parents=True)
    for name in ("health", "query"):
        asset = bundle(name, tmp_path / name, cache_dir=cache)
        packaged = asset / WIDGET_JS.relative_to(ROOT)
        assert packaged.read_bytes() == WIDGET_JS.read_bytes(), name
    assert WIDGET_JS in set(_files(ROOT / "shared"))


# --- the environment drives the functions' resolver ------------------------------------------------------


def rest_event(method: str, path: str, headers: dict[str, str], key_id: str | None = None) -> dict[str, Any]:
    """An API Gateway REST proxy event, as the stage's routes send it."""
    return {
        "httpMethod": method,
        "path": path,
        "resource": path,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {"requestId": "r1", "stage": "v1", "identity": {"apiKeyId": key_id}},
    }


class _Context:
    function_name = "probe"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:probe"
    aws_request_id = "r1"


@pytest.mark.parametrize("prefix", [QUERY, HEALTH])
def test_functions_answer_preflights_and_refuse_the_site_key_elsewhere(
    dev: Synthesized, prefix: str, tmp_path: Path
) -> None:
    """Built from the environment the CDK app gives a function, the app's resolver answers the preflight of
    the site's origin (API Gateway routes it there without a key) and refuses the site's key on a route a
    publishable key may not call, identified by the key id API Gateway passes."""
    from shared.adapters.http_api import create_app
    from shared.service import RagService

    (key_logical_id,) = site_keys(dev)
    ids = {key_logical_id: "k1d2e3f4g5"}
    variables = {name: resolve(value, ids) for name, value in env(dev, prefix).items()}
    settings = load_settings(env={**variables, "RAG_EXPLORER_HOME": str(tmp_path)})
    app = create_app(RagService(settings))

    def call(event: dict[str, Any]) -> tuple[int, dict[str, list[str]]]:
        response = app.resolve(event, _Context())
        return response["statusCode"], dict(response.get("multiValueHeaders") or {})

    origin = {"Origin": "http://localhost:8000", "Access-Control-Request-Method": "POST"}
    status, headers = call(rest_event("OPTIONS", "/query", origin))
    assert status == 204 and headers["Access-Control-Allow-Origin"] == ["http://localhost:8000"]
    status, _ = call(rest_event("OPTIONS", "/feedback", {"Origin": "https://elsewhere.example"}))
    assert status == 403
    status, _ = call(rest_event("GET", "/health/detailed", {}, key_id="k1d2e3f4g5"))
    assert status == 403
    status, headers = call(rest_event("GET", "/widget.js", {}))
    assert status == 200 and headers["Access-Control-Allow-Origin"] == ["*"]
