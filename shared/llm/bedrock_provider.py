"""Amazon Bedrock chat models through boto3's ``bedrock-runtime`` Converse / ConverseStream APIs.

boto3's own retries are off (one attempt; :mod:`shared.llm.resilience` decides about retries) and its
timeouts are bounded. Every botocore exception becomes an :class:`~shared.llm.base.LLMError`
(:func:`classify_botocore_error`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from shared.llm.base import ChatMessage, LLMError, clip
from shared.remote.bedrock import CODE_KINDS, bedrock_client, classify_botocore_error

_FILTER_STOPS = frozenset({"content_filtered", "guardrail_intervened"})


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
                            kind = CODE_KINDS.get(code, "server")
                            raise LLMError(kind, clip(f"{code}: {message}"), provider=self.name)
        except Exception as exc:
            raise classify_botocore_error(exc, self.name) from exc
        finally:
            if events is not None and hasattr(events, "close"):
                with contextlib.suppress(Exception):  # closing a broken stream must not mask the real error
                    events.close()
