"""Anthropic's Messages API (``POST /v1/messages``, JSON or server-sent events) through the ``anthropic``
SDK, with the SDK's own retries off (:mod:`shared.llm.resilience` retries, once, deliberately).

The key is always passed explicitly (:func:`shared.llm.providers.resolve_endpoint` found it), so the SDK
never falls back on its own credential files. Every SDK exception becomes an
:class:`~shared.llm.base.LLMError` (:func:`classify_anthropic_error`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from shared.extras import needs_extra
from shared.llm.base import ChatMessage, ErrorKind, LLMError, clip, parse_retry_after

if TYPE_CHECKING:
    import anthropic

#: ``error.type`` of an error body (also inside a stream, whose HTTP status is 200) → our kind.
ERROR_TYPES: dict[str, ErrorKind] = {
    "authentication_error": "auth",
    "permission_error": "auth",
    "billing_error": "quota",
    "rate_limit_error": "rate_limit",
    "overloaded_error": "server",
    "api_error": "server",
    "timeout_error": "timeout",
    "invalid_request_error": "bad_request",
    "not_found_error": "bad_request",
    "request_too_large": "bad_request",
}
_REFUSAL = "refusal"


def messages_request(
    model: str, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
) -> dict[str, Any]:
    """System messages go to ``system``; the rest are the turns. ``temperature`` is not sent: the current
    Messages API (and SDK) takes no sampling parameters; the prompt and the verification keep answers
    grounded."""
    request: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": m.role, "content": m.content} for m in messages if m.role != "system"],
    }
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    if system:
        request["system"] = system
    return request


class AnthropicChat:
    """``anthropic:<model>``: ``complete`` (one JSON reply) and ``stream`` (``text_delta`` events)."""

    def __init__(
        self,
        model: str,
        *,
        client: anthropic.Anthropic | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 20.0,
        provider: str = "anthropic",
    ) -> None:
        self.model = model
        self.name = f"{provider}:{model}"
        self.base_url = base_url
        self.timeout = timeout
        self._api_key = api_key
        self._client = client

    def __repr__(self) -> str:  # never shows the key
        return f"AnthropicChat(model={self.model!r}, base_url={self.base_url!r}, timeout={self.timeout})"

    @property
    def client(self) -> anthropic.Anthropic:
        if self._client is None:
            with needs_extra("cloud", "Anthropic's Messages API (the anthropic SDK)"):
                import anthropic

            try:
                self._client = anthropic.Anthropic(
                    api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
                )
            except Exception as exc:
                raise classify_anthropic_error(exc, self.name) from exc
        return self._client

    def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        request = messages_request(self.model, messages, max_tokens=max_tokens, temperature=temperature)
        try:
            response: Any = self.client.messages.create(**request)
            if isinstance(response, str):  # a 200 whose body isn't JSON: the SDK returns the raw text
                raise LLMError("malformed", f"not a JSON reply: {clip(response, 120)!r}", provider=self.name)
            stop = response.stop_reason
            texts = [b.text for b in response.content or [] if getattr(b, "type", None) == "text"]
        except ImportError:  # the SDK is not installed: MissingExtraError names the extra
            raise
        except Exception as exc:
            raise classify_anthropic_error(exc, self.name) from exc
        if stop == _REFUSAL:
            raise LLMError("content_filter", "the model refused to answer", provider=self.name)
        if not texts:
            raise LLMError("malformed", "the reply has no text content", provider=self.name)
        return "".join(texts)

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        request = messages_request(self.model, messages, max_tokens=max_tokens, temperature=temperature)
        events: Any = None
        try:
            events = self.client.messages.create(**request, stream=True)
            for event in events:
                kind = getattr(event, "type", None)
                if kind == "content_block_delta" and getattr(event.delta, "type", None) == "text_delta":
                    if event.delta.text:
                        yield event.delta.text
                elif kind == "message_delta" and event.delta.stop_reason == _REFUSAL:
                    raise LLMError("content_filter", "the model refused to answer", provider=self.name)
        except ImportError:  # the SDK is not installed: MissingExtraError names the extra
            raise
        except Exception as exc:
            raise classify_anthropic_error(exc, self.name) from exc
        finally:
            if events is not None and hasattr(events, "close"):
                with contextlib.suppress(Exception):  # closing a broken stream must not mask the real error
                    events.close()


def classify_anthropic_error(exc: BaseException, provider: str) -> LLMError:
    """Map an ``anthropic`` SDK (or JSON decoding) exception onto an :class:`LLMError`."""
    import anthropic

    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, anthropic.APITimeoutError):  # before APIConnectionError: it is a subclass
        return LLMError("timeout", "the request timed out", provider=provider)
    if isinstance(exc, anthropic.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f"{exc.message} ({clip(str(cause), 160)})" if cause else exc.message
        return LLMError("connection", clip(detail), provider=provider)
    transport = {cls.__name__ for cls in type(exc).__mro__ if cls.__module__.startswith("httpx")}
    if "TimeoutException" in transport:  # the HTTP client's own errors, raised while a stream is read
        return LLMError("timeout", "the request timed out", provider=provider)
    if "TransportError" in transport:  # e.g. the connection dropped mid-stream
        return LLMError("connection", clip(f"{type(exc).__name__}: {exc}"), provider=provider)
    if isinstance(exc, anthropic.APIStatusError):
        return _classify_status(exc, provider)
    if isinstance(exc, anthropic.APIResponseValidationError):
        return LLMError("malformed", clip(exc.message), provider=provider, status=exc.status_code)
    if isinstance(exc, (json.JSONDecodeError, ValueError, KeyError, IndexError, TypeError, AttributeError)):
        return LLMError("malformed", f"unreadable response: {clip(str(exc), 200)}", provider=provider)
    if isinstance(exc, anthropic.AnthropicError):  # e.g. no credentials
        kind: ErrorKind = "auth" if "credential" in type(exc).__name__.lower() else "bad_request"
        return LLMError(kind, clip(str(exc)), provider=provider)
    return LLMError("server", f"unexpected {type(exc).__name__}: {clip(str(exc), 200)}", provider=provider)


def _classify_status(exc: anthropic.APIStatusError, provider: str) -> LLMError:
    status = exc.status_code
    body = exc.body.get("error") if isinstance(exc.body, dict) else None
    error = body if isinstance(body, dict) else {}
    message = clip(str(error.get("message") or exc.message))
    in_stream = status < 400  # an `error` event inside a 200 stream: only its type tells
    kind: ErrorKind | None = ERROR_TYPES.get(str(error.get("type") or "").lower())
    if kind is None:
        if status in (401, 403):
            kind = "auth"
        elif status == 402:
            kind = "quota"
        elif status == 429:
            kind = "rate_limit"
        elif status == 408:
            kind = "timeout"
        elif status >= 500 or in_stream:  # 529 is "overloaded"
            kind = "server"
        else:
            kind = "bad_request"
    headers = dict(exc.response.headers) if exc.response is not None else {}
    retry_after = parse_retry_after(headers) if kind in ("rate_limit", "server") else None
    return LLMError(
        kind, message, provider=provider, status=None if in_stream else status, retry_after=retry_after
    )
