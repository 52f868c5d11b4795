"""Settings: one pydantic model. Precedence: flags > environment > settings file in home > defaults.

Environment variables are ``RAG_EXPLORER_<FIELD>`` (upper case), e.g. ``RAG_EXPLORER_CHUNK_TOKENS=180``.
The settings file is ``<home>/settings.json``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.errors import ConfigError
from shared.llm.providers import check_endpoint_names, check_spec
from shared.models import COLLECTION_PATTERN, DEFAULT_COLLECTION
from shared.sites import CollectionSettings, Site

#: Answer when the confidence (the estimated probability that the answer is right) is at least this: more
#: likely right than wrong. See bench/RESULTS.md for what it gives on documentation it was not fitted on.
DEFAULT_CONFIDENCE_THRESHOLD = 0.5

ENV_PREFIX = "RAG_EXPLORER_"
SETTINGS_FILE = "settings.json"
DEFAULT_HOME = Path("~/.rag-explorer")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    home: Path = Field(default=DEFAULT_HOME, description="Folder holding the index and settings.json.")

    # remote mode: talk to a deployed API (or `rag-explorer serve`) instead of the local index
    endpoint: str | None = Field(default=None, pattern=r"^https?://", description="Base URL of the HTTP API.")
    api_key: str | None = Field(default=None, repr=False, description="Sent as x-api-key.")

    # store
    store: Literal["chroma", "opensearch", "s3vectors"] = Field(
        default="chroma",
        description="chroma: embedded index under home; opensearch: a cluster at opensearch_url; "
        "s3vectors: an Amazon S3 Vectors index (s3vectors_bucket, s3vectors_index).",
    )
    opensearch_url: str | None = Field(
        default=None, description="e.g. https://search-x.eu-west-1.es.amazonaws.com"
    )
    opensearch_index: str = Field(default="rag-explorer-chunks", pattern=r"^[a-z0-9][a-z0-9._-]*$")
    opensearch_auth: Literal["none", "basic", "sigv4"] = Field(default="none")
    opensearch_username: str | None = None
    opensearch_password: str | None = Field(default=None, repr=False)
    opensearch_timeout_s: float = Field(default=10.0, gt=0)
    s3vectors_bucket: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", description="The vector bucket."
    )
    s3vectors_index: str = Field(default="rag-explorer-chunks", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    s3vectors_timeout_s: float = Field(default=10.0, gt=0)
    aws_region: str | None = Field(
        default=None, description="For SigV4 and S3 Vectors; defaults to AWS_REGION."
    )

    # loading and chunking
    max_file_mb: float = Field(default=20.0, gt=0, description="Larger files are skipped.")
    # limits for untrusted documents
    max_document_chars: int = Field(
        default=5_000_000,
        ge=1000,
        description="Extracted characters kept per document; the rest is cut off, with a warning.",
    )
    max_pdf_pages: int = Field(default=2000, ge=1, description="PDFs with more pages are rejected.")
    max_pdf_stream_mb: float = Field(
        default=20.0, gt=0, description="A PDF stream that inflates past this is not decoded (bomb guard)."
    )
    loader_timeout_s: float = Field(
        default=60.0, gt=0, description="A document still being parsed after this is rejected."
    )
    max_sections_per_file: int = Field(
        default=50_000,
        ge=100,
        description="Sections (headings) per file, later headings kept as text; JSON Lines records read.",
    )
    chunk_tokens: int = Field(default=200, ge=32, le=256, description="Target chunk size in embedder tokens.")
    chunk_overlap_tokens: int = Field(default=32, ge=0, le=128)

    # embedding
    embedder: str = Field(default="local:all-MiniLM-L6-v2")
    embed_batch_size: int = Field(default=32, ge=1, le=512)
    embed_threads: int = Field(default=2, ge=1, le=64)
    embedding_cache: bool = Field(
        default=True,
        description="Embed answer sentences at ingest and remember vectors (beside a local index: "
        "embedding-cache.sqlite3), so a question only looks them up.",
    )

    # retrieval
    candidates: int = Field(default=60, ge=1, le=1000, description="Chunks fetched per retrieval leg.")
    rrf_k: int = Field(default=60, ge=1)
    dense_weight: float = Field(default=1.0, ge=0)
    lexical_weight: float = Field(default=1.0, ge=0)
    search_k: int = Field(default=5, ge=1, le=100, description="Hits returned by `search`.")

    # answering
    max_chunks: int = Field(default=5, ge=1, le=20, description="Chunks considered for an answer.")
    max_answer_sentences: int = Field(default=3, ge=1, le=10)
    confidence_threshold: float = Field(default=DEFAULT_CONFIDENCE_THRESHOLD, ge=0.0, le=1.0)
    max_question_chars: int = Field(default=2000, ge=10)
    answer_providers: list[str] = Field(
        default_factory=lambda: ["extractive"],
        description='Ordered answer chain of <provider>:<model> and extractive, e.g. ["groq:llama-3.3-70b-'
        'versatile", "ollama:llama3.1", "extractive"]; env: comma-separated (see shared/llm/providers.py).',
    )
    llm_base_urls: dict[str, str] = Field(
        default_factory=dict,
        description='Base URL per provider name (JSON): overrides a known one, {"ollama": "http://gpu:11434/'
        'v1"}, or names an OpenAI-compatible server, {"vllm": "http://10.0.0.5:8000/v1"} for vllm:<model>.',
    )
    llm_api_keys: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        description='API key per provider name (JSON), {"groq": "gsk_..."}; else the LLM secret\'s '
        "<name>_api_key, else <NAME>_API_KEY (GROQ_API_KEY).",
    )
    llm_timeout_s: float = Field(default=20.0, gt=0, description="Per LLM call.")
    llm_max_attempts: int = Field(
        default=3, ge=1, le=10, description="Tries per provider (retryable errors)."
    )
    llm_breaker_failures: int = Field(
        default=5, ge=1, description="Consecutive failures that open a breaker."
    )
    llm_breaker_cooldown_s: float = Field(default=30.0, gt=0)
    openai_base_url: str | None = Field(default=None, description="Defaults to OPENAI_BASE_URL, then OpenAI.")
    openai_api_key: str | None = Field(default=None, repr=False, description="Defaults to OPENAI_API_KEY.")
    llm_secret_arn: str | None = Field(
        default=None, description="Secrets Manager secret with LLM keys (JSON), read once per cold start."
    )
    answer_cache: bool = Field(
        default=True,
        description="Remember answers in this process (LRU) until the index changes: an identical question "
        "(case and spacing aside) with the same filters and answer settings is answered from memory.",
    )
    answer_cache_entries: int = Field(default=1000, ge=1, description="Answers the in-process cache keeps.")
    answer_cache_mb: float = Field(
        default=8.0, gt=0, description="Memory the in-process answer cache may use (its answers as JSON)."
    )
    answer_cache_ttl_s: float = Field(
        default=3600.0, gt=0, description="A cached answer is used for at most this long (both tiers)."
    )
    answer_cache_table: str | None = Field(
        default=None,
        description="DynamoDB table shared by every Lambda instance as a second cache tier (partition key "
        "cache_key, TTL attribute expires_at); unset: in-process only.",
    )
    document_bucket: str | None = Field(
        default=None,
        description="The S3 document bucket (Lambda); `/health/detailed` checks it can be reached.",
    )
    escalation: str = Field(
        default="I can't answer this from the documentation. Please contact support and include your "
        "question; a person will follow up.",
        description="Shown with every refusal.",
    )

    # the help widget: collections, sites, interactions
    collections: dict[str, CollectionSettings] = Field(
        default_factory=dict,
        description='Per collection: url_template, handoff, escalation, prefix (JSON), e.g. {"default": '
        '{"url_template": "https://docs.example.com/{path}", "handoff": "mailto:support@example.com"}}.',
    )
    sites: list[Site] = Field(
        default_factory=list,
        description='Where the widget is embedded (JSON list): [{"name": "help", "collection": "default", '
        '"origins": ["https://help.example.com"], "key": "pk_..."}].',
    )
    record_interactions: bool = Field(
        default=True,
        description="Keep each question and answer (for feedback and reports): beside a local index in "
        "interactions.sqlite3, in AWS in the interactions table.",
    )
    interactions_table: str | None = Field(default=None, description="DynamoDB table for interactions (AWS).")
    interaction_retention_days: int = Field(
        default=90, ge=1, le=3650, description="Interactions older than this are deleted (TTL in AWS)."
    )
    redact_interactions: bool = Field(
        default=True,
        description="Replace e-mail addresses, phone numbers and runs of 6+ digits in questions and comments "
        "before they are kept.",
    )
    webhook_secret: str | None = Field(
        default=None, repr=False, description="Signs webhook tickets (X-RAG-Explorer-Signature, HMAC-SHA256)."
    )
    webhook_secret_arn: str | None = Field(
        default=None, description="Secrets Manager secret holding webhook_secret (AWS), read once."
    )

    @field_validator("answer_providers", mode="before")
    @classmethod
    def _split_providers(cls, value: Any) -> Any:
        if isinstance(value, str):  # RAG_EXPLORER_ANSWER_PROVIDERS=openai:gpt-4o-mini,extractive
            value = [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("collections", "sites", "llm_base_urls", "llm_api_keys", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment: RAG_EXPLORER_SITES='[{...}]'
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not JSON: {exc}") from None
        return value

    @field_validator("collections")
    @classmethod
    def _collection_names(cls, value: dict[str, CollectionSettings]) -> dict[str, CollectionSettings]:
        for name in value:
            if not re.fullmatch(COLLECTION_PATTERN, name):
                raise ValueError(f"collection name {name[:80]!r}: lower-case letters, digits, - and _")
        return value

    @field_validator("sites")
    @classmethod
    def _unique_sites(cls, value: list[Site]) -> list[Site]:
        for attr in ("name", "key", "key_id"):
            seen = [getattr(s, attr) for s in value if getattr(s, attr)]
            if len(seen) != len(set(seen)):
                raise ValueError(f"two sites share a {attr}")
        return value

    @field_validator("answer_providers")
    @classmethod
    def _some_providers(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one provider (extractive always works)")
        return value

    @model_validator(mode="after")
    def _known_providers(self) -> Settings:
        check_endpoint_names(self.llm_base_urls, self.llm_api_keys)
        for spec in self.answer_providers:
            check_spec(spec, self.llm_base_urls)
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError("chunk_overlap_tokens must be smaller than chunk_tokens")
        if self.store == "opensearch" and not self.opensearch_url:
            raise ValueError("store 'opensearch' needs opensearch_url")
        if self.store == "s3vectors" and not self.s3vectors_bucket:
            raise ValueError("store 's3vectors' needs s3vectors_bucket")
        return self

    @property
    def home_path(self) -> Path:
        return self.home.expanduser()

    @property
    def store_path(self) -> Path:
        return self.home_path / "index"

    @property
    def embedding_cache_path(self) -> Path | None:
        """Where remembered vectors persist: beside a local index; a remote store keeps them in memory."""
        return self.home_path / "embedding-cache.sqlite3" if self.store == "chroma" else None

    @property
    def interactions_path(self) -> Path:
        return self.home_path / "interactions.sqlite3"

    def collection(self, name: str | None) -> CollectionSettings:
        """The settings of collection ``name`` (an unconfigured collection has none)."""
        return self.collections.get(name or DEFAULT_COLLECTION) or CollectionSettings()

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


#: Fields that hold secrets (``repr=False``): never printed, logged or echoed in an error.
SECRET_FIELDS = frozenset(name for name, field in Settings.model_fields.items() if field.repr is False)
MASK = "***"


def masked(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with every set secret replaced by :data:`MASK`, for showing to people."""
    return {k: (MASK if k in SECRET_FIELDS and v else v) for k, v in values.items()}


def _problems(exc: ValidationError) -> str:
    """A validation error without the offending values (which may be secrets): field and message."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
    )


#: Every default in one place: constructors in the core take their defaults from here, never restate them.
DEFAULTS = Settings()


def resolve_home(flag: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The home folder: the ``--home`` flag, else ``RAG_EXPLORER_HOME``, else the default."""
    env = os.environ if env is None else env
    return Path(flag or env.get(ENV_PREFIX + "HOME") or DEFAULT_HOME)


#: Environment variables the deployment plan names, as aliases of settings (the RAG_EXPLORER_ one wins).
ENV_ALIASES = {"VECTOR_STORE": "store"}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: env[alias] for alias, name in ENV_ALIASES.items() if env.get(alias, "") != ""
    }
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in env and env[key] != "":
            values[name] = env[key]
    return values


def _from_file(home: Path) -> dict[str, Any]:
    path = home.expanduser() / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"settings file {path} must hold a JSON object")
    data.pop("home", None)
    return data


def read_settings_file(home: Path) -> dict[str, Any]:
    """What ``<home>/settings.json`` holds now (no environment, no defaults)."""
    return _from_file(home)


def load_settings(
    overrides: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from flags (``overrides``, ``None`` values ignored), env, file and defaults."""
    env = os.environ if env is None else env
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    from_env = _from_env(env)
    home = resolve_home(flags.get("home"), env)
    merged: dict[str, Any] = {**_from_file(home), **from_env, **flags, "home": home}
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {_problems(exc)}") from None


def save_settings_file(home: Path, values: Mapping[str, Any]) -> Path:
    """Merge ``values`` into ``<home>/settings.json`` (validated first); the file is private (0600)."""
    home = home.expanduser()
    current = _from_file(home)
    current.update(values)
    try:
        checked = Settings(home=home, **current)  # validate before writing
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {_problems(exc)}") from None
    for name in values:  # structured settings given as JSON text are written as JSON, not as a string
        if isinstance(getattr(checked, name), list | dict):
            current[name] = checked.model_dump(mode="json", include={name}, exclude_defaults=False)[name]
    home.mkdir(parents=True, exist_ok=True)
    path = home / SETTINGS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(current, fh, indent=2, sort_keys=True)
    os.chmod(path, 0o600)
    return path
