"""OpenAI and every OpenAI-compatible endpoint (Ollama, vLLM, Groq, Mistral, LM Studio, ...) via the
``openai`` SDK, with the SDK's own retries off (:mod:`shared.llm.resilience` retries, once, deliberately).

The SDK reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` when ``api_key`` / ``base_url`` aren't given.
Every SDK exception becomes an :class:`~shared.llm.base.LLMError` (:func:`classify_openai_error`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from shared.llm.base import ChatMessage, ErrorKind, LLMError, clip, parse_retry_after

if TYPE_CHECKING:
    import openai

_CONTENT_FILTER_CODES = frozenset({"content_filter", "content_policy_violation", "content_filtered"})
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "quota_exceeded"})
LOCAL_PLACEHOLDER_KEY = "not-needed"


def make_openai_client(
    *, base_url: str | None = None, api_key: str | None = None, timeout: float = 20.0, provider: str
) -> openai.OpenAI:
    """An ``openai.OpenAI`` client with ``max_retries=0``.

    A custom endpoint (``base_url`` or ``OPENAI_BASE_URL``) without any key gets a placeholder key:
    local servers (Ollama, vLLM, LM Studio) ignore it, and a server that wants a real one answers 401.
    """
    import openai

    if (
        api_key is None
        and not os.environ.get("OPENAI_API_KEY")
        and (base_url or os.environ.get("OPENAI_BASE_URL"))
    ):
        api_key = LOCAL_PLACEHOLDER_KEY
    try:
        return openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)
    except openai.OpenAIError as exc:  # missing credentials
        raise LLMError("auth", clip(str(exc)), provider=provider) from exc


def classify_openai_error(exc: BaseException, provider: str) -> LLMError:
    """Map an ``openai`` SDK (or JSON decoding) exception onto an :class:`LLMError`."""
    import openai

    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, openai.APITimeoutError):  # before APIConnectionError: it is a subclass
        return LLMError("timeout", "the request timed out", provider=provider)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f"{exc.message} ({clip(str(cause), 160)})" if cause else exc.message
        return LLMError("connection", detail, provider=provider)
    if isinstance(exc, openai.APIStatusError):
        return _classify_status(exc, provider)
    if isinstance(exc, openai.APIResponseValidationError):
        return LLMError("malformed", clip(exc.message), provider=provider, status=exc.status_code)
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return LLMError("content_filter", "the reply was stopped by a content filter", provider=provider)
    if isinstance(exc, openai.APIError):  # e.g. an `error` event inside a stream
        kind: ErrorKind = "content_filter" if exc.code in _CONTENT_FILTER_CODES else "server"
        return LLMError(kind, clip(exc.message), provider=provider)
    if isinstance(exc, (json.JSONDecodeError, ValueError, KeyError, IndexError, TypeError, AttributeError)):
        # a body that isn't the JSON the protocol promises (the SDK hands these through unwrapped)
        return LLMError("malformed", f"unreadable response: {clip(str(exc), 200)}", provider=provider)
    if isinstance(exc, openai.OpenAIError):
        return LLMError("bad_request", clip(str(exc)), provider=provider)
    return LLMError("server", f"unexpected {type(exc).__name__}: {clip(str(exc), 200)}", provider=provider)


def _classify_status(exc: openai.APIStatusError, provider: str) -> LLMError:
    import openai

    status = exc.status_code
    code = (exc.code or "").lower()
    err_type = (exc.type or "").lower()
    message = clip(_error_message(exc))
    headers = dict(exc.response.headers) if exc.response is not None else {}
    kind: ErrorKind
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)) or status in (401, 403):
        kind = "auth"
    elif isinstance(exc, openai.RateLimitError) or status == 429:
        kind = "quota" if code in _QUOTA_CODES or err_type in _QUOTA_CODES else "rate_limit"
    elif status == 408:
        kind = "timeout"
    elif status >= 500:
        kind = "server"
    elif code in _CONTENT_FILTER_CODES or err_type in _CONTENT_FILTER_CODES:
        kind = "content_filter"
    else:  # 400, 404 (unknown model), 409, 413, 422, ...
        kind = "bad_request"
    retry_after = parse_retry_after(headers) if kind in ("rate_limit", "server") else None
    return LLMError(kind, message, provider=provider, status=status, retry_after=retry_after)


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return exc.message


def _wire(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


class OpenAIChat:
    """``openai:<model>`` chat completions (``complete`` and ``stream``) through the ``openai`` SDK.

    ``token_param`` is the request field that limits the reply: ``max_tokens`` (understood by every
    OpenAI-compatible server) or ``max_completion_tokens`` (required by OpenAI's reasoning models).
    """

    def __init__(
        self,
        model: str,
        *,
        client: openai.OpenAI | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 20.0,
        token_param: str = "max_tokens",  # noqa: S107 - a field name, not a secret
    ) -> None:
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = base_url
        self.timeout = timeout
        self.token_param = token_param
        self._api_key = api_key
        self._client = client

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChat(model={self.model!r}, base_url={self.base_url!r}, timeout={self.timeout})"

    @property
    def client(self) -> openai.OpenAI:
        if self._client is None:
            self._client = make_openai_client(
                base_url=self.base_url, api_key=self._api_key, timeout=self.timeout, provider=self.name
            )
        return self._client

    def _request(
        self, messages: Sequence[ChatMessage], max_tokens: int, temperature: float
    ) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": _wire(messages),
            "temperature": temperature,
            self.token_param: max_tokens,
        }

    def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> str:
        try:
            response: Any = self.client.chat.completions.create(
                **self._request(messages, max_tokens, temperature)
            )
            if isinstance(response, str):  # a 200 whose body isn't JSON: the SDK returns the raw text
                raise LLMError("malformed", f"not a JSON reply: {clip(response, 120)!r}", provider=self.name)
            if not response.choices:
                raise LLMError("malformed", "the reply has no choices", provider=self.name)
            choice = response.choices[0]
            content = choice.message.content if choice.message is not None else None
        except Exception as exc:
            raise classify_openai_error(exc, self.name) from exc
        if choice.finish_reason == "content_filter":
            raise LLMError("content_filter", "the reply was stopped by a content filter", provider=self.name)
        if not isinstance(content, str):
            raise LLMError("malformed", "the reply has no text content", provider=self.name)
        return content

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        stream: Any = None
        try:
            stream = self.client.chat.completions.create(
                **self._request(messages, max_tokens, temperature), stream=True
            )
            for chunk in stream:
                if not getattr(chunk, "choices", None):
                    continue  # e.g. the final usage chunk
                choice = chunk.choices[0]
                delta = choice.delta.content if choice.delta is not None else None
                if delta:
                    yield delta
                if choice.finish_reason == "content_filter":
                    raise LLMError(
                        "content_filter", "the reply was stopped by a content filter", provider=self.name
                    )
        except Exception as exc:
            raise classify_openai_error(exc, self.name) from exc
        finally:
            if stream is not None and hasattr(stream, "close"):
                # closing a broken connection must not mask the real error
                with contextlib.suppress(Exception):
                    stream.close()
