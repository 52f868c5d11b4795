"""The WAF web ACL in front of the API (stages with ``ApiConfig.waf``): per-address rate limits, AWS's
IP-reputation list, common rules and known-bad inputs.

Two rate-based rules count requests per client address over 5 minutes: one over every route, and a lower
one over the help widget's routes (``/query`` and ``/feedback``, preflights included), where the key is
public and the usage plan's limit is shared by everyone who has the page. Both block with a 429 in the
API's error model that a page on any origin can read (a WAF response cannot echo the request's
``Origin``; it carries no data, so ``*`` is safe).
"""

from __future__ import annotations

import json

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

#: Rate-based rules count over this window (seconds); WAF allows 60, 120, 300 or 600.
RATE_WINDOW_S = 300
#: The paths of the widget's routes, matched anywhere in the URI after URL-decoding and lower-casing (so
#: that ``/v1/%71uery`` counts too); no other route contains them.
PUBLISHABLE_PATHS = ("/query", "/feedback")
RATE_LIMITED_BODY = "rate_limited"
RETRY_AFTER_S = 60

_RATE_LIMITED = json.dumps(
    {
        "error": "too_many_requests",
        "message": "Too many requests from this address; try again in a minute.",
        "details": [],
        "request_id": None,
    }
)


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _managed(priority: int, name: str, excluded: tuple[str, ...] = ()) -> wafv2.CfnWebACL.RuleProperty:
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
        visibility_config=_visibility(name),
    )


def _path_contains(text: str) -> wafv2.CfnWebACL.StatementProperty:
    return wafv2.CfnWebACL.StatementProperty(
        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
            positional_constraint="CONTAINS",
            search_string=text,
            text_transformations=[
                wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="URL_DECODE"),
                wafv2.CfnWebACL.TextTransformationProperty(priority=1, type="LOWERCASE"),
            ],
        )
    )


def _rate_rule(
    name: str, priority: int, limit: int, scope: wafv2.CfnWebACL.StatementProperty | None = None
) -> wafv2.CfnWebACL.RuleProperty:
    too_many = wafv2.CfnWebACL.CustomResponseProperty(
        response_code=429,
        custom_response_body_key=RATE_LIMITED_BODY,
        response_headers=[
            wafv2.CfnWebACL.CustomHTTPHeaderProperty(name="Retry-After", value=str(RETRY_AFTER_S)),
            wafv2.CfnWebACL.CustomHTTPHeaderProperty(name="Access-Control-Allow-Origin", value="*"),
            wafv2.CfnWebACL.CustomHTTPHeaderProperty(
                name="Access-Control-Expose-Headers", value="Retry-After"
            ),
        ],
    )
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(
            block=wafv2.CfnWebACL.BlockActionProperty(custom_response=too_many)
        ),
        statement=wafv2.CfnWebACL.StatementProperty(
            rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                limit=limit,
                aggregate_key_type="IP",
                evaluation_window_sec=RATE_WINDOW_S,
                scope_down_statement=scope,
            )
        ),
        visibility_config=_visibility(name),
    )


def attach_web_acl(
    scope: Construct,
    *,
    stage: apigw.Stage,
    publishable_requests_per_ip: int,
    requests_per_ip: int = 1000,
) -> wafv2.CfnWebACL:
    """A regional web ACL (``WebAcl``) associated with ``stage`` (``WebAclAssociation``), both created in
    ``scope`` under the ids they have always had, so that an upgrade updates them in place."""
    widget_routes = wafv2.CfnWebACL.StatementProperty(
        or_statement=wafv2.CfnWebACL.OrStatementProperty(
            statements=[_path_contains(path) for path in PUBLISHABLE_PATHS]
        )
    )
    web_acl = wafv2.CfnWebACL(
        scope,
        "WebAcl",
        scope="REGIONAL",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=_visibility("RagExplorerApi"),
        custom_response_bodies={
            RATE_LIMITED_BODY: wafv2.CfnWebACL.CustomResponseBodyProperty(
                content_type="APPLICATION_JSON", content=_RATE_LIMITED
            )
        },
        rules=[
            _rate_rule("RateLimitPerIp", 0, requests_per_ip),
            _rate_rule("WidgetRateLimitPerIp", 1, publishable_requests_per_ip, widget_routes),
            _managed(2, "AWSManagedRulesAmazonIpReputationList"),
            # bodies may be up to 64 KiB (the API's own limit); the common set blocks those over 8 KiB
            _managed(3, "AWSManagedRulesCommonRuleSet", excluded=("SizeRestrictions_BODY",)),
            _managed(4, "AWSManagedRulesKnownBadInputsRuleSet"),
        ],
    )
    wafv2.CfnWebACLAssociation(
        scope, "WebAclAssociation", resource_arn=stage.stage_arn, web_acl_arn=web_acl.attr_arn
    )
    return web_acl
