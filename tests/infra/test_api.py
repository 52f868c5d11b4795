"""The REST API: routes, API key and usage plan, validation, logs, tracing, CORS, WAF."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import Synthesized


def methods(stage: Synthesized) -> dict[tuple[str, str], dict[str, Any]]:
    """(path, HTTP method) -> method properties, paths rebuilt from the resource tree."""
    resources = stage.resources(stage.stateless, "AWS::ApiGateway::Resource")

    def path(ref: Any) -> str:
        if isinstance(ref, dict) and "Ref" in ref and ref["Ref"] in resources:
            props = resources[ref["Ref"]]["Properties"]
            return f"{path(props['ParentId'])}/{props['PathPart']}"
        return ""  # the root resource

    found = {}
    for method in stage.resources(stage.stateless, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        found[(path(props["ResourceId"]) or "/", props["HttpMethod"])] = props
    return found


ROUTES = {
    ("/query", "POST"): True,
    ("/search", "POST"): True,
    ("/health", "GET"): False,
    ("/health/detailed", "GET"): True,
    ("/openapi.json", "GET"): False,
    ("/docs", "GET"): False,
}


def test_routes_and_api_key_requirements(stage: Synthesized) -> None:
    found = {k: v for k, v in methods(stage).items() if k[1] != "OPTIONS"}
    assert set(found) == set(ROUTES)
    for route, key_required in ROUTES.items():
        assert found[route].get("ApiKeyRequired", False) is key_required, route
        assert found[route]["Integration"]["Type"] == "AWS_PROXY"


def test_query_routes_invoke_the_live_alias_and_the_rest_the_health_function(stage: Synthesized) -> None:
    found = methods(stage)
    (alias_id,) = stage.resources(stage.stateless, "AWS::Lambda::Alias")
    for route in (("/query", "POST"), ("/search", "POST")):
        assert alias_id in json.dumps(found[route]["Integration"]["Uri"]), route
    # /docs and /openapi.json too: the small health function serves the same resolver
    health_routes = ("/health", "/health/detailed", "/openapi.json", "/docs")
    for route in ((path, "GET") for path in health_routes):
        uri = json.dumps(found[route]["Integration"]["Uri"])
        assert "QueryFunctionsHealthFunction" in uri, route
        assert alias_id not in uri and "QueryFunctionsQueryFunction" not in uri, route


def test_post_bodies_are_validated(stage: Synthesized) -> None:
    found = methods(stage)
    (validator_id, validator) = next(
        iter(stage.resources(stage.stateless, "AWS::ApiGateway::RequestValidator").items())
    )
    assert validator["Properties"]["ValidateRequestBody"] is True
    models = stage.resources(stage.stateless, "AWS::ApiGateway::Model")
    required = {
        m["Properties"]["Schema"]["title"]: m["Properties"]["Schema"]["required"] for m in models.values()
    }
    assert required == {"QueryRequest": ["question"], "SearchRequest": ["query"]}
    for route in (("/query", "POST"), ("/search", "POST")):
        assert found[route]["RequestValidatorId"] == {"Ref": validator_id}
        assert "application/json" in found[route]["RequestModels"]


def test_gateway_schemas_agree_with_the_pydantic_models() -> None:
    from shared.models import QueryRequest, SearchRequest

    assert QueryRequest.model_fields["question"].is_required()
    assert SearchRequest.model_fields["query"].is_required()


def test_validation_errors_use_the_api_error_model(stage: Synthesized) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in stage.resources(stage.stateless, "AWS::ApiGateway::GatewayResponse").values()
    }
    bad_body = responses["BAD_REQUEST_BODY"]
    assert bad_body["StatusCode"] == "422"
    assert '"error": "validation_error"' in bad_body["ResponseTemplates"]["application/json"]
    assert {"DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)


def test_usage_plan_throttles_and_caps_the_key(stage: Synthesized) -> None:
    (plan,) = stage.resources(stage.stateless, "AWS::ApiGateway::UsagePlan").values()
    props = plan["Properties"]
    assert props["Throttle"] == (
        {"RateLimit": 20, "BurstLimit": 40} if stage.stage == "dev" else {"RateLimit": 50, "BurstLimit": 100}
    )
    assert props["Quota"]["Period"] == "DAY" and props["Quota"]["Limit"] > 0
    assert len(props["ApiStages"]) == 1
    assert stage.resources(stage.stateless, "AWS::ApiGateway::UsagePlanKey")
    (key,) = stage.resources(stage.stateless, "AWS::ApiGateway::ApiKey").values()
    assert "Name" not in key["Properties"]  # no physical names


def test_stage_has_access_logs_tracing_and_throttling(stage: Synthesized) -> None:
    (api_stage,) = stage.resources(stage.stateless, "AWS::ApiGateway::Stage").values()
    props = api_stage["Properties"]
    assert props["TracingEnabled"] is True
    assert (
        "DestinationArn" in props["AccessLogSetting"] and "requestId" in props["AccessLogSetting"]["Format"]
    )
    (settings,) = (s for s in props["MethodSettings"] if (s["ResourcePath"], s["HttpMethod"]) == ("/*", "*"))
    assert settings["LoggingLevel"] == "ERROR" and settings["DataTraceEnabled"] is False
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0


def test_keyless_routes_have_their_own_method_throttle(stage: Synthesized) -> None:
    """/health, /openapi.json and /docs are outside the usage plan: each is throttled on its own, well
    below the stage limit, so that unauthenticated traffic cannot use up what keyed callers share."""
    (api_stage,) = stage.resources(stage.stateless, "AWS::ApiGateway::Stage").values()
    settings = {(s["ResourcePath"], s["HttpMethod"]): s for s in api_stage["Properties"]["MethodSettings"]}
    stage_wide = settings.pop(("/*", "*"))
    rate, burst = (5, 10) if stage.stage == "dev" else (10, 20)
    # a method setting's path is "/" and the resource path with its slashes escaped as ~1
    keyless = {("/" + path.replace("/", "~1"), method) for (path, method), key in ROUTES.items() if not key}
    assert keyless == {("/~1health", "GET"), ("/~1openapi.json", "GET"), ("/~1docs", "GET")}
    assert set(settings) == keyless
    for route, method_settings in settings.items():
        assert method_settings["ThrottlingRateLimit"] == rate, route
        assert method_settings["ThrottlingBurstLimit"] == burst, route
        assert rate < stage_wide["ThrottlingRateLimit"] and burst < stage_wide["ThrottlingBurstLimit"]
        # a method's settings replace the stage's: its logging must not be lost
        assert method_settings["LoggingLevel"] == "ERROR" and method_settings["DataTraceEnabled"] is False
        assert method_settings["MetricsEnabled"] is True, route


def test_cors_only_where_configured(dev: Synthesized, prod: Synthesized) -> None:
    dev_options = [k for k in methods(dev) if k[1] == "OPTIONS"]
    assert ("/query", "OPTIONS") in dev_options
    assert not [k for k in methods(prod) if k[1] == "OPTIONS"]


def test_waf_protects_the_prod_stage_only(dev: Synthesized, prod: Synthesized) -> None:
    assert not dev.resources(dev.stateless, "AWS::WAFv2::WebACL")
    (acl_id, acl) = next(iter(prod.resources(prod.stateless, "AWS::WAFv2::WebACL").items()))
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    rules = {r["Name"] for r in props["Rules"]}
    assert {"RateLimitPerIp", "AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"} <= rules
    (association,) = prod.resources(prod.stateless, "AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert "DeploymentStage" in json.dumps(association["Properties"]["ResourceArn"])


def test_outputs_tell_how_to_call_the_api(stage: Synthesized) -> None:
    outputs = stage.stateless.to_json()["Outputs"]
    assert {"ApiUrl", "ApiKeyId", "GetApiKeyCommand", "DashboardUrl", "AlarmTopicArn"} <= set(outputs)
    assert "DocumentBucketName" in stage.stateful.to_json()["Outputs"]
