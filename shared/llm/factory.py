"""Build providers and chains from their settings names (``openai:<model>``, ``bedrock:<model id>``).

Wiring (what :mod:`shared.service` needs)::

    specs, fallback = plan_providers(settings.answer_providers)   # ["openai:gpt-4o-mini"], True
    chain = make_chain(specs, timeout_s=..., retry=RetryPolicy(...), on_error=metrics_hook)
    answerer = GenerativeAnswerer(chain, embedder, extractive=extractive, fallback_to_extractive=fallback)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shared.errors import ConfigError
from shared.llm.base import LLM, ChatMessage, LLMError
from shared.llm.resilience import ErrorHook, ProviderChain, ResilientLLM, breaker_for
from shared.remote.retry import RetryPolicy

EXTRACTIVE = "extractive"


def parse_provider(spec: str) -> tuple[str, str]:
    """``"openai:gpt-4o-mini"`` → ``("openai", "gpt-4o-mini")``; the model part may contain colons."""
    kind, _, model = spec.strip().partition(":")
    if spec.strip() == EXTRACTIVE:
        return EXTRACTIVE, ""
    if kind not in ("openai", "bedrock") or not model:
        raise ConfigError(
            f"unknown answer provider {spec!r}: use extractive, openai:<model> or bedrock:<model id>"
        )
    return kind, model


def plan_providers(specs: Sequence[str]) -> tuple[list[str], bool]:
    """The LLM providers of an ``answer_providers`` list, and whether the extractive answer is the last
    resort. ``extractive`` answers every question it has evidence for, so LLMs listed after it would never
    be asked: that is a configuration error."""
    llms: list[str] = []
    fallback = False
    for spec in specs:
        kind, _ = parse_provider(spec)
        if kind == EXTRACTIVE:
            fallback = True
        elif fallback:
            raise ConfigError(f"answer provider {spec!r} comes after 'extractive' and would never be used")
        else:
            llms.append(spec.strip())
    return llms, fallback


def make_llm(
    spec: str,
    *,
    timeout_s: float = 20.0,
    openai_base_url: str | None = None,
    openai_api_key: str | None = None,
    aws_region: str | None = None,
    bedrock_endpoint_url: str | None = None,
) -> LLM:
    """A bare provider (no retries, no breaker). Clients are created lazily, on the first call."""
    kind, model = parse_provider(spec)
    if kind == "openai":
        from shared.llm.openai_provider import OpenAIChat

        return OpenAIChat(model, base_url=openai_base_url, api_key=openai_api_key, timeout=timeout_s)
    if kind == "bedrock":
        from shared.llm.bedrock_provider import BedrockChat

        return BedrockChat(model, region=aws_region, endpoint_url=bedrock_endpoint_url, timeout=timeout_s)
    raise ConfigError(f"{spec!r} is not an LLM provider")


def make_chain(
    specs: Sequence[str],
    *,
    timeout_s: float = 20.0,
    retry: RetryPolicy | None = None,
    failure_threshold: int = 5,
    cooldown_s: float = 30.0,
    on_error: ErrorHook | None = None,
    sleep: Callable[[float], None] = time.sleep,
    openai_base_url: str | None = None,
    openai_api_key: str | None = None,
    aws_region: str | None = None,
    bedrock_endpoint_url: str | None = None,
) -> ProviderChain:
    """Each provider wrapped in retries and its process-wide circuit breaker (``breaker_for(name)``)."""
    providers: list[LLM] = []
    for spec in specs:
        llm = make_llm(
            spec,
            timeout_s=timeout_s,
            openai_base_url=openai_base_url,
            openai_api_key=openai_api_key,
            aws_region=aws_region,
            bedrock_endpoint_url=bedrock_endpoint_url,
        )
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
