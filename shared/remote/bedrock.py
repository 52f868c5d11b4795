"""Amazon Bedrock plumbing shared by the Bedrock LLM provider and the Titan embedder: the client (no
retries of its own, bounded timeouts) and the classification of every botocore exception."""

from __future__ import annotations

from typing import Any

from shared.extras import needs_extra
from shared.remote.errors import ErrorKind, clip, parse_retry_after
from shared.remote.errors import ModelCallError as LLMError

CODE_KINDS: dict[str, ErrorKind] = {
    "ThrottlingException": "rate_limit",
    "TooManyRequestsException": "rate_limit",
    "ServiceQuotaExceededException": "quota",
    "AccessDeniedException": "auth",
    "UnrecognizedClientException": "auth",
    "InvalidSignatureException": "auth",
    "IncompleteSignature": "auth",
    "MissingAuthenticationToken": "auth",
    "ExpiredTokenException": "auth",
    "InvalidClientTokenId": "auth",
    "ValidationException": "bad_request",
    "ResourceNotFoundException": "bad_request",
    "ModelTimeoutException": "timeout",
    "ServiceUnavailableException": "server",
    "InternalServerException": "server",
    "ModelNotReadyException": "server",
    "ModelErrorException": "server",
    "ModelStreamErrorException": "server",
}


def bedrock_client(
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    timeout: float = 20.0,
    connect_timeout: float | None = None,
) -> Any:
    """A ``bedrock-runtime`` client: one attempt per call (botocore's ``total_max_attempts`` counts the first
    request; its ``max_attempts`` would still allow one retry), bounded connect and read timeouts."""
    with needs_extra("aws", "Amazon Bedrock"):
        import boto3
        from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},  # "max_attempts" would allow 1 retry
        read_timeout=timeout,
        connect_timeout=min(timeout, 5.0) if connect_timeout is None else connect_timeout,
    )
    return boto3.client("bedrock-runtime", region_name=region, endpoint_url=endpoint_url, config=config)


def classify_botocore_error(exc: BaseException, provider: str) -> LLMError:
    """Map a botocore / boto3 exception onto an :class:`LLMError`."""
    from botocore import exceptions as bce
    from botocore.parsers import ResponseParserError

    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, bce.ClientError):  # includes EventStreamError (errors inside a stream)
        error = exc.response.get("Error", {}) or {}
        meta = exc.response.get("ResponseMetadata", {}) or {}
        code = str(error.get("Code") or "")
        code = code[:1].upper() + code[1:]  # stream exception events say "throttlingException"
        raw_status = meta.get("HTTPStatusCode")
        status = int(raw_status) if isinstance(raw_status, int) and raw_status > 0 else None
        message = clip(str(error.get("Message") or code or exc))
        kind = CODE_KINDS.get(code)
        if kind is None:
            if status == 429:
                kind = "rate_limit"
            elif status in (401, 403):
                kind = "auth"
            elif status == 408:
                kind = "timeout"
            elif status is not None and status >= 500:
                kind = "server"
            else:
                kind = "bad_request"
        retry_after = (
            parse_retry_after(meta.get("HTTPHeaders") or {}) if kind in ("rate_limit", "server") else None
        )
        detail = f"{code}: {message}" if code and not message.startswith(code) else message
        return LLMError(kind, detail, provider=provider, status=status, retry_after=retry_after)
    if isinstance(exc, (bce.ReadTimeoutError, bce.ConnectTimeoutError)):
        return LLMError("timeout", clip(str(exc)), provider=provider)
    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectionClosedError, bce.ConnectionError)):
        return LLMError("connection", clip(str(exc)), provider=provider)
    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError, bce.CredentialRetrievalError)):
        return LLMError("auth", clip(str(exc)), provider=provider)
    if isinstance(exc, bce.NoRegionError):
        return LLMError("bad_request", "no AWS region: set aws_region or AWS_REGION", provider=provider)
    if isinstance(exc, (ResponseParserError, ValueError, KeyError, TypeError, AttributeError)):
        return LLMError("malformed", f"unreadable response: {clip(str(exc), 200)}", provider=provider)
    if isinstance(exc, bce.HTTPClientError):
        return LLMError("connection", clip(str(exc)), provider=provider)
    if isinstance(exc, bce.BotoCoreError):
        return LLMError("server", clip(str(exc)), provider=provider)
    return LLMError("server", f"unexpected {type(exc).__name__}: {clip(str(exc), 200)}", provider=provider)
