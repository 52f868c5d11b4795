"""The OpenAPI side of the API: the resolver whose document says exactly what the API does, and the
response declarations the routes share."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, content_types
from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

from shared.adapters.http_api.access import Access
from shared.models import ErrorResponse

API_TITLE = "RAG Explorer API"
API_DESCRIPTION = (
    "Answers questions from your documentation with numbered citations, or refuses with reasons. "
    "Every error has the same body: error, message, details, request_id, timestamp."
)
REQUEST_ID_HEADER = "x-request-id"
QUERY_ROUTES = frozenset({"/query", "/search"})
QUERY_ERRORS = (400, 413, 415, 422, 503, 500)
#: The operations documented with the optional x-api-key scheme and its 403/429. Where keys are enforced,
#: every route but GET /health needs one (local_cli.api_keys.OPEN_ROUTES); the health routes' documented
#: responses stay 200/503 (tests/unit/test_http_api.py pins them).
KEYED_OPERATIONS = frozenset(
    {
        ("post", "/query"),
        ("post", "/search"),
        ("post", "/feedback"),
        ("get", "/analytics/summary"),
        ("get", "/analytics/gaps"),
    }
)
API_KEY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "x-api-key",
    "description": "Required where the API is deployed behind API Gateway with API keys, or served with "
    "`rag-explorer serve --api-key-file`; every route but GET /health then needs it.",
}
GATEWAY_RESPONSES: dict[str, Any] = {
    "403": {
        "description": "Missing or wrong x-api-key (where API keys are required)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    },
    "429": {
        "description": "Over the rate limit for this API key; retry after Retry-After seconds",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    },
}
#: The request text fields whose length the running service limits (``max_question_chars``).
TEXT_FIELDS = (("QueryRequest", "question"), ("SearchRequest", "query"))


def error_responses(*codes: int) -> dict[int, Any]:
    descriptions = {
        400: "Malformed JSON",
        413: "Request body too large",
        403: "This key may not do that (a publishable key: other routes, origins or collections)",
        404: "No such interaction (or not one this key may see)",
        415: "Content type is not JSON",
        422: "Invalid request: every invalid field is listed in details",
        503: "The search index is unavailable; retry later",
        500: "Internal error",
    }
    return {
        code: {
            "description": descriptions[code],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorResponse}},
        }
        for code in codes
    }


def ok_response(model: type, description: str) -> dict[int, Any]:
    return {200: {"description": description, "content": {content_types.APPLICATION_JSON: {"model": model}}}}


class ApiResolver(APIGatewayRestResolver):
    """The Powertools resolver, with an OpenAPI document that says exactly what the API does.

    * With validation on, Powertools documents a 422 ``HTTPValidationError`` on every route; this API's
      422 (and every other error) is :class:`~shared.models.ErrorResponse`, declared per route instead.
    * The question/query ``maxLength`` is the running service's limit (``text_limit``), and a ``pattern``
      says that a blank text is refused.
    * The optional ``x-api-key`` scheme, with its 403 and 429, on ``POST /query`` and ``POST /search``.
    """

    text_limit: int | None = None
    access: Access | None = None

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """The proxy result, with ``x-request-id`` (the id that error bodies and log lines quote)."""
        result = super().resolve(event, context)
        context_ = event.get("requestContext") if isinstance(event, Mapping) else None
        rid = (context_ or {}).get("requestId") or getattr(context, "aws_request_id", None)
        extra = {REQUEST_ID_HEADER: str(rid)} if rid else {}
        if self.access is not None and isinstance(event, Mapping):
            extra |= self.access.cors_headers(event)
        multi = result.get("multiValueHeaders")
        for name, value in extra.items():
            if isinstance(multi, dict):
                multi[name] = [value]
            else:
                result.setdefault("headers", {})[name] = value
        return result

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> OpenAPI:
        spec = super().get_openapi_schema(*args, **kwargs)
        data = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        for path, item in data.get("paths", {}).items():
            for method, operation in item.items():
                if not isinstance(operation, dict):
                    continue
                responses = operation.setdefault("responses", {})
                if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                    responses.pop("422")
                if (method, path) in KEYED_OPERATIONS:
                    operation["security"] = [{"api_key": []}, {}]
                    for code, response in GATEWAY_RESPONSES.items():
                        responses.setdefault(code, response)
        components = data.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
            schemas.pop(name, None)
        for model, field in TEXT_FIELDS:
            prop = schemas.get(model, {}).get("properties", {}).get(field)
            if prop is not None:
                if self.text_limit is not None:
                    prop["maxLength"] = min(prop.get("maxLength", self.text_limit), self.text_limit)
                prop["pattern"] = r"\S"  # not blank (the service strips the text)
        components.setdefault("securitySchemes", {})["api_key"] = API_KEY_SCHEME
        return OpenAPI.model_validate(data)
