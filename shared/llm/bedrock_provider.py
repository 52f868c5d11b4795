"""Amazon Bedrock chat models through boto3's ``bedrock-runtime`` Converse / ConverseStream APIs.

boto3's own retries are off (one attempt; :mod:`shared.llm.resilience` decides about retries) and its
timeouts are bounded. Every botocore exception becomes an :class:`~shared.llm.base.LLMError`
(:func:`classify_botocore_error`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from shared.llm.base import ChatMessage, ErrorKind, LLMError, clip, parse_retry_after

_CODE_KINDS: dict[str, ErrorKind] = {
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
_FILTER_STOPS = frozenset({"content_filtered", "guardrail_intervened"})


def bedrock_client(
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    timeout: float = 20.0,
    connect_timeout: float | None = None,
) -> Any:
    """A ``bedrock-runtime`` client: one attempt per call (botocore's ``total_max_attempts`` counts the first
    request; its ``max_attempts`` would still allow one retry), bounded connect and read timeouts."""
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
        kind = _CODE_KINDS.get(code)
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


def converse_request(
    model_id: str, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
) -> dict[str, Any]:
    """The Converse request: system messages go to ``system``, the rest alternate user/assistant."""
    system = [{"text": m.content} for m in messages if m.role == "system"]
    turns = [{"role": m.role, "content": [{"text": m.content}]} for m in messages if m.role != "system"]
    request: dict[str, Any] = {
        "modelId": model_id,
        "messages": turns,
        "inferenceConfig": {"maxTokens": max_tokens, "temperature": temperature},
    }
    if system:
        request["system"] = system
    return request


class BedrockChat:
    """``bedrock:<model id>`` through Converse (``complete``) and ConverseStream (``stream``)."""

    def __init__(
        self,
        model_id: str,
        *,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout: float = 20.0,
    ) -> None:
        self.model_id = model_id
        self.name = f"bedrock:{model_id}"
        self.region = region
        self.endpoint_url = endpoint_url
        self.timeout = timeout
        self._client = client

    def __repr__(self) -> str:
        return f"BedrockChat(model_id={self.model_id!r}, region={self.region!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = bedrock_client(
                    region=self.region, endpoint_url=self.endpoint_url, timeout=self.timeout
                )
            except Exception as exc:
                raise classify_botocore_error(exc, self.name) from exc
        return self._client

    def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        request = converse_request(self.model_id, messages, max_tokens=max_tokens, temperature=temperature)
        try:
            response = self.client.converse(**request)
            stop = response.get("stopReason")
            blocks = response["output"]["message"]["content"]
            text = "".join(b["text"] for b in blocks if isinstance(b, dict) and "text" in b)
        except Exception as exc:
            raise classify_botocore_error(exc, self.name) from exc
        if stop in _FILTER_STOPS:
            raise LLMError("content_filter", f"the reply was stopped ({stop})", provider=self.name)
        return text

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        request = converse_request(self.model_id, messages, max_tokens=max_tokens, temperature=temperature)
        events: Any = None
        try:
            response = self.client.converse_stream(**request)
            events = response["stream"]
            for event in events:
                if "contentBlockDelta" in event:
                    text = event["contentBlockDelta"].get("delta", {}).get("text")
                    if text:
                        yield text
                elif "messageStop" in event:
                    stop = event["messageStop"].get("stopReason")
                    if stop in _FILTER_STOPS:
                        raise LLMError(
                            "content_filter", f"the reply was stopped ({stop})", provider=self.name
                        )
                else:  # an exception event that botocore did not raise itself
                    for key, value in event.items():
                        if key.endswith("Exception"):
                            code = key[0].upper() + key[1:]
                            message = value.get("message", "") if isinstance(value, dict) else str(value)
                            kind = _CODE_KINDS.get(code, "server")
                            raise LLMError(kind, clip(f"{code}: {message}"), provider=self.name)
        except Exception as exc:
            raise classify_botocore_error(exc, self.name) from exc
        finally:
            if events is not None and hasattr(events, "close"):
                with contextlib.suppress(Exception):  # closing a broken stream must not mask the real error
                    events.close()
