"""Build an :class:`Embedder` from its settings name."""

from __future__ import annotations

from shared.embeddings.base import Embedder
from shared.errors import ConfigError
from shared.extras import require
from shared.settings import DEFAULTS


def make_embedder(
    name: str,
    *,
    batch_size: int = DEFAULTS.embed_batch_size,
    threads: int = DEFAULTS.embed_threads,
    openai_base_url: str | None = None,
    openai_api_key: str | None = None,
    aws_region: str | None = None,
) -> Embedder:
    kind, _, model = name.partition(":")
    if kind == "local" and model in ("all-MiniLM-L6-v2", "minilm", ""):
        # the extra before the weights (a separate install): its packages load later, when first used
        require("local", "the local embedding model", "tokenizers", "safetensors", "threadpoolctl")
        from shared.embeddings.minilm import MiniLMEmbedder

        return MiniLMEmbedder(batch_size=batch_size, threads=threads)
    if kind == "hash":
        from shared.embeddings.hashing import HashingEmbedder

        try:
            return HashingEmbedder(int(model or 256))
        except ValueError as exc:
            raise ConfigError(f"embedder 'hash:{model}': dimension must be a whole number") from exc
    if kind == "openai" and model:
        from shared.embeddings.openai_embedder import OpenAIEmbedder

        return OpenAIEmbedder(model, base_url=openai_base_url, api_key=openai_api_key)
    if kind == "bedrock" and model:
        from shared.embeddings.bedrock_embedder import BedrockTitanEmbedder

        return BedrockTitanEmbedder(model, region=aws_region)
    raise ConfigError(
        f"unknown embedder '{name}' (known: local:all-MiniLM-L6-v2, hash:<dimension>, openai:<model>, "
        "bedrock:<model id>)"
    )
