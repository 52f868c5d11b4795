"""OpenAI and every OpenAI-compatible endpoint (Ollama, vLLM, Groq, Mistral, LM Studio, ...) via the
`openai` SDK. The SDK's own retries are off: :mod:`shared.generation.resilience` decides. ``OPENAI_API_KEY``
and ``OPENAI_BASE_URL`` are honoured by the SDK itself."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from shared.generation.base import ChatMessage, ErrorKind, LLMError


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def map_openai_error(exc: Exception, provider: str) -> LLMError:
    import openai

    status = getattr(exc, "status_code", None)
    kind: ErrorKind
    if isinstance(exc, openai.APITimeoutError):
        kind = "timeout"
    elif isinstance(exc, openai.APIConnectionError):
        kind = "connection"
    elif isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        kind = "auth"
    elif isinstance(exc, openai.RateLimitError):
        code = getattr(exc, "code", None) or ""
        kind = "quota" if code == "insufficient_quota" else "rate_limit"
    elif isinstance(exc, openai.BadRequestError):
        kind = "content_filter" if (getattr(exc, "code", None) or "") == "content_filter" else "bad_request"
    elif isinstance(exc, openai.APIStatusError):
        kind = "server" if (status or 500) >= 500 else "bad_request"
    elif isinstance(exc, openai.APIResponseValidationError | ValueError):
        kind = "malformed"
    else:
        kind = "server"
    message = str(getattr(exc, "message", None) or exc)[:300]
    return LLMError(kind, message, provider=provider, status=status, retry_after=_retry_after(exc))


class OpenAIChat:
    def __init__(
        self,
        model: str,
        *,
        client: Any = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 20.0,
    ) -> None:
        self.model = model
        self.name = f"openai:{model}"
        if client is None:
            import openai

            client = openai.OpenAI(base_url=base_url, api_key=api_key or None, timeout=timeout, max_retries=0)
        self._client = client

    def _messages(self, messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in messages]

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int = 512) -> str:
        try:
            resp = self._client.chat.completions.create(
                model=self.model, messages=self._messages(messages), max_tokens=max_tokens, temperature=0
            )
            choice = resp.choices[0]
            if getattr(choice, "finish_reason", None) == "content_filter":
                raise LLMError("content_filter", "the provider filtered the answer", provider=self.name)
            content = choice.message.content
        except LLMError:
            raise
        except Exception as exc:
            raise map_openai_error(exc, self.name) from exc
        if not isinstance(content, str):
            raise LLMError("malformed", "the response has no message content", provider=self.name)
        return content

    def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int = 512) -> Iterator[str]:
        try:
            events = self._client.chat.completions.create(
                model=self.model,
                messages=self._messages(messages),
                max_tokens=max_tokens,
                temperature=0,
                stream=True,
            )
            received = False
            for event in events:
                if event.choices and event.choices[0].delta and event.choices[0].delta.content:
                    received = True
                    yield event.choices[0].delta.content
            if not received:
                raise LLMError("malformed", "the stream carried no text", provider=self.name)
        except LLMError:
            raise
        except Exception as exc:
            raise map_openai_error(exc, self.name) from exc
