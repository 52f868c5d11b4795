"""Build providers and chains from their settings names (``groq:llama-3.3-70b-versatile``,
``anthropic:claude-haiku-4-5``, ``bedrock:<model id>``; see :mod:`shared.llm.providers`).

Wiring (what :mod:`shared.service` needs)::

    specs, fallback = plan_providers(settings.answer_providers)   # ["groq:llama-3.3-70b-versatile"], True
    access = ProviderAccess.from_settings(settings)               # base URLs and keys, per provider
    chain = make_chain(specs, access=access, timeout_s=..., retry=RetryPolicy(...), on_error=metrics_hook)
    answerer = GenerativeAnswerer(chain, embedder, extractive=extractive, fallback_to_extractive=fallback)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.errors import ConfigError
from shared.extras import require
from shared.llm.base import LLM, ChatMessage, LLMError
from shared.llm.providers import EXTRACTIVE, Endpoint, check_spec, resolve_endpoint, split_spec
from shared.llm.resilience import ErrorHook, ProviderChain, ResilientLLM, breaker_for
from shared.remote.retry import RetryPolicy

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = ["EXTRACTIVE", "ProbeResult", "ProviderAccess", "make_chain", "make_llm", "parse_provider"]


def parse_provider(spec: str, custom: Iterable[str] = ()) -> tuple[str, str]:
    """``"groq:llama-3.3-70b-versatile"`` → ``("groq", "llama-3.3-70b-versatile")``; the model part may
    contain colons. The provider must be known or one of ``custom`` (named in ``llm_base_urls``)."""
    try:
        return check_spec(spec, custom)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def plan_providers(specs: Sequence[str]) -> tuple[list[str], bool]:
    """The LLM providers of an ``answer_providers`` list, and whether the extractive answer is the last
    resort. ``extractive`` answers every question it has evidence for, so LLMs listed after it would never
    be asked: that is a configuration error. (Which providers exist was checked with the settings.)"""
    llms: list[str] = []
    fallback = False
    for spec in specs:
        try:
            kind, _ = split_spec(spec)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if kind == EXTRACTIVE:
            fallback = True
        elif fallback:
            raise ConfigError(f"answer provider {spec!r} comes after 'extractive' and would never be used")
        else:
            llms.append(spec.strip())
    return llms, fallback


@dataclass(frozen=True)
class ProviderAccess:
    """Base URLs and keys per provider name (settings, the Lambda LLM secret, the environment)."""

    base_urls: Mapping[str, str] = field(default_factory=dict)
    api_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    secret: Mapping[str, str] = field(default_factory=dict, repr=False)
    env: Mapping[str, str] | None = field(default=None, repr=False)  # None: os.environ
    aws_region: str | None = None
    bedrock_endpoint_url: str | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        secret: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ProviderAccess:
        """``secret`` defaults to the ``llm_secret_arn`` secret (read once per process) when that is set."""
        if secret is None and settings.llm_secret_arn:
            from shared.llm.secrets import llm_keys

            secret = llm_keys(settings.llm_secret_arn)
        base_urls = dict(settings.llm_base_urls)
        api_keys = dict(settings.llm_api_keys)
        if settings.openai_base_url:
            base_urls["openai"] = settings.openai_base_url
        if settings.openai_api_key:
            api_keys["openai"] = settings.openai_api_key
        return cls(base_urls, api_keys, secret or {}, env, aws_region=settings.aws_region)

    @property
    def custom(self) -> list[str]:
        return list(self.base_urls)

    def endpoint(self, name: str) -> Endpoint:
        return resolve_endpoint(
            name,
            base_urls=self.base_urls,
            api_keys=self.api_keys,
            secret=self.secret,
            env=os.environ if self.env is None else self.env,
        )


class MissingKey:
    """A provider that needs a key nobody gave: every call fails with ``auth`` and says where to put one
    (the request never goes out, and no other provider's key is sent instead)."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message

    def __repr__(self) -> str:
        return f"MissingKey({self.name!r})"

    def _fail(self) -> LLMError:
        return LLMError("auth", self.message, provider=self.name)

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float) -> str:
        raise self._fail()

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        raise self._fail()
        yield ""  # pragma: no cover - makes this a generator, like the real providers


def make_llm(spec: str, *, access: ProviderAccess | None = None, timeout_s: float = 20.0) -> LLM:
    """A bare provider (no retries, no breaker). Clients are created lazily, on the first call."""
    access = access or ProviderAccess()
    name, model = parse_provider(spec, access.custom)
    if name == EXTRACTIVE:
        raise ConfigError(f"{spec!r} is not an LLM provider")
    endpoint = access.endpoint(name)
    if endpoint.protocol == "bedrock":
        require("aws", f"the {name} answer provider", "boto3", "botocore")
        from shared.llm.bedrock_provider import BedrockChat

        return BedrockChat(
            model, region=access.aws_region, endpoint_url=access.bedrock_endpoint_url, timeout=timeout_s
        )
    if endpoint.missing_key:
        return MissingKey(f"{name}:{model}", endpoint.missing_key)
    if endpoint.protocol == "anthropic":
        require("cloud", f"the {name} answer provider", "anthropic")
        from shared.llm.anthropic_provider import AnthropicChat

        return AnthropicChat(
            model, base_url=endpoint.base_url, api_key=endpoint.api_key, timeout=timeout_s, provider=name
        )
    require("cloud", f"the {name} answer provider", "openai")
    from shared.llm.openai_provider import OpenAIChat

    return OpenAIChat(
        model, base_url=endpoint.base_url, api_key=endpoint.api_key, timeout=timeout_s, provider=name
    )


def make_chain(
    specs: Sequence[str],
    *,
    access: ProviderAccess | None = None,
    timeout_s: float = 20.0,
    retry: RetryPolicy | None = None,
    failure_threshold: int = 5,
    cooldown_s: float = 30.0,
    on_error: ErrorHook | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ProviderChain:
    """Each provider wrapped in retries and its process-wide circuit breaker (``breaker_for(name)``: one
    per ``provider:model``, so a failing Groq never holds back the local Ollama after it)."""
    providers: list[LLM] = []
    for spec in specs:
        llm = make_llm(spec, access=access, timeout_s=timeout_s)
        breaker = breaker_for(llm.name, failure_threshold=failure_threshold, cooldown_s=cooldown_s)
        providers.append(ResilientLLM(llm, retry or RetryPolicy(), breaker, sleep=sleep))
    return ProviderChain(providers, on_error=on_error)


@dataclass(frozen=True)
class ProbeResult:
    provider: str
    ok: bool
    detail: str  # the reply, or "auth (401): Incorrect API key provided"
    seconds: float


def probe(llm: LLM, *, max_tokens: int = 8) -> ProbeResult:
    """One tiny live request (for ``rag-explorer providers``); never raises :class:`LLMError`."""
    started = time.monotonic()
    try:
        reply = llm.complete(
            [ChatMessage("user", "Reply with the single word OK.")], max_tokens=max_tokens, temperature=0.0
        )
    except LLMError as exc:
        return ProbeResult(llm.name, False, f"{exc.label}: {exc.message}", time.monotonic() - started)
    return ProbeResult(llm.name, True, reply.strip()[:80], time.monotonic() - started)
