"""Build the answer provider chain from settings."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from shared.errors import ConfigError
from shared.generation.base import LLM
from shared.generation.resilience import ProviderChain, ResilientLLM, RetryPolicy, breaker_for
from shared.settings import Settings


@lru_cache(maxsize=8)
def read_secret(arn: str) -> dict[str, str]:
    """LLM keys from Secrets Manager (a JSON object), read once per process (Lambda cold start)."""
    import boto3

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        data = json.loads(value)
    except Exception as exc:  # never include the secret in the message
        raise ConfigError(f"cannot read the LLM secret {arn}: {type(exc).__name__}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"the LLM secret {arn} must hold a JSON object")
    return {str(k).lower(): str(v) for k, v in data.items()}


def llm_providers(settings: Settings) -> list[str]:
    """The LLM providers that are actually used: those before "extractive" in the chain."""
    chain = settings.answer_providers
    return chain[: chain.index("extractive")] if "extractive" in chain else list(chain)


def make_llm(name: str, settings: Settings, *, client: Any = None) -> LLM:
    kind, _, model = name.partition(":")
    secret = read_secret(settings.llm_secret_arn) if settings.llm_secret_arn else {}
    if kind == "openai":
        from shared.generation.openai_chat import OpenAIChat

        return OpenAIChat(
            model,
            client=client,
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key or secret.get("openai_api_key"),
            timeout=settings.llm_timeout_s,
        )
    if kind == "bedrock":
        from shared.generation.bedrock_chat import BedrockChat

        return BedrockChat(model, client=client, region=settings.aws_region, timeout=settings.llm_timeout_s)
    raise ConfigError(f"unknown answer provider {name!r}")


def make_chain(settings: Settings) -> ProviderChain:
    retry = RetryPolicy(max_attempts=settings.llm_max_attempts)
    return ProviderChain(
        [
            ResilientLLM(
                make_llm(name, settings),
                retry=retry,
                breaker=breaker_for(
                    name,
                    failure_threshold=settings.llm_breaker_failures,
                    cooldown_s=settings.llm_breaker_cooldown_s,
                ),
            )
            for name in llm_providers(settings)
        ]
    )
