"""OpenAI and every OpenAI-compatible endpoint (Ollama, vLLM, Groq, Mistral, LM Studio, ...) via the
``openai`` SDK, with the SDK's own retries off (:mod:`shared.llm.resilience` retries, once, deliberately).

The SDK reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` when ``api_key`` / ``base_url`` aren't given.
Every SDK exception becomes an :class:`~shared.llm.base.LLMError` (:func:`classify_openai_error`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from shared.llm.base import ChatMessage, LLMError, clip
from shared.remote.openai_compat import classify_openai_error, make_openai_client

if TYPE_CHECKING:
    import openai


def _wire(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


class OpenAIChat:
    """``openai:<model>`` chat completions (``complete`` and ``stream``) through the ``openai`` SDK; with
    ``provider`` and ``base_url``, any OpenAI-compatible provider (``groq:<model>`` at Groq's URL, ...).

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
        provider: str = "openai",
    ) -> None:
        self.model = model
        self.name = f"{provider}:{model}"  # "openai:gpt-4o-mini", "groq:llama-3.3-70b-versatile"
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
        except ImportError:  # the SDK is not installed: MissingExtraError names the extra
            raise
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
        except ImportError:  # the SDK is not installed: MissingExtraError names the extra
            raise
        except Exception as exc:
            raise classify_openai_error(exc, self.name) from exc
        finally:
            if stream is not None and hasattr(stream, "close"):
                # closing a broken connection must not mask the real error
                with contextlib.suppress(Exception):
                    stream.close()
