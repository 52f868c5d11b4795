"""The provider settings: answer_providers names, llm_base_urls, llm_api_keys, and how they reach the
factory (sockets off: nothing is called)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.llm.factory import ProviderAccess
from shared.llm.providers import configure_values
from shared.settings import Settings, load_settings, masked, save_settings_file


def test_named_providers_are_accepted_from_the_environment(tmp_path: Path) -> None:
    env = {"RAG_EXPLORER_ANSWER_PROVIDERS": "groq:llama-3.3-70b-versatile,ollama:llama3.1,extractive"}
    s = load_settings({"home": str(tmp_path)}, env=env)
    assert s.answer_providers == ["groq:llama-3.3-70b-versatile", "ollama:llama3.1", "extractive"]
    chain = (
        "anthropic:claude-haiku-4-5,google:gemini-2.5-flash,mistral:mistral-small-latest,openai:gpt-4o-mini"
    )
    assert (
        len(
            load_settings(
                {"home": str(tmp_path)}, env={"RAG_EXPLORER_ANSWER_PROVIDERS": chain}
            ).answer_providers
        )
        == 4
    )


def test_unknown_providers_are_rejected_with_the_known_ones_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(
            {"home": str(tmp_path)}, env={"RAG_EXPLORER_ANSWER_PROVIDERS": "azure:gpt-4,extractive"}
        )
    message = str(raised.value)
    assert "unknown answer provider 'azure:gpt-4'" in message
    assert "openai, anthropic, google, groq, mistral, ollama, bedrock" in message
    for bad in ("groq", "groq:", "vllm:m", "GROQ:x"):
        with pytest.raises(ValueError, match="unknown answer provider"):
            Settings(answer_providers=[bad])


def test_a_base_url_makes_a_custom_name_valid(tmp_path: Path) -> None:
    env = {
        "RAG_EXPLORER_LLM_BASE_URLS": '{"vllm": "http://10.0.0.5:8000/v1", "ollama": "http://gpu:11434/v1"}',
        "RAG_EXPLORER_ANSWER_PROVIDERS": "vllm:meta-llama/Llama-3.1-8B-Instruct,ollama:llama3.1,extractive",
    }
    s = load_settings({"home": str(tmp_path)}, env=env)
    access = ProviderAccess.from_settings(s, env={})
    assert access.endpoint("vllm").base_url == "http://10.0.0.5:8000/v1"
    assert access.endpoint("ollama").base_url == "http://gpu:11434/v1"
    for bad, match in (
        ({"vllm": "ftp://x"}, "must start with http"),
        ({"Bad Name": "http://x"}, "not a provider name"),
        ({"openai": "http://x"}, "openai_base_url"),
        ({"bedrock": "http://x"}, "AWS credentials"),
    ):
        with pytest.raises(ValueError, match=match):
            Settings(llm_base_urls=bad)
    with pytest.raises(ValueError, match="openai_api_key"):
        Settings(llm_api_keys={"openai": "sk"})


def test_keys_in_the_settings_file_are_private_and_masked(tmp_path: Path) -> None:
    path = save_settings_file(tmp_path, {"llm_api_keys": '{"groq": "gsk-live-123"}'})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["llm_api_keys"] == {"groq": "gsk-live-123"}
    s = load_settings({"home": str(tmp_path)}, env={})
    assert "gsk-live-123" not in repr(s)
    assert masked({"llm_api_keys": s.llm_api_keys}) == {"llm_api_keys": "***"}
    assert (
        ProviderAccess.from_settings(s, env={"GROQ_API_KEY": "other"}).endpoint("groq").api_key
        == "gsk-live-123"
    )


def test_openai_keeps_its_own_settings_and_the_secret_is_per_provider(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, openai_base_url="http://local/v1", openai_api_key="sk-set")
    secret = {"groq_api_key": "gsk-secret", "anthropic_api_key": "sk-ant-secret"}
    access = ProviderAccess.from_settings(s, secret=secret, env={})
    openai = access.endpoint("openai")
    assert (openai.base_url, openai.api_key, openai.key_source) == (
        "http://local/v1",
        "sk-set",
        "openai_api_key",
    )
    assert access.endpoint("groq").api_key == "gsk-secret"
    assert access.endpoint("anthropic").key_source == "LLM secret (anthropic_api_key)"
    assert access.endpoint("mistral").missing_key is not None


def test_configure_values_merge_into_what_the_file_holds() -> None:
    current = {"llm_api_keys": {"groq": "gsk-old"}, "llm_base_urls": {"vllm": "http://a/v1"}}
    assert configure_values(current, provider="ollama") == {"answer_providers": "ollama:llama3.1,extractive"}
    assert configure_values({}, provider="Groq", model="llama-3.1-8b-instant") == {
        "answer_providers": "groq:llama-3.1-8b-instant,extractive"
    }
    values = configure_values(current, keys=[("mistral", "mk"), ("groq", ""), ("openai", "sk")])
    assert values == {"llm_api_keys": {"mistral": "mk"}, "openai_api_key": "sk"}
    assert configure_values(current, provider="vllm", model="m") == {"answer_providers": "vllm:m,extractive"}
    values = configure_values({}, provider="lmstudio", base_url="http://127.0.0.1:1234/v1", model="qwen")
    assert values["llm_base_urls"] == {"lmstudio": "http://127.0.0.1:1234/v1"}
    assert configure_values({}, provider="openai", base_url="http://x/v1")["openai_base_url"] == "http://x/v1"
    for kwargs, match in (
        ({"provider": "azure"}, "known ones are openai, anthropic"),
        ({"provider": "lmstudio", "base_url": "http://x/v1"}, "give --model"),
        ({"model": "m"}, "go with --provider"),
        ({"keys": [("bedrock", "k")]}, "AWS credentials"),
        ({"keys": [("azure", "k")]}, "unknown provider 'azure'"),
    ):
        with pytest.raises(ValueError, match=match):
            configure_values({}, **kwargs)
