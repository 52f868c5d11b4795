"""Provider specs → providers and chains (nothing is called: clients are created lazily)."""

from __future__ import annotations

import pytest

from shared.errors import ConfigError
from shared.llm.base import LLM
from shared.llm.bedrock_provider import BedrockChat
from shared.llm.factory import make_chain, make_llm, parse_provider, plan_providers
from shared.llm.openai_provider import OpenAIChat
from shared.llm.resilience import ResilientLLM, breaker_for, reset_breakers


def test_parse_provider() -> None:
    assert parse_provider("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert parse_provider("bedrock:anthropic.claude-3-haiku-20240307-v1:0") == (
        "bedrock",
        "anthropic.claude-3-haiku-20240307-v1:0",
    )
    assert parse_provider("extractive") == ("extractive", "")
    for bad in ("openai", "openai:", "azure:gpt-4", ""):
        with pytest.raises(ConfigError):
            parse_provider(bad)


def test_plan_providers() -> None:
    assert plan_providers(["openai:gpt-4o-mini", "bedrock:m", "extractive"]) == (
        ["openai:gpt-4o-mini", "bedrock:m"],
        True,
    )
    assert plan_providers(["openai:gpt-4o-mini"]) == (["openai:gpt-4o-mini"], False)
    assert plan_providers(["extractive"]) == ([], True)
    with pytest.raises(ConfigError, match="after 'extractive'"):
        plan_providers(["extractive", "openai:gpt-4o-mini"])


def test_make_llm_and_chain_never_show_the_key() -> None:
    llm = make_llm(
        "openai:gpt-4o-mini", openai_api_key="sk-secret", openai_base_url="http://x/v1", timeout_s=5
    )
    assert isinstance(llm, OpenAIChat) and isinstance(llm, LLM)
    assert (llm.name, llm.timeout, llm.base_url) == ("openai:gpt-4o-mini", 5, "http://x/v1")
    assert "sk-secret" not in repr(llm)
    bedrock = make_llm("bedrock:m", aws_region="eu-west-1")
    assert isinstance(bedrock, BedrockChat) and bedrock.region == "eu-west-1"
    with pytest.raises(ConfigError):
        make_llm("extractive")
    reset_breakers()
    chain = make_chain(["openai:a", "bedrock:b"], failure_threshold=7, cooldown_s=11)
    assert chain.names == ["openai:a", "bedrock:b"]
    first = chain.providers[0]
    assert isinstance(first, ResilientLLM)
    assert first.breaker is breaker_for("openai:a")
    assert (first.breaker.failure_threshold, first.breaker.cooldown_s) == (7, 11)
    assert "sk-secret" not in repr(make_chain(["openai:a"], openai_api_key="sk-secret"))
    reset_breakers()
