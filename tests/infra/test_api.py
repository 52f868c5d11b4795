"""The REST API: routes, API key and usage plan, validation, logs, tracing, CORS, WAF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.components.api import ANALYTICS_QUERY_PARAMETERS, ANALYTICS_ROUTES, CORS_ERROR_HEADERS
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
    ("/feedback", "POST"): True,
    ("/health", "GET"): False,
    ("/health/detailed", "GET"): True,
    ("/openapi.json", "GET"): False,
    ("/docs", "GET"): False,
    ("/widget.js", "GET"): False,
    ("/widget/{file}", "GET"): False,
    ("/analytics/summary", "GET"): True,
    ("/analytics/gaps", "GET"): True,
}
# the help widget's CORS preflights: only in a stage with sites (dev's placeholder site; prod has none)
PREFLIGHTS = {("/query", "OPTIONS"), ("/feedback", "OPTIONS")}


def test_routes_and_api_key_requirements(stage: Synthesized) -> None:
    found = {k: v for k, v in methods(stage).items() if k[1] != "OPTIONS"}
    assert set(found) == set(ROUTES)
    for route, key_required in ROUTES.items():
        assert found[route].get("ApiKeyRequired", False) is key_required, route
        assert found[route]["Integration"]["Type"] == "AWS_PROXY"


def test_query_routes_invoke_the_live_alias_and_the_rest_the_health_function(stage: Synthesized) -> None:
    found = methods(stage)
    (alias_id,) = stage.resources(stage.stateless, "AWS::Lambda::Alias")
    query_routes = (
        ("/query", "POST"),
        ("/search", "POST"),
        ("/feedback", "POST"),
        ("/analytics/summary", "GET"),
        ("/analytics/gaps", "GET"),
    )
    for route in query_routes:
        assert alias_id in json.dumps(found[route]["Integration"]["Uri"]), route
    # /docs, /openapi.json and the widget's script too: the small health function serves the same resolver
    health_routes = ("/health", "/health/detailed", "/openapi.json", "/docs", "/widget.js", "/widget/{file}")
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
    assert required == {
        "QueryRequest": ["question"],
        "SearchRequest": ["query"],
        "FeedbackRequest": ["interaction_id"],
    }
    for route in (("/query", "POST"), ("/search", "POST"), ("/feedback", "POST")):
        assert found[route]["RequestValidatorId"] == {"Ref": validator_id}
        assert "application/json" in found[route]["RequestModels"]


def test_gateway_schemas_agree_with_the_pydantic_models(dev: Synthesized) -> None:
    from shared.feedback import INTERACTION_ID_PATTERN, FeedbackRequest
    from shared.models import QueryRequest, SearchRequest

    assert QueryRequest.model_fields["question"].is_required()
    assert SearchRequest.model_fields["query"].is_required()
    assert FeedbackRequest.model_fields["interaction_id"].is_required()
    (feedback,) = (
        m["Properties"]["Schema"]
        for m in dev.resources(dev.stateless, "AWS::ApiGateway::Model").values()
        if m["Properties"]["Schema"]["title"] == "FeedbackRequest"
    )
    assert feedback["properties"]["interaction_id"]["pattern"] == INTERACTION_ID_PATTERN


def test_validation_errors_use_the_api_error_model(stage: Synthesized) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in stage.resources(stage.stateless, "AWS::ApiGateway::GatewayResponse").values()
    }
    bad_body = responses["BAD_REQUEST_BODY"]
    assert bad_body["StatusCode"] == "422"
    assert '"error": "validation_error"' in bad_body["ResponseTemplates"]["application/json"]
    assert {"DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)


def test_gateway_errors_are_readable_cross_origin(stage: Synthesized) -> None:
    """A missing key (403), a throttle or quota (429), an invalid body (422) and a 5xx made by API Gateway
    itself carry CORS headers: the caller's Origin echoed, with Vary: Origin, so that the widget can show
    why. (They hold no data.)"""
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in stage.resources(stage.stateless, "AWS::ApiGateway::GatewayResponse").values()
    }
    expected = {f"gatewayresponse.header.{name}": value for name, value in CORS_ERROR_HEADERS.items()}
    assert expected["gatewayresponse.header.Access-Control-Allow-Origin"] == "method.request.header.Origin"
    assert expected["gatewayresponse.header.Vary"] == "'Origin'"
    for response_type in ("DEFAULT_4XX", "DEFAULT_5XX", "BAD_REQUEST_BODY"):
        assert responses[response_type]["ResponseParameters"] == expected, response_type


def test_usage_plan_throttles_and_caps_the_key(stage: Synthesized) -> None:
    (plan,) = (
        p
        for p in stage.resources(stage.stateless, "AWS::ApiGateway::UsagePlan").values()
        if p["Properties"]["Description"] == "RAG Explorer default usage plan"
    )
    props = plan["Properties"]
    assert props["Throttle"] == (
        {"RateLimit": 20, "BurstLimit": 40} if stage.stage == "dev" else {"RateLimit": 50, "BurstLimit": 100}
    )
    assert props["Quota"]["Period"] == "DAY" and props["Quota"]["Limit"] > 0
    assert len(props["ApiStages"]) == 1
    assert stage.resources(stage.stateless, "AWS::ApiGateway::UsagePlanKey")
    keys = stage.resources(stage.stateless, "AWS::ApiGateway::ApiKey").values()
    assert all("Name" not in key["Properties"] for key in keys)  # no physical names


def test_responses_are_compressed_for_clients_that_accept_it(stage: Synthesized) -> None:
    """widget.js (25 KB) travels gzipped, about 8 KB."""
    (api,) = stage.resources(stage.stateless, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["MinimumCompressionSize"] == 1024


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
    """/health, /openapi.json, /docs, the widget's script and the preflights are outside the usage plans:
    each is throttled on its own, well below the stage limit, so that unauthenticated traffic cannot use up
    what keyed callers share."""
    (api_stage,) = stage.resources(stage.stateless, "AWS::ApiGateway::Stage").values()
    settings = {(s["ResourcePath"], s["HttpMethod"]): s for s in api_stage["Properties"]["MethodSettings"]}
    stage_wide = settings.pop(("/*", "*"))
    rate, burst = (5, 10) if stage.stage == "dev" else (10, 20)
    # a method setting's path is "/" and the resource path with its slashes escaped as ~1
    routes = {route for route, key in ROUTES.items() if not key}
    if stage.stage == "dev":
        routes |= PREFLIGHTS
    keyless = {("/" + path.replace("/", "~1"), method) for (path, method) in routes}
    assert ("/~1widget~1{file}", "GET") in keyless and len(keyless) == (7 if stage.stage == "dev" else 5)
    assert set(settings) == keyless
    for route, method_settings in settings.items():
        assert method_settings["ThrottlingRateLimit"] == rate, route
        assert method_settings["ThrottlingBurstLimit"] == burst, route
        assert rate < stage_wide["ThrottlingRateLimit"] and burst < stage_wide["ThrottlingBurstLimit"]
        # a method's settings replace the stage's: its logging must not be lost
        assert method_settings["LoggingLevel"] == "ERROR" and method_settings["DataTraceEnabled"] is False
        assert method_settings["MetricsEnabled"] is True, route


def test_preflights_go_to_the_query_function_without_a_key_where_there_are_sites(
    dev: Synthesized, prod: Synthesized, widget: Synthesized
) -> None:
    """The query function answers the widget's preflights itself (for the origins its sites list); API
    Gateway has no CORS configuration of its own (no mock OPTIONS on other routes)."""
    assert not [k for k in methods(prod) if k[1] == "OPTIONS"]  # prod has no site by default
    for stage in (dev, widget):
        found = methods(stage)
        (alias_id,) = stage.resources(stage.stateless, "AWS::Lambda::Alias")
        assert {k for k in found if k[1] == "OPTIONS"} == PREFLIGHTS
        for route in PREFLIGHTS:
            props = found[route]
            assert props.get("ApiKeyRequired", False) is False and props["AuthorizationType"] == "NONE"
            assert props["Integration"]["Type"] == "AWS_PROXY"
            assert alias_id in json.dumps(props["Integration"]["Uri"]), route


def usage_plans(stage: Synthesized) -> dict[str, dict[str, Any]]:
    """Description (or logical id) -> usage plan properties."""
    return {
        plan["Properties"].get("Description", name): plan["Properties"]
        for name, plan in stage.resources(stage.stateless, "AWS::ApiGateway::UsagePlan").items()
    }


def test_analytics_routes_take_the_report_period_and_collection_for_secret_keys(stage: Synthesized) -> None:
    """GET /analytics/summary and /analytics/gaps: to the query function's live alias, with an API key (the
    function refuses a publishable one with 403), the optional query string of `rag-explorer report`."""
    found = methods(stage)
    (alias_id,) = stage.resources(stage.stateless, "AWS::Lambda::Alias")
    (validator_id,) = stage.resources(stage.stateless, "AWS::ApiGateway::RequestValidator")
    assert set(ANALYTICS_ROUTES) == {"/analytics/summary", "/analytics/gaps"}
    for path in ANALYTICS_ROUTES:
        props = found[(path, "GET")]
        assert props["ApiKeyRequired"] is True and props["AuthorizationType"] == "NONE"
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert alias_id in json.dumps(props["Integration"]["Uri"]), path
        assert props["RequestParameters"] == {
            "method.request.querystring.since": False,
            "method.request.querystring.until": False,
            "method.request.querystring.collection": False,
        }
        assert props["RequestValidatorId"] == {"Ref": validator_id}
        assert (path, "OPTIONS") not in found  # not a widget route: no preflight


def test_analytics_routes_have_a_lower_per_key_throttle(stage: Synthesized) -> None:
    """Each analytics route is throttled per key in the secret key's usage plan, below the plan's own limit
    (which /query has); not in the stage's method settings, which every caller (site keys too) would share."""
    from infra.config import stage_config

    config = stage_config(stage.stage).api
    plan = usage_plans(stage)["RAG Explorer default usage plan"]
    (api_stage,) = plan["ApiStages"]
    assert api_stage["Throttle"] == {
        f"{path}/GET": {"RateLimit": 1, "BurstLimit": 2} for path in ANALYTICS_ROUTES
    }
    assert (config.analytics_throttle_rate_limit, config.analytics_throttle_burst_limit) == (1, 2)
    assert config.analytics_throttle_rate_limit < plan["Throttle"]["RateLimit"]
    assert config.analytics_throttle_burst_limit < plan["Throttle"]["BurstLimit"]
    for description, site_plan in usage_plans(stage).items():  # site keys: refused by the function
        if description != "RAG Explorer default usage plan":
            assert not any(s.get("Throttle") for s in site_plan["ApiStages"]), description
    (api_stage_resource,) = stage.resources(stage.stateless, "AWS::ApiGateway::Stage").values()
    assert not [
        s for s in api_stage_resource["Properties"]["MethodSettings"] if "analytics" in s["ResourcePath"]
    ]


def test_every_route_of_the_apps_openapi_is_routed(tmp_path: Path) -> None:
    """The API Gateway routes and the resolver's OpenAPI agree: each operation the app documents has a
    method, and the analytics methods declare the query parameters the app reads, all optional."""
    from shared.adapters.http_api import create_app
    from shared.service import RagService
    from shared.settings import load_settings

    app = create_app(RagService(load_settings(env={"RAG_EXPLORER_HOME": str(tmp_path)})))
    spec = app.get_openapi_schema().model_dump(by_alias=True, exclude_none=True)
    operations = {
        (path, method.upper()): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }
    assert set(operations) <= set(ROUTES)
    for path in ANALYTICS_ROUTES:
        parameters = operations[(path, "GET")]["parameters"]
        assert {p["name"] for p in parameters if p["in"] == "query"} == set(ANALYTICS_QUERY_PARAMETERS)
        assert not any(p.get("required") for p in parameters)


def test_waf_protects_the_prod_stage_only(dev: Synthesized, prod: Synthesized) -> None:
    assert not dev.resources(dev.stateless, "AWS::WAFv2::WebACL")
    (acl_id, acl) = next(iter(prod.resources(prod.stateless, "AWS::WAFv2::WebACL").items()))
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    rules = {r["Name"] for r in props["Rules"]}
    assert {
        "RateLimitPerIp",
        "WidgetRateLimitPerIp",
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
    } <= rules
    assert len({r["Priority"] for r in props["Rules"]}) == len(props["Rules"])
    (association,) = prod.resources(prod.stateless, "AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert "DeploymentStage" in json.dumps(association["Properties"]["ResourceArn"])


def test_waf_limits_each_address_on_the_widget_routes(prod: Synthesized) -> None:
    """A rate-based rule per client address, scoped to /query and /feedback (URL-decoded, lower-cased),
    blocks with a 429 in the error model that a page on any origin can read."""
    from infra.config import stage_config

    (acl,) = prod.resources(prod.stateless, "AWS::WAFv2::WebACL").values()
    props = acl["Properties"]
    rules = {r["Name"]: r for r in props["Rules"]}
    rule = rules["WidgetRateLimitPerIp"]
    statement = rule["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP" and statement["EvaluationWindowSec"] == 300
    assert statement["Limit"] == stage_config("prod").api.publishable_requests_per_ip
    assert statement["Limit"] < rules["RateLimitPerIp"]["Statement"]["RateBasedStatement"]["Limit"]
    matches = [s["ByteMatchStatement"] for s in statement["ScopeDownStatement"]["OrStatement"]["Statements"]]
    assert {m["SearchString"] for m in matches} == {"/query", "/feedback"}
    for match in matches:
        assert match["FieldToMatch"] == {"UriPath": {}} and match["PositionalConstraint"] == "CONTAINS"
        assert [t["Type"] for t in match["TextTransformations"]] == ["URL_DECODE", "LOWERCASE"]
    for name in ("WidgetRateLimitPerIp", "RateLimitPerIp"):
        response = rules[name]["Action"]["Block"]["CustomResponse"]
        assert response["ResponseCode"] == 429
        headers = {h["Name"]: h["Value"] for h in response["ResponseHeaders"]}
        assert headers["Access-Control-Allow-Origin"] == "*" and int(headers["Retry-After"]) > 0
        body = props["CustomResponseBodies"][response["CustomResponseBodyKey"]]
        assert body["ContentType"] == "APPLICATION_JSON"
        assert json.loads(body["Content"])["error"] == "too_many_requests"


def test_outputs_tell_how_to_call_the_api(stage: Synthesized) -> None:
    outputs = stage.stateless.to_json()["Outputs"]
    assert {"ApiUrl", "ApiKeyId", "GetApiKeyCommand", "DashboardUrl", "AlarmTopicArn"} <= set(outputs)
    assert {"DocumentBucketName", "InteractionsTableName"} <= set(stage.stateful.to_json()["Outputs"])
    site_outputs = {name for name in outputs if name.startswith("Site")}
    assert site_outputs == ({"SiteDocsKeyId", "SiteDocsGetKeyCommand"} if stage.stage == "dev" else set())
