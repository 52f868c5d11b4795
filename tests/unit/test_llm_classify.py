"""SDK and botocore exceptions → LLMError kinds (built in memory: no network)."""

from __future__ import annotations

import json

import botocore.parsers  # noqa: F401 - imported at collection (urllib3 probes IPv6 with a socket)
import httpx2
import openai
import pytest
from botocore import exceptions as bce

from shared.llm.base import ChatMessage
from shared.llm.bedrock_provider import converse_request
from shared.remote.bedrock import classify_botocore_error
from shared.remote.openai_compat import classify_openai_error

P = "openai:gpt-4o-mini"
REQUEST = httpx2.Request("POST", "https://api.openai.com/v1/chat/completions")


def status_error(
    cls: type[openai.APIStatusError], status: int, body: object, headers: dict[str, str] | None = None
) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers or {}, request=REQUEST)
    return cls(f"Error code: {status}", response=response, body=body)


@pytest.mark.parametrize(
    ("exc", "kind", "status"),
    [
        (
            status_error(openai.AuthenticationError, 401, {"message": "bad key", "code": "invalid_api_key"}),
            "auth",
            401,
        ),
        (status_error(openai.PermissionDeniedError, 403, {"message": "region"}), "auth", 403),
        (
            status_error(openai.RateLimitError, 429, {"message": "slow", "code": "rate_limit_exceeded"}),
            "rate_limit",
            429,
        ),
        (
            status_error(openai.RateLimitError, 429, {"message": "pay", "code": "insufficient_quota"}),
            "quota",
            429,
        ),
        (status_error(openai.BadRequestError, 400, {"message": "too long"}), "bad_request", 400),
        (
            status_error(openai.BadRequestError, 400, {"message": "no", "code": "content_filter"}),
            "content_filter",
            400,
        ),
        (status_error(openai.NotFoundError, 404, {"message": "no such model"}), "bad_request", 404),
        (status_error(openai.InternalServerError, 500, {"message": "boom"}), "server", 500),
        (status_error(openai.InternalServerError, 503, "<html>overloaded</html>"), "server", 503),
        (status_error(openai.APIStatusError, 408, None), "timeout", 408),
        (openai.APITimeoutError(REQUEST), "timeout", None),
        (openai.APIConnectionError(request=REQUEST), "connection", None),
        (json.JSONDecodeError("Expecting value", "{", 1), "malformed", None),
        (openai.APIError("stream error", REQUEST, body={"message": "x"}), "server", None),
        (openai.ContentFilterFinishReasonError(), "content_filter", None),
    ],
)
def test_openai_errors(exc: BaseException, kind: str, status: int | None) -> None:
    error = classify_openai_error(exc, P)
    assert error.kind == kind
    assert error.status == status
    assert error.provider == P


def test_openai_retry_after_is_kept() -> None:
    exc = status_error(openai.RateLimitError, 429, {"message": "slow"}, {"Retry-After": "7"})
    assert classify_openai_error(exc, P).retry_after == 7.0
    exc = status_error(openai.RateLimitError, 429, {"message": "slow"}, {"retry-after-ms": "1500"})
    assert classify_openai_error(exc, P).retry_after == 1.5
    exc = status_error(openai.BadRequestError, 400, {"message": "no"}, {"Retry-After": "7"})
    assert classify_openai_error(exc, P).retry_after is None


def client_error(code: str, status: int, headers: dict[str, str] | None = None) -> bce.ClientError:
    return bce.ClientError(
        {
            "Error": {"Code": code, "Message": "msg"},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
        },
        "Converse",
    )


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (client_error("ThrottlingException", 429), "rate_limit"),
        (client_error("throttlingException", 0), "rate_limit"),  # as an event-stream exception
        (client_error("ServiceQuotaExceededException", 400), "quota"),
        (client_error("AccessDeniedException", 403), "auth"),
        (client_error("UnrecognizedClientException", 403), "auth"),
        (client_error("ExpiredTokenException", 400), "auth"),
        (client_error("ValidationException", 400), "bad_request"),
        (client_error("ResourceNotFoundException", 404), "bad_request"),
        (client_error("ModelTimeoutException", 408), "timeout"),
        (client_error("ServiceUnavailableException", 503), "server"),
        (client_error("InternalServerException", 500), "server"),
        (client_error("ModelNotReadyException", 429), "server"),
        (client_error("modelStreamErrorException", 0), "server"),
        (client_error("SomethingNew", 502), "server"),
        (client_error("SomethingNew", 418), "bad_request"),
        (bce.ReadTimeoutError(endpoint_url="http://x"), "timeout"),
        (bce.ConnectTimeoutError(endpoint_url="http://x"), "timeout"),
        (bce.EndpointConnectionError(endpoint_url="http://x"), "connection"),
        (bce.NoCredentialsError(), "auth"),
        (bce.NoRegionError(), "bad_request"),
        (KeyError("output"), "malformed"),
    ],
)
def test_botocore_errors(exc: BaseException, kind: str) -> None:
    assert classify_botocore_error(exc, "bedrock:m").kind == kind


def test_botocore_retry_after_and_status() -> None:
    error = classify_botocore_error(
        client_error("ThrottlingException", 429, {"retry-after": "3"}), "bedrock:m"
    )
    assert (error.status, error.retry_after) == (429, 3.0)
    assert error.message == "ThrottlingException: msg"


def test_converse_request_shape() -> None:
    request = converse_request(
        "anthropic.claude-3-haiku-20240307-v1:0",
        [ChatMessage("system", "rules"), ChatMessage("user", "question")],
        max_tokens=100,
        temperature=0.0,
    )
    assert request == {
        "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "messages": [{"role": "user", "content": [{"text": "question"}]}],
        "inferenceConfig": {"maxTokens": 100, "temperature": 0.0},
        "system": [{"text": "rules"}],
    }
