"""The REST API: routes to the query and health functions, API key and usage plan, method throttling for
the routes without a key, request validation, access logs, X-Ray, CORS by setting, and (prod) a WAF web
ACL."""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.config import ApiConfig
from infra.nag import acknowledge

# GET routes without an API key, served by the small health function: the usage plan does not reach them,
# so each has its own method throttle (ApiConfig.public_throttle_*)
PUBLIC_ROUTES = ("/health", "/openapi.json", "/docs")

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
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=removal_policy
        )
        self.api = self._rest_api(config)
        self._gateway_responses(config)
        self._routes(query_function=query_function, health_function=health_function)
        self._usage_plan(config)
        self._waf(config)
        self._acknowledge_api()

    def _rest_api(self, config: ApiConfig) -> apigw.RestApi:
        cors = (
            apigw.CorsOptions(
                allow_origins=list(config.cors_allow_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Content-Type", "X-Api-Key", "X-Amz-Date", "Authorization"],
            )
            if config.cors_allow_origins
            else None
        )
        return apigw.RestApi(
            self,
            "Api",
            description="RAG Explorer: cited answers from your documentation",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            default_cors_preflight_options=cors,
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
                f"{path}/GET": apigw.MethodDeploymentOptions(
                    metrics_enabled=True,
                    logging_level=apigw.MethodLoggingLevel.ERROR,
                    data_trace_enabled=False,
                    throttling_rate_limit=config.public_throttle_rate_limit,
                    throttling_burst_limit=config.public_throttle_burst_limit,
                )
                for path in PUBLIC_ROUTES
            },
        )

    def _gateway_responses(self, config: ApiConfig) -> None:
        cors_headers = {"Access-Control-Allow-Origin": self._origin_header(config.cors_allow_origins)}
        self.api.add_gateway_response(
            "BadRequestBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="422",
            templates={"application/json": VALIDATION_ERROR_TEMPLATE},
            response_headers=cors_headers if config.cors_allow_origins else None,
        )
        for name, response_type in (
            ("Default4xx", apigw.ResponseType.DEFAULT_4_XX),
            ("Default5xx", apigw.ResponseType.DEFAULT_5_XX),
        ):
            self.api.add_gateway_response(
                name,
                type=response_type,
                templates={"application/json": GATEWAY_ERROR_TEMPLATE},
                response_headers=cors_headers if config.cors_allow_origins else None,
            )

    def _routes(self, *, query_function: lambda_.IFunction, health_function: lambda_.IFunction) -> None:
        validator = self.api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )
        query_model = self.api.add_model("QueryRequest", content_type="application/json", schema=QUERY_SCHEMA)
        search_model = self.api.add_model(
            "SearchRequest", content_type="application/json", schema=SEARCH_SCHEMA
        )
        query = apigw.LambdaIntegration(query_function, scope_permission_to_method=False)
        health = apigw.LambdaIntegration(health_function, scope_permission_to_method=False)

        root = self.api.root
        root.add_resource("query").add_method(
            "POST",
            query,
            api_key_required=True,
            request_validator=validator,
            request_models={"application/json": query_model},
        )
        root.add_resource("search").add_method(
            "POST",
            query,
            api_key_required=True,
            request_validator=validator,
            request_models={"application/json": search_model},
        )
        # without a key: liveness (no dependency called) and the API's own description, readable in a
        # browser; the health function serves the same resolver as the query function, at a fraction of
        # its memory
        public = {path: root.add_resource(path.lstrip("/")) for path in PUBLIC_ROUTES}
        for resource in public.values():
            resource.add_method("GET", health, api_key_required=False)
        public["/health"].add_resource("detailed").add_method("GET", health, api_key_required=True)

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
        self.usage_plan.add_api_stage(stage=self.api.deployment_stage)
        self.usage_plan.add_api_key(self.api_key)

    def _waf(self, config: ApiConfig) -> None:
        self.web_acl: wafv2.CfnWebACL | None = None
        if config.waf:
            self.web_acl = self._web_acl()
            wafv2.CfnWebACLAssociation(
                self,
                "WebAclAssociation",
                resource_arn=self.api.deployment_stage.stage_arn,
                web_acl_arn=self.web_acl.attr_arn,
            )
        else:
            acknowledge(
                self.api,
                "AwsSolutions-APIG3",
                "dev stage: no WAF web ACL (about 10 USD/month). Keyed callers are limited by the usage "
                "plan, the keyless routes /health, /openapi.json and /docs by their own method throttling, "
                "and the whole stage by stage throttling. The prod stage attaches one.",
            )

    def _acknowledge_api(self) -> None:
        acknowledge(
            self.api,
            "AwsSolutions-APIG4",
            "Callers of /query, /search and /health/detailed are identified by API key; the API serves "
            "published documentation and has no end-user identity to authorize. /health, /openapi.json and "
            "/docs are public on purpose: no key, so no usage plan; method throttling (and in prod the WAF's "
            "per-IP rate rule) limits them.",
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

    @staticmethod
    def _origin_header(origins: tuple[str, ...]) -> str:
        return f"'{origins[0]}'" if len(origins) == 1 else "'*'"

    def _web_acl(self) -> wafv2.CfnWebACL:
        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
            )

        def managed(priority: int, name: str, excluded: tuple[str, ...] = ()) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=name,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                            )
                            for rule in excluded
                        ]
                        or None,
                    )
                ),
                visibility_config=visibility(name),
            )

        return wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility("RagExplorerApi"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=1000, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=visibility("RateLimitPerIp"),
                ),
                managed(1, "AWSManagedRulesAmazonIpReputationList"),
                # bodies may be up to 64 KiB (the API's own limit); the common set blocks those over 8 KiB
                managed(2, "AWSManagedRulesCommonRuleSet", excluded=("SizeRestrictions_BODY",)),
                managed(3, "AWSManagedRulesKnownBadInputsRuleSet"),
            ],
        )
