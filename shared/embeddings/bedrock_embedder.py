"""Amazon Titan Text Embeddings (v2 by default) on Bedrock through ``invoke_model``.

Name ``bedrock:<model id>``. Titan embeds one text per request, so "batching" means up to ``concurrency``
requests in flight at once. v2 is asked for ``dimensions`` (256, 512 or 1024) and ``normalize: true``;
vectors are re-normalised locally all the same. Requests are retried under a
:class:`~shared.llm.resilience.RetryPolicy`; failures raise :class:`~shared.errors.EmbedderError`.
Token counting is the same approximation as the OpenAI embedder's
(:func:`~shared.embeddings.openai_embedder.approx_token_spans`); Titan v2 reads up to 8192 tokens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from shared.embeddings.openai_embedder import approx_token_spans, unit_rows
from shared.errors import EmbedderError
from shared.remote.bedrock import bedrock_client, classify_botocore_error
from shared.remote.errors import ModelCallError as LLMError
from shared.remote.retry import RetryPolicy, retry_call

TITAN_V2_DIMENSIONS = (256, 512, 1024)


class BedrockTitanEmbedder:
    def __init__(
        self,
        model_id: str = "amazon.titan-embed-text-v2:0",
        *,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        dimensions: int = 1024,
        concurrency: int = 4,
        timeout: float = 30.0,
        max_tokens: int = 512,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.model_id = model_id
        self.name = f"bedrock:{model_id}"
        self.v1 = "titan-embed-text-v1" in model_id
        if not self.v1 and dimensions not in TITAN_V2_DIMENSIONS:
            raise EmbedderError(f"embedder {self.name}: dimensions must be one of {TITAN_V2_DIMENSIONS}")
        self.dimension = 1536 if self.v1 else dimensions
        self.max_tokens = max_tokens
        self.concurrency = max(1, concurrency)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self._region = region
        self._endpoint_url = endpoint_url
        self._timeout = timeout
        self._client = client

    def __repr__(self) -> str:
        return f"BedrockTitanEmbedder(model_id={self.model_id!r}, dimension={self.dimension})"

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = bedrock_client(
                    region=self._region, endpoint_url=self._endpoint_url, timeout=self._timeout
                )
            except Exception as exc:
                error = classify_botocore_error(exc, self.name)
                raise EmbedderError(f"embedder {self.name}: {error.label}: {error.message}") from exc
        return self._client

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return approx_token_spans(text)

    def _body(self, text: str) -> str:
        if self.v1:
            return json.dumps({"inputText": text})
        return json.dumps({"inputText": text, "dimensions": self.dimension, "normalize": True})

    def _invoke(self, text: str) -> list[float]:
        response = self.client.invoke_model(
            modelId=self.model_id,
            body=self._body(text),
            contentType="application/json",
            accept="application/json",
        )
        payload = json.loads(response["body"].read())
        embedding = payload["embedding"]
        if not isinstance(embedding, list) or len(embedding) != self.dimension:
            raise ValueError(f"expected a {self.dimension}-dimensional embedding")
        return embedding

    def _embed_one(self, text: str) -> list[float]:
        text = text if text.strip() else " "  # Titan rejects empty input
        try:
            return retry_call(
                lambda: self._invoke(text),
                policy=self.retry,
                classify=lambda exc: classify_botocore_error(exc, self.name),
                sleep=self.sleep,
            )
        except LLMError as exc:
            raise EmbedderError(f"embedder {self.name}: {exc.label}: {exc.message}") from exc

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        _ = self.client  # create the (thread-safe) client once, before the worker threads
        if len(texts) == 1 or self.concurrency == 1:
            rows = [self._embed_one(t) for t in texts]
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(texts))) as pool:
                rows = list(pool.map(self._embed_one, texts))
        vectors = np.asarray(rows, dtype=np.float32)
        if not np.isfinite(vectors).all():
            raise EmbedderError(f"embedder {self.name} returned non-finite values")
        return unit_rows(vectors)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]
