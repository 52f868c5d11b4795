"""Embeddings from OpenAI or any OpenAI-compatible ``/v1/embeddings`` endpoint (Ollama, vLLM, ...).

Name ``openai:<model>``. Vectors are re-normalised to unit length (OpenAI's already are; other servers'
often aren't). Requests go out in batches of ``batch_size`` texts, each retried under a
:class:`~shared.llm.resilience.RetryPolicy` (429 / 5xx / timeouts); failures raise
:class:`~shared.errors.EmbedderError`.

Token counting (:meth:`OpenAIEmbedder.token_spans`, used by the chunker) is an approximation: one token
per run of word characters and one per other non-space character (:func:`approx_token_spans`). BPE
tokenizers split rare words and numbers further, so real counts can be higher; ``max_tokens`` (512) is
far below the models' limits (8191 for ``text-embedding-3-*``), which leaves ample margin.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.errors import EmbedderError
from shared.remote.errors import ModelCallError as LLMError
from shared.remote.openai_compat import classify_openai_error, make_openai_client
from shared.remote.retry import RetryPolicy, retry_call

if TYPE_CHECKING:
    import openai

KNOWN_DIMENSIONS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "nomic-embed-text": 768,
    "mxbai-embed-large": 1024,
    "all-minilm": 384,
}
_APPROX_TOKEN = re.compile(r"\w+|[^\w\s]")


def approx_token_spans(text: str) -> list[tuple[int, int]]:
    """Word runs and single punctuation characters: a tokenizer-free stand-in for subword tokens."""
    return [m.span() for m in _APPROX_TOKEN.finditer(text)]


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise each row (an all-zero row becomes the first basis vector, like the hashing embedder)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    zero = norms[:, 0] == 0.0
    norms[zero] = 1.0
    out = vectors / norms
    if zero.any():
        out[zero, 0] = 1.0
    return out.astype(np.float32, copy=False)


class OpenAIEmbedder:
    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        client: openai.OpenAI | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        dimensions: int | None = None,
        batch_size: int = 64,
        timeout: float = 30.0,
        max_tokens: int = 512,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.model = model
        self.name = f"openai:{model}"
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.requested_dimensions = dimensions  # sent as `dimensions` (text-embedding-3-* can shorten)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self._base_url = base_url
        self._api_key = api_key
        self._timeout = timeout
        self._client = client
        self._dimension: int | None = dimensions or KNOWN_DIMENSIONS.get(model)

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self.model!r}, base_url={self._base_url!r})"

    @property
    def dimension(self) -> int:
        """Known for OpenAI's models; otherwise learnt from the first response (one probe request)."""
        if self._dimension is None:
            self._dimension = int(self._embed_batch(["dimension probe"]).shape[1])
        return self._dimension

    @dimension.setter
    def dimension(self, value: int) -> None:
        self._dimension = value

    @property
    def client(self) -> openai.OpenAI:
        if self._client is None:
            try:
                self._client = make_openai_client(
                    base_url=self._base_url, api_key=self._api_key, timeout=self._timeout, provider=self.name
                )
            except LLMError as exc:
                raise EmbedderError(f"embedder {self.name}: {exc.label}: {exc.message}") from exc
        return self._client

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return approx_token_spans(text)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        batches = [list(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return np.concatenate([self._embed_batch(b) for b in batches], axis=0)

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed_batch([text])[0]

    def _request(self, texts: list[str]) -> Any:
        kwargs: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.requested_dimensions:
            kwargs["dimensions"] = self.requested_dimensions
        response: Any = self.client.embeddings.create(**kwargs)
        if isinstance(response, str):
            raise ValueError(f"not a JSON reply: {response[:120]!r}")
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise ValueError(f"{len(data)} embeddings for {len(texts)} inputs")
        vectors = np.asarray([d.embedding for d in data], dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] == 0 or not np.isfinite(vectors).all():
            raise ValueError(f"embeddings of shape {vectors.shape} or with non-finite values")
        return vectors

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        # the API rejects empty strings; a single space embeds as "nothing" just as well
        texts = [t if t.strip() else " " for t in texts]
        _ = self.client  # created (or failed, as EmbedderError) before any retrying
        try:
            vectors = retry_call(
                lambda: self._request(texts),
                policy=self.retry,
                classify=lambda exc: classify_openai_error(exc, self.name),
                sleep=self.sleep,
            )
        except LLMError as exc:
            raise EmbedderError(f"embedder {self.name}: {exc.label}: {exc.message}") from exc
        if self._dimension is not None and vectors.shape[1] != self._dimension:
            raise EmbedderError(
                f"embedder {self.name} returned {vectors.shape[1]}-dimensional vectors, "
                f"expected {self._dimension}"
            )
        self._dimension = int(vectors.shape[1])
        return unit_rows(vectors)
