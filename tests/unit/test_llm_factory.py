"""Provider specs → providers and chains (nothing is called: clients are created lazily)."""

from __future__ import annotations

import sys

import pytest

from shared.errors import ConfigError
from shared.extras import MissingExtraError
from shared.llm.anthropic_provider import AnthropicChat
from shared.llm.base import LLM, ChatMessage, LLMError
from shared.llm.bedrock_provider import BedrockChat
from shared.llm.factory import (
    MissingKey,
    ProviderAccess,
    make_chain,
    make_llm,
    parse_provider,
    plan_providers,
)
from shared.llm.openai_provider import OpenAIChat
from shared.llm.providers import KNOWN_PROVIDERS, PLACEHOLDER_KEY
from shared.llm.resilience import ResilientLLM, breaker_for, reset_breakers

MSGS = [ChatMessage("user", "hi")]


def test_parse_provider() -> None:
    assert parse_provider("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert parse_provider("bedrock:anthropic.claude-3-haiku-20240307-v1:0") == (
        "bedrock",
        "anthropic.claude-3-haiku-20240307-v1:0",
    )
    assert parse_provider("ollama:llama3.1:8b") == ("ollama", "llama3.1:8b")
    assert parse_provider("groq:llama-3.3-70b-versatile") == ("groq", "llama-3.3-70b-versatile")
    assert parse_provider("extractive") == ("extractive", "")
    assert parse_provider("vllm:m", custom=["vllm"]) == ("vllm", "m")
    for bad in ("openai", "openai:", "azure:gpt-4", "", "vllm:m", "Groq:x"):
        with pytest.raises(ConfigError, match="unknown answer provider"):
            parse_provider(bad)


def test_unknown_provider_message_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_provider("azure:gpt-4")
    message = str(raised.value)
    for name in ("openai", "anthropic", "google", "groq", "mistral", "ollama", "bedrock"):
        assert name in message
    assert "llm_base_urls" in message


def test_plan_providers() -> None:
    assert plan_providers(["openai:gpt-4o-mini", "bedrock:m", "extractive"]) == (
        ["openai:gpt-4o-mini", "bedrock:m"],
        True,
    )
    assert plan_providers(["groq:a", "vllm:b"]) == (["groq:a", "vllm:b"], False)  # names: checked by settings
    assert plan_providers(["extractive"]) == ([], True)
    with pytest.raises(ConfigError, match="after 'extractive'"):
        plan_providers(["extractive", "openai:gpt-4o-mini"])


def test_each_known_provider_gets_its_own_url_key_and_protocol() -> None:
    env = {
        "GROQ_API_KEY": "gsk-groq",
        "MISTRAL_API_KEY": "mk",
        "GEMINI_API_KEY": "gem",
        "ANTHROPIC_API_KEY": "sk-ant",
        "OPENAI_API_KEY": "sk-openai",
    }
    access = ProviderAccess(env=env)
    groq = make_llm("groq:llama-3.3-70b-versatile", access=access, timeout_s=5)
    assert isinstance(groq, OpenAIChat)
    assert (groq.name, groq.base_url, groq._api_key) == (
        "groq:llama-3.3-70b-versatile",
        "https://api.groq.com/openai/v1",
        "gsk-groq",
    )
    google = make_llm("google:gemini-2.5-flash", access=access)
    assert isinstance(google, OpenAIChat) and google._api_key == "gem"  # GOOGLE_API_KEY, else GEMINI_API_KEY
    assert google.base_url == "https://generativelanguage.googleapis.com/v1beta/openai/"
    mistral = make_llm("mistral:mistral-small-latest", access=access)
    assert isinstance(mistral, OpenAIChat) and mistral.base_url == "https://api.mistral.ai/v1"
    ollama = make_llm("ollama:llama3.1", access=access)
    assert isinstance(ollama, OpenAIChat)
    assert (ollama.base_url, ollama._api_key) == (
        "http://localhost:11434/v1",
        PLACEHOLDER_KEY,
    )  # never OpenAI's
    claude = make_llm("anthropic:claude-haiku-4-5", access=access)
    assert isinstance(claude, AnthropicChat) and (claude.name, claude._api_key) == (
        "anthropic:claude-haiku-4-5",
        "sk-ant",
    )
    openai = make_llm("openai:gpt-4o-mini", access=access)
    assert isinstance(openai, OpenAIChat) and (openai.base_url, openai._api_key) == (None, "sk-openai")
    assert set(KNOWN_PROVIDERS) == {"openai", "anthropic", "google", "groq", "mistral", "ollama", "bedrock"}


def test_key_precedence_settings_then_secret_then_environment() -> None:
    env = {"GROQ_API_KEY": "from-env"}
    secret = {"groq_api_key": "from-secret"}
    both = ProviderAccess(api_keys={"groq": "from-settings"}, secret=secret, env=env)
    assert both.endpoint("groq").api_key == "from-settings"
    assert both.endpoint("groq").key_source == "llm_api_keys"
    assert ProviderAccess(secret=secret, env=env).endpoint("groq").api_key == "from-secret"
    assert ProviderAccess(env=env).endpoint("groq").key_source == "GROQ_API_KEY"


def test_a_missing_key_fails_with_auth_and_says_where_to_put_one() -> None:
    llm = make_llm("groq:llama-3.3-70b-versatile", access=ProviderAccess(env={"OPENAI_API_KEY": "sk-openai"}))
    assert isinstance(llm, MissingKey) and llm.name == "groq:llama-3.3-70b-versatile"
    with pytest.raises(LLMError) as raised:
        llm.complete(MSGS, max_tokens=5, temperature=0)
    assert raised.value.kind == "auth"
    assert "GROQ_API_KEY" in raised.value.message and "configure --api-key groq" in raised.value.message
    with pytest.raises(LLMError, match="auth"):
        list(llm.stream(MSGS, max_tokens=5, temperature=0))
    # a base URL of your own (a proxy, a local gateway) needs no key
    proxied = make_llm("groq:x", access=ProviderAccess(base_urls={"groq": "http://proxy/v1"}, env={}))
    assert isinstance(proxied, OpenAIChat) and proxied._api_key == PLACEHOLDER_KEY


def test_custom_openai_compatible_names() -> None:
    access = ProviderAccess(base_urls={"my-vllm": "http://10.0.0.5:8000/v1"}, env={"MY_VLLM_API_KEY": "tok"})
    llm = make_llm("my-vllm:meta-llama/Llama-3.1-8B-Instruct", access=access)
    assert isinstance(llm, OpenAIChat)
    assert (llm.name, llm.base_url, llm._api_key) == (
        "my-vllm:meta-llama/Llama-3.1-8B-Instruct",
        "http://10.0.0.5:8000/v1",
        "tok",
    )
    with pytest.raises(ConfigError, match="unknown answer provider"):
        make_llm("other-vllm:m", access=access)


def test_make_llm_and_chain_never_show_the_key() -> None:
    access = ProviderAccess(
        base_urls={"openai": "http://x/v1"}, api_keys={"openai": "sk-secret", "groq": "gsk-secret"}
    )
    llm = make_llm("openai:gpt-4o-mini", access=access, timeout_s=5)
    assert isinstance(llm, OpenAIChat) and isinstance(llm, LLM)
    assert (llm.name, llm.timeout, llm.base_url) == ("openai:gpt-4o-mini", 5, "http://x/v1")
    assert "sk-secret" not in repr(llm) and "secret" not in repr(access)
    assert "secret" not in repr(access.endpoint("groq"))
    bedrock = make_llm("bedrock:m", access=ProviderAccess(aws_region="eu-west-1"))
    assert isinstance(bedrock, BedrockChat) and bedrock.region == "eu-west-1"
    with pytest.raises(ConfigError):
        make_llm("extractive")
    reset_breakers()
    chain = make_chain(["openai:a", "bedrock:b", "groq:c"], failure_threshold=7, cooldown_s=11, access=access)
    assert chain.names == ["openai:a", "bedrock:b", "groq:c"]
    first = chain.providers[0]
    assert isinstance(first, ResilientLLM)
    assert first.breaker is breaker_for("openai:a")
    assert (first.breaker.failure_threshold, first.breaker.cooldown_s) == (7, 11)
    assert "secret" not in repr(chain)
    reset_breakers()


@pytest.mark.parametrize(("spec", "module"), [("anthropic:m", "anthropic"), ("groq:m", "openai")])
def test_a_missing_sdk_names_the_extra_to_install(
    spec: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"\[cloud\] extra"):
        make_llm(spec, access=ProviderAccess(api_keys={spec.split(":")[0]: "k"}, env={}))
    direct = AnthropicChat("m", api_key="k") if module == "anthropic" else OpenAIChat("m", api_key="k")
    with pytest.raises(MissingExtraError, match=r"\[cloud\] extra"):
        direct.complete(MSGS, max_tokens=5, temperature=0)
    with pytest.raises(MissingExtraError, match=r"\[cloud\] extra"):
        list(direct.stream(MSGS, max_tokens=5, temperature=0))
