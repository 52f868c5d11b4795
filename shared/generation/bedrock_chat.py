"""Amazon Bedrock chat through boto3's Converse API (boto3's own retries off; resilience decides)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from shared.generation.base import ChatMessage, ErrorKind, LLMError

_KINDS: dict[str, ErrorKind] = {
    "ThrottlingException": "rate_limit",
    "ServiceQuotaExceededException": "quota",
    "AccessDeniedException": "auth",
    "UnrecognizedClientException": "auth",
    "ExpiredTokenException": "auth",
    "ValidationException": "bad_request",
    "ResourceNotFoundException": "bad_request",
    "ModelTimeoutException": "timeout",
    "ModelNotReadyException": "server",
    "ServiceUnavailableException": "server",
    "InternalServerException": "server",
    "ModelErrorException": "server",
}


def map_bedrock_error(exc: Exception, provider: str) -> LLMError:
    from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

    if isinstance(exc, ReadTimeoutError):
        return LLMError("timeout", str(exc)[:200], provider=provider)
    if isinstance(exc, ConnectionError):
        return LLMError("connection", str(exc)[:200], provider=provider)
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        kind = _KINDS.get(code) or ("server" if (status or 500) >= 500 else "bad_request")
        return LLMError(
            kind,
            f"{code}: {exc.response.get('Error', {}).get('Message', '')}"[:300],
            provider=provider,
            status=status,
        )
    return LLMError("malformed", str(exc)[:200], provider=provider)


class BedrockChat:
    def __init__(
        self, model_id: str, *, client: Any = None, region: str | None = None, timeout: float = 20.0
    ) -> None:
        self.model_id = model_id
        self.name = f"bedrock:{model_id}"
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=timeout, connect_timeout=5
            )
            client = boto3.client("bedrock-runtime", region_name=region, config=config)
        self._client = client

    def _request(self, messages: Sequence[ChatMessage], max_tokens: int) -> dict[str, Any]:
        return {
            "modelId": self.model_id,
            "system": [{"text": m.content} for m in messages if m.role == "system"],
            "messages": [
                {"role": m.role, "content": [{"text": m.content}]} for m in messages if m.role != "system"
            ],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": 0},
        }

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int = 512) -> str:
        try:
            resp = self._client.converse(**self._request(messages, max_tokens))
        except Exception as exc:
            raise map_bedrock_error(exc, self.name) from exc
        if resp.get("stopReason") == "content_filtered":
            raise LLMError("content_filter", "the provider filtered the answer", provider=self.name)
        try:
            return "".join(part.get("text", "") for part in resp["output"]["message"]["content"])
        except (KeyError, TypeError) as exc:
            raise LLMError("malformed", "unexpected Converse response", provider=self.name) from exc

    def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int = 512) -> Iterator[str]:
        try:
            resp = self._client.converse_stream(**self._request(messages, max_tokens))
            for event in resp["stream"]:
                text = event.get("contentBlockDelta", {}).get("delta", {}).get("text")
                if text:
                    yield text
        except LLMError:
            raise
        except Exception as exc:
            raise map_bedrock_error(exc, self.name) from exc
