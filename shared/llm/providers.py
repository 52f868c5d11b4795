"""The known answer providers, in one table, and where each one is reached with which key.

A chain entry is ``<provider>:<model>`` (``groq:llama-3.3-70b-versatile``, ``ollama:llama3.1``,
``bedrock:<model id>``) or ``extractive``. A provider is one of :data:`KNOWN_PROVIDERS`, or a name the
``llm_base_urls`` setting gives an OpenAI-compatible base URL (``{"vllm": "http://10.0.0.5:8000/v1"}``
makes ``vllm:<model>`` valid). Nothing here imports an SDK: the settings validator uses it too.

Keys (:func:`resolve_endpoint`), first found wins: the ``llm_api_keys`` setting (``openai_api_key`` for
``openai``), the Lambda LLM secret's ``<name>_api_key``, the environment's ``<NAME>_API_KEY``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Protocol = Literal["openai", "anthropic", "bedrock"]
EXTRACTIVE = "extractive"
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
#: Sent as the key to endpoints that need none (local servers ignore it; the SDKs insist on one).
PLACEHOLDER_KEY = "not-needed"


@dataclass(frozen=True)
class KnownProvider:
    name: str
    protocol: Protocol
    base_url: str | None  # None: the SDK's own default (and its *_BASE_URL environment variable)
    key_envs: tuple[str, ...]  # environment variables holding the key, tried in order
    needs_key: bool  # at its default base URL
    default_model: str  # what `rag-explorer configure --provider NAME` writes
    docs: str  # where the base URL is documented


KNOWN_PROVIDERS: dict[str, KnownProvider] = {
    p.name: p
    for p in (
        KnownProvider(
            "openai", "openai", None, ("OPENAI_API_KEY",), True, "gpt-4o-mini",
            "https://platform.openai.com/docs/api-reference",
        ),
        KnownProvider(
            "anthropic", "anthropic", None, ("ANTHROPIC_API_KEY",), True, "claude-haiku-4-5",
            "https://docs.anthropic.com/en/api/messages",
        ),
        KnownProvider(
            "google", "openai", "https://generativelanguage.googleapis.com/v1beta/openai/",
            ("GOOGLE_API_KEY", "GEMINI_API_KEY"), True, "gemini-2.5-flash",
            "https://ai.google.dev/gemini-api/docs/openai",
        ),
        KnownProvider(
            "groq", "openai", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",), True,
            "llama-3.3-70b-versatile", "https://console.groq.com/docs/openai",
        ),
        KnownProvider(
            "mistral", "openai", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",), True,
            "mistral-small-latest", "https://docs.mistral.ai/api/",
        ),
        KnownProvider(
            "ollama", "openai", "http://localhost:11434/v1", ("OLLAMA_API_KEY",), False, "llama3.1",
            "https://docs.ollama.com/api/openai-compatibility",
        ),
        KnownProvider(
            "bedrock", "bedrock", None, (), False, "anthropic.claude-3-haiku-20240307-v1:0",
            "https://docs.aws.amazon.com/bedrock/latest/userguide/conversation-inference.html",
        ),
    )
}  # fmt: skip

#: Providers whose base URL and key have settings of their own (kept from before named providers).
OWN_SETTINGS = {"openai": ("openai_base_url", "openai_api_key")}


def known_names() -> str:
    return ", ".join(KNOWN_PROVIDERS)


def split_spec(spec: str) -> tuple[str, str]:
    """``"ollama:llama3.1:8b"`` → ``("ollama", "llama3.1:8b")`` (the model may contain colons);
    ``"extractive"`` → ``("extractive", "")``. Only the form is checked here."""
    spec = spec.strip()
    if spec == EXTRACTIVE:
        return EXTRACTIVE, ""
    name, _, model = spec.partition(":")
    if not model or not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(f"answer provider {spec!r} is not <provider>:<model> or extractive")
    return name, model


def check_spec(spec: str, custom: Iterable[str] = ()) -> tuple[str, str]:
    """:func:`split_spec`, and the provider must be known or have a base URL in ``llm_base_urls``."""
    try:
        name, model = split_spec(spec)
    except ValueError:
        name, model = spec.strip(), ""
    if name == EXTRACTIVE or (model and (name in KNOWN_PROVIDERS or name in set(custom))):
        return name, model
    raise ValueError(
        f"unknown answer provider {spec.strip()[:80]!r}: use <provider>:<model> with a known provider "
        f"({known_names()}), a name given a base URL in llm_base_urls (an OpenAI-compatible server, "
        "e.g. vLLM), or extractive"
    )


def check_endpoint_names(base_urls: Mapping[str, str], api_keys: Mapping[str, str]) -> None:
    """The ``llm_base_urls`` / ``llm_api_keys`` settings: provider names, http(s) URLs."""
    for setting, names in (("llm_base_urls", base_urls), ("llm_api_keys", api_keys)):
        for name in names:
            if not re.fullmatch(NAME_PATTERN, name) or name == EXTRACTIVE:
                raise ValueError(f"{setting}: {name[:40]!r} is not a provider name (a-z, 0-9, -)")
            if name == "bedrock":
                raise ValueError(f"{setting}: bedrock uses AWS credentials and aws_region")
            if name in OWN_SETTINGS:
                own = OWN_SETTINGS[name][0 if setting == "llm_base_urls" else 1]
                raise ValueError(f"{setting}: set {name}'s in the setting {own}")
    for name, url in base_urls.items():
        if not re.match(r"^https?://[^\s/]", url):
            raise ValueError(f"llm_base_urls: {name}'s base URL must start with http:// or https://")


def env_name(name: str) -> str:
    """``my-vllm`` → ``MY_VLLM_API_KEY``."""
    return name.upper().replace("-", "_") + "_API_KEY"


def secret_name(name: str) -> str:
    """The key of ``name``'s API key in the Lambda LLM secret: ``groq_api_key``."""
    return name.replace("-", "_") + "_api_key"


@dataclass(frozen=True)
class Endpoint:
    """Where provider ``provider`` is reached, how, and with which key (never shown)."""

    provider: str
    protocol: Protocol
    base_url: str | None
    api_key: str | None = field(default=None, repr=False)
    key_source: str = ""  # "llm_api_keys", "LLM secret (groq_api_key)", "GROQ_API_KEY" or ""
    missing_key: str | None = None  # set when a key is needed and none was found: what to do


def resolve_endpoint(
    name: str,
    *,
    base_urls: Mapping[str, str],
    api_keys: Mapping[str, str],
    secret: Mapping[str, str],
    env: Mapping[str, str],
) -> Endpoint:
    """The endpoint of provider ``name`` (known, or named in ``base_urls``). ``base_urls`` and ``api_keys``
    are the settings (with ``openai_base_url`` / ``openai_api_key`` under ``openai``); ``secret`` is the
    Lambda LLM secret with lower-cased keys."""
    known = KNOWN_PROVIDERS.get(name)
    protocol: Protocol = known.protocol if known else "openai"
    key_envs = known.key_envs if known else (env_name(name),)
    if name == "openai":  # the SDK itself reads OPENAI_BASE_URL when given no base URL
        base_url = base_urls.get(name) or None
        overridden = bool(base_url or env.get("OPENAI_BASE_URL"))
    else:
        base_url = base_urls.get(name) or (known.base_url if known else None)
        overridden = name in base_urls
    if protocol == "bedrock":
        return Endpoint(name, protocol, None)
    candidates = [
        (api_keys.get(name), "llm_api_keys" if name not in OWN_SETTINGS else OWN_SETTINGS[name][1]),
        (secret.get(secret_name(name)), f"LLM secret ({secret_name(name)})"),
        *((env.get(var), var) for var in key_envs),
    ]
    for key, source in candidates:
        if key:
            return Endpoint(name, protocol, base_url, key, source)
    if known is not None and known.needs_key and not overridden:
        hint = (
            f"no API key for {name}: set {' or '.join(key_envs)}, run `rag-explorer configure --api-key "
            f"{name} KEY`, or (AWS) put {secret_name(name)} in the LLM secret"
        )
        return Endpoint(name, protocol, base_url, None, "", hint)
    return Endpoint(name, protocol, base_url, PLACEHOLDER_KEY, "none needed")


def configure_values(
    current: Mapping[str, object],
    *,
    provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    keys: Iterable[tuple[str, str]] = (),
) -> dict[str, object]:
    """The settings ``rag-explorer configure --provider NAME [--model M] [--base-url URL] [--api-key NAME
    KEY]`` writes, given what the settings file holds now (``current``): the chain ``NAME:MODEL,extractive``,
    and the provider's base URL and keys merged into ``llm_base_urls`` / ``llm_api_keys`` (``openai``: its
    own settings). An empty key removes one. Raises ValueError with what to do instead."""
    values: dict[str, object] = {}
    base_urls = dict(_mapping(current.get("llm_base_urls")))
    api_keys = dict(_mapping(current.get("llm_api_keys")))
    if provider is not None:
        name = provider.strip().lower()
        if base_url is not None:
            if name == "openai":
                values["openai_base_url"] = base_url or None
            elif base_url:
                base_urls[name] = base_url
            else:
                base_urls.pop(name, None)
        known = KNOWN_PROVIDERS.get(name)
        if known is None and name not in base_urls:
            raise ValueError(
                f"unknown provider {name[:40]!r}: known ones are {known_names()}; for an OpenAI-compatible "
                "server (vLLM, LM Studio, ...) give its --base-url"
            )
        chosen = model or (known.default_model if known else None)
        if not chosen:
            raise ValueError(f"give --model for {name}")
        values["answer_providers"] = f"{name}:{chosen},{EXTRACTIVE}"
    elif model is not None or base_url is not None:
        raise ValueError("--model and --base-url go with --provider NAME")
    for name, key in keys:
        name = name.strip().lower()
        if name == "bedrock":
            raise ValueError("bedrock uses AWS credentials (an IAM role or profile), not an API key")
        if name not in KNOWN_PROVIDERS and name not in base_urls:
            raise ValueError(f"unknown provider {name[:40]!r} for --api-key: known ones are {known_names()}")
        if name in OWN_SETTINGS:
            values[OWN_SETTINGS[name][1]] = key or None
        elif key:
            api_keys[name] = key
        else:
            api_keys.pop(name, None)
    if base_urls != _mapping(current.get("llm_base_urls")):
        values["llm_base_urls"] = base_urls
    if api_keys != _mapping(current.get("llm_api_keys")):
        values["llm_api_keys"] = api_keys
    return values


def _mapping(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}
