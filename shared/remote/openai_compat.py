"""OpenAI-compatible plumbing shared by the OpenAI LLM provider and the OpenAI embedder: the client
(``max_retries=0``: :mod:`shared.remote.retry` retries, once, deliberately) and the classification of
every SDK exception."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from shared.extras import needs_extra
from shared.remote.errors import ErrorKind, clip, parse_retry_after
from shared.remote.errors import ModelCallError as LLMError

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
    with needs_extra("cloud", "OpenAI-compatible endpoints"):
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
