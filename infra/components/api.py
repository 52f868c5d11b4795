"""The REST API: routes to the query and health functions, the secret API key and its usage plan (with a
lower per-key throttle on the analytics routes), the help widget's publishable keys (``site_keys``),
method throttling for the routes without a key, request validation, access logs, X-Ray, CORS on API
Gateway's own errors, and (prod) a WAF web ACL.

CORS for the help widget is decided by the functions, per site (``shared.adapters.http_api.access``):
the preflights ``OPTIONS /query`` and ``OPTIONS /feedback`` go to the query function without a key, and
its answers to a publishable key carry ``Access-Control-Allow-Origin`` for that site's origins only.
API Gateway adds the header only to the errors it makes itself (:data:`CORS_ERROR_HEADERS`).
"""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy, Size
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.components.site_keys import PublishableKeys
from infra.components.waf import attach_web_acl
from infra.config import ApiConfig
from infra.nag import acknowledge
from shared.feedback import INTERACTION_ID_PATTERN

# GET routes without an API key, served by the small health function: the usage plan does not reach them,
# so each has its own method throttle (ApiConfig.public_throttle_*). The widget's script is public: a
# <script> tag sends no key.
PUBLIC_ROUTES = ("/health", "/openapi.json", "/docs", "/widget.js", "/widget/{file}")
# the help widget's CORS preflights (a browser sends them without the key): to the query function, which
# answers for the origins its sites list; throttled like the public routes. Only when the stage has sites.
PREFLIGHT_ROUTES = ("/query", "/feedback")
# reports (`rag-explorer report` against the API), for secret keys: to the query function, which refuses a
# publishable key with 403 itself. The query string (since, until: RFC 3339 date-times; collection) is
# optional and declared on the methods; the function validates it (422).
ANALYTICS_ROUTES = ("/analytics/summary", "/analytics/gaps")
ANALYTICS_QUERY_PARAMETERS = ("since", "until", "collection")
# responses at least this large are gzipped for clients that send Accept-Encoding: gzip
MIN_COMPRESSION_BYTES = 1024

# API Gateway checks only the shape the functions rely on; every field is validated again (with the
# HTTP API's own 422 error body) by the pydantic models in shared/models.py.
QUERY_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="QueryRequest",
    type=apigw.JsonSchemaType.OBJECT,
    required=["question"],
    properties={"question": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1)},
)
SEARCH_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="SearchRequest",
    type=apigw.JsonSchemaType.OBJECT,
    required=["query"],
    properties={"query": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1)},
)

FEEDBACK_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="FeedbackRequest",
    type=apigw.JsonSchemaType.OBJECT,
    required=["interaction_id"],
    properties={
        "interaction_id": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, pattern=INTERACTION_ID_PATTERN)
    },
)

# API Gateway's own errors (a missing or unknown key 403, a throttle or quota 429, an invalid body 422,
# an integration failure 5xx) come before any function could add CORS headers, and the widget must read
# them to show why. A gateway response may map a request header into a response header
# (x-amazon-apigateway-gateway-responses.responseParameters: method.request.header.<name>), so the
# caller's Origin is echoed, with Vary: Origin. That admits any origin, not just the sites' (a gateway
# response cannot test the origin), which is safe here: these responses are errors that hold no data, as
# '*' would be. A request without an Origin header (not a browser's cross-origin call) gets none.
CORS_ERROR_HEADERS = {
    "Access-Control-Allow-Origin": "method.request.header.Origin",
    "Access-Control-Expose-Headers": "'Retry-After'",
    "Vary": "'Origin'",
}

# API Gateway's own errors, in the error model of the HTTP API ({"error", "message", "details", ...})
VALIDATION_ERROR_TEMPLATE = json.dumps(
    {
        "error": "validation_error",
        "message": "$context.error.validationErrorString",
        "details": [],
        "request_id": "$context.requestId",
    }
)
GATEWAY_ERROR_TEMPLATE = (
    '{"error": "$context.error.responseType", "message": $context.error.messageString, '
    '"details": [], "request_id": "$context.requestId"}'
)


class QueryApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        query_function: lambda_.IFunction,
        health_function: lambda_.IFunction,
        config: ApiConfig,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        site_keys: PublishableKeys | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.site_keys = site_keys
        self._name = name
        self.preflight_routes = PREFLIGHT_ROUTES if site_keys and site_keys.sites else ()
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=removal_policy
        )
        self.api = self._rest_api(config)
        self._gateway_responses()
        self._routes(query_function=query_function, health_function=health_function)
        self._usage_plan(config)
        if site_keys is not None:
            site_keys.add_usage_plans(
                stage=self.api.deployment_stage,
                rate_limit=config.publishable_throttle_rate_limit,
                burst_limit=config.publishable_throttle_burst_limit,
                quota_per_day=config.publishable_quota_per_day,
            )
        self._waf(config)
        self._acknowledge_api()

    @property
    def keyless_methods(self) -> tuple[tuple[str, str], ...]:
        """(path, HTTP method) of every route without an API key: each has its own method throttle."""
        return tuple((path, "GET") for path in PUBLIC_ROUTES) + tuple(
            (path, "OPTIONS") for path in self.preflight_routes
        )

    def _rest_api(self, config: ApiConfig) -> apigw.RestApi:
        return apigw.RestApi(
            self,
            "Api",
            # per stage: API Gateway's metrics (the 5xx alarm's) have the API's name as their dimension
            rest_api_name=self._name,
            description="RAG Explorer: cited answers from your documentation",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            # gzip for clients that accept it: the widget's script (about a third of its size) and answers
            min_compression_size=Size.bytes(MIN_COMPRESSION_BYTES),
            # the account-level role API Gateway needs to write logs (kept when the stack is deleted)
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=self._stage_options(config),
        )

    def _stage_options(self, config: ApiConfig) -> apigw.StageOptions:
        return apigw.StageOptions(
            stage_name=config.stage_name,
            tracing_enabled=True,
            metrics_enabled=True,
            logging_level=apigw.MethodLoggingLevel.ERROR,
            data_trace_enabled=False,  # request bodies are user questions: never log them
            access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
            access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                caller=True,
                http_method=True,
                ip=True,
                protocol=True,
                request_time=True,
                resource_path=True,
                response_length=True,
                status=True,
                user=True,
            ),
            throttling_rate_limit=config.stage_throttle_rate_limit,
            throttling_burst_limit=config.stage_throttle_burst_limit,
            # a method's settings replace the stage's for it: the same logging, a lower throttle
            method_options={
                f"{path}/{method}": apigw.MethodDeploymentOptions(
                    metrics_enabled=True,
                    logging_level=apigw.MethodLoggingLevel.ERROR,
                    data_trace_enabled=False,
                    throttling_rate_limit=config.public_throttle_rate_limit,
                    throttling_burst_limit=config.public_throttle_burst_limit,
                )
                for path, method in self.keyless_methods
            },
        )

    def _gateway_responses(self) -> None:
        self.api.add_gateway_response(
            "BadRequestBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="422",
            templates={"application/json": VALIDATION_ERROR_TEMPLATE},
            response_headers=CORS_ERROR_HEADERS,
        )
        for name, response_type in (
            ("Default4xx", apigw.ResponseType.DEFAULT_4_XX),
            ("Default5xx", apigw.ResponseType.DEFAULT_5_XX),
        ):
            self.api.add_gateway_response(
                name,
                type=response_type,
                templates={"application/json": GATEWAY_ERROR_TEMPLATE},
                response_headers=CORS_ERROR_HEADERS,
            )

    def _routes(self, *, query_function: lambda_.IFunction, health_function: lambda_.IFunction) -> None:
        validator = self.api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )

        def model(name: str, schema: apigw.JsonSchema) -> dict[str, apigw.IModel]:
            return {
                "application/json": self.api.add_model(name, content_type="application/json", schema=schema)
            }

        query = apigw.LambdaIntegration(query_function, scope_permission_to_method=False)
        health = apigw.LambdaIntegration(health_function, scope_permission_to_method=False)

        root = self.api.root
        keyed = {
            "query": model("QueryRequest", QUERY_SCHEMA),
            "search": model("SearchRequest", SEARCH_SCHEMA),
            "feedback": model("FeedbackRequest", FEEDBACK_SCHEMA),
        }
        resources = {name: root.add_resource(name) for name in keyed}
        for name, request_models in keyed.items():
            resources[name].add_method(
                "POST",
                query,
                api_key_required=True,
                request_validator=validator,
                request_models=request_models,
            )
        for path in self.preflight_routes:
            resources[path.lstrip("/")].add_method("OPTIONS", query, api_key_required=False)
        self.analytics_methods = [
            root.resource_for_path(path).add_method(
                "GET",
                query,
                api_key_required=True,
                request_validator=validator,
                request_parameters={
                    f"method.request.querystring.{name}": False for name in ANALYTICS_QUERY_PARAMETERS
                },
            )
            for path in ANALYTICS_ROUTES
        ]
        # without a key: liveness (no dependency called), the API's own description, readable in a
        # browser, and the widget's script; the health function serves the same resolver as the query
        # function, at a fraction of its memory
        for path in PUBLIC_ROUTES:
            root.resource_for_path(path).add_method("GET", health, api_key_required=False)
        root.resource_for_path("/health/detailed").add_method("GET", health, api_key_required=True)

    def _usage_plan(self, config: ApiConfig) -> None:
        self.api_key = self.api.add_api_key("ApiKey", description="RAG Explorer default API key")
        self.usage_plan = self.api.add_usage_plan(
            "UsagePlan",
            description="RAG Explorer default usage plan",
            throttle=apigw.ThrottleSettings(
                rate_limit=config.throttle_rate_limit, burst_limit=config.throttle_burst_limit
            ),
            quota=apigw.QuotaSettings(limit=config.quota_per_day, period=apigw.Period.DAY),
        )
        # The analytics routes are heavier than /query (a summary reads a period of the interactions table;
        # gaps embeds and clusters up to 1,000 questions, in up to 29 s): each has a method throttle of its
        # own, per key, well below the plan's (ApiConfig.analytics_throttle_*). It is set here, in the
        # secret key's usage plan, and not in the stage's method settings: those count every caller
        # together, so a script holding a public site key could use them up with requests the function
        # refuses anyway (403), and keep the operator's reports out.
        self.usage_plan.add_api_stage(
            stage=self.api.deployment_stage,
            throttle=[
                apigw.ThrottlingPerMethod(
                    method=method,
                    throttle=apigw.ThrottleSettings(
                        rate_limit=config.analytics_throttle_rate_limit,
                        burst_limit=config.analytics_throttle_burst_limit,
                    ),
                )
                for method in self.analytics_methods
            ],
        )
        self.usage_plan.add_api_key(self.api_key)

    def _waf(self, config: ApiConfig) -> None:
        self.web_acl = (
            attach_web_acl(
                self,
                stage=self.api.deployment_stage,
                publishable_requests_per_ip=config.publishable_requests_per_ip,
            )
            if config.waf
            else None
        )
        if self.web_acl is None:
            acknowledge(
                self.api,
                "AwsSolutions-APIG3",
                "dev stage: no WAF web ACL (about 10 USD/month, a third of dev's idle cost). Keyed callers, "
                "the help widget's publishable keys included, are limited by their usage plans (per-key "
                "throttle and daily quota), the keyless routes by their own method throttling, the whole "
                "stage by stage throttling; dev has no per-address limit. The prod stage attaches one.",
            )

    def _acknowledge_api(self) -> None:
        acknowledge(
            self.api,
            "AwsSolutions-APIG4",
            "Callers of /query, /search, /feedback, /health/detailed and /analytics/* are identified by API "
            "key (a help widget's publishable key can call only /query and /feedback: the functions check "
            "it); the API "
            "serves published documentation and has no end-user identity to authorize. /health, "
            "/openapi.json, /docs, the widget's script and the CORS preflights are public on purpose: no "
            "key, so no usage plan; method throttling (and in prod the WAF's per-IP rate rules) limits them.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-COG4",
            "No Cognito user pool: clients are services and the CLI, authenticated by API key.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-level logging role uses the AWS managed policy made for exactly that.",
        )

    @property
    def url(self) -> str:
        return self.api.url
