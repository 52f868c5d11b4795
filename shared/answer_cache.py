"""The answer cache: identical questions asked of an unchanged index are answered from memory.

An answer is keyed by (:func:`answer_key`) the question normalised for case and spacing, the filters, the
answer settings that change the result (:data:`ANSWER_SETTINGS`, plus the effective ``max_chunks`` and
confidence threshold of the request), the release, the store it was read from, and the store's **index
version** (:meth:`shared.stores.base.VectorStore.index_version`), which changes whenever an ingest or a
removal changes the index. Nothing is ever invalidated by hand: a changed index simply has a new key space,
and the old entries age out (LRU and TTL).

Two tiers, one port (:class:`AnswerCache`): :class:`LruAnswerCache` in every process (bounded by entries
and by bytes, with a TTL), and optionally a shared tier behind it (the DynamoDB table of
:mod:`shared.adapters.answer_cache_dynamodb`, for Lambda instances that come and go), combined by
:class:`TieredAnswerCache`. A shared tier never fails a question: its errors are logged and count as misses.

Cached is the service's response before it is recorded: every request still gets its own interaction id
and handoff offer from :meth:`shared.support.SupportDesk.record`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import shared
from shared.models import AskResponse, SearchFilter
from shared.settings import DEFAULTS, Settings

#: Settings that change which answer a question gets; a change of any of them is a new key space.
ANSWER_SETTINGS = (
    "embedder", "candidates", "rrf_k", "dense_weight", "lexical_weight", "max_answer_sentences",
    "answer_providers", "openai_base_url", "llm_base_urls", "escalation", "collections",
)  # fmt: skip
_KEY_SCHEMA = "answer-cache/1"  # bump when the key's makeup changes


@runtime_checkable
class AnswerCache(Protocol):
    """Where answers are remembered. ``get`` returns a fresh copy (callers may change it); neither
    method raises for a backend failure (a failure is a miss, a lost write)."""

    def get(self, key: str) -> AskResponse | None: ...

    def put(self, key: str, response: AskResponse) -> None: ...


def normalize_question(question: str) -> str:
    """The question as the cache compares it: Unicode-normalised (NFKC), case-folded, runs of whitespace
    made one space, ends stripped."""
    return " ".join(unicodedata.normalize("NFKC", question).casefold().split())


def settings_fingerprint(settings: Settings) -> str:
    """What of the configuration an answer depends on: :data:`ANSWER_SETTINGS`, the store the index is
    read from, and the release (a new release may answer differently)."""
    store = (
        f"opensearch:{settings.opensearch_url}/{settings.opensearch_index}"
        if settings.store == "opensearch"
        else f"chroma:{settings.store_path}"
    )
    values = settings.model_dump(mode="json", include=set(ANSWER_SETTINGS))
    text = json.dumps([_KEY_SCHEMA, shared.__version__, store, values], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def answer_key(
    question: str,
    *,
    fingerprint: str,
    index_version: str,
    filters: SearchFilter | None,
    max_chunks: int,
    threshold: float,
) -> str:
    """The cache key (hex SHA-256) of a question asked with these filters and effective settings."""
    scope = None
    if filters is not None:
        scope = filters.model_dump(mode="json")
        scope["tags"] = sorted(scope["tags"])
    text = json.dumps(
        [fingerprint, index_version, normalize_question(question), scope, max_chunks, float(threshold)],
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    entries: int = 0
    bytes: int = 0


@dataclass
class _Entry:
    data: str
    expires: float
    size: int


class LruAnswerCache:
    """In-process LRU of answers (kept as JSON: a hit is a fresh copy, and the size bound is exact),
    bounded by ``max_entries`` and ``max_bytes``; an entry older than ``ttl_s`` is a miss. Thread-safe."""

    def __init__(
        self,
        *,
        max_entries: int = DEFAULTS.answer_cache_entries,
        max_bytes: int = int(DEFAULTS.answer_cache_mb * 1024 * 1024),
        ttl_s: float = DEFAULTS.answer_cache_ttl_s,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> AskResponse | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires <= self._clock():
                self._drop(key)
                entry = None
            if entry is None:
                self.stats.misses += 1
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
            data = entry.data
        return AskResponse.model_validate_json(data)

    def put(self, key: str, response: AskResponse) -> None:
        data = response.model_dump_json()
        size = len(key) + len(data.encode("utf-8"))
        if size > self.max_bytes:
            return  # larger than the whole cache: not worth evicting everything for
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = _Entry(data, self._clock() + self.ttl_s, size)
            self.stats.bytes += size
            self.stats.entries = len(self._entries)
            while len(self._entries) > self.max_entries or self.stats.bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))
                self.stats.evictions += 1

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self.stats.bytes -= entry.size
        self.stats.entries = len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.stats.bytes = self.stats.entries = 0


class TieredAnswerCache:
    """The process's LRU in front of a shared tier: a shared hit is kept locally too."""

    def __init__(self, local: LruAnswerCache, shared_tier: AnswerCache) -> None:
        self.local = local
        self.shared = shared_tier

    def get(self, key: str) -> AskResponse | None:
        found = self.local.get(key)
        if found is None:
            found = self.shared.get(key)
            if found is not None:
                self.local.put(key, found)
        return found

    def put(self, key: str, response: AskResponse) -> None:
        self.local.put(key, response)
        self.shared.put(key, response)


def make_answer_cache(settings: Settings) -> AnswerCache | None:
    """The cache ``settings`` describe: None when ``answer_cache`` is off; the in-process LRU; and with
    ``answer_cache_table``, the shared DynamoDB tier behind it (its adapter is imported only then, as the
    store factory imports the OpenSearch adapter only for ``store = "opensearch"``)."""
    if not settings.answer_cache:
        return None
    local = LruAnswerCache(
        max_entries=settings.answer_cache_entries,
        max_bytes=int(settings.answer_cache_mb * 1024 * 1024),
        ttl_s=settings.answer_cache_ttl_s,
    )
    if not settings.answer_cache_table:
        return local
    from shared.adapters.answer_cache_dynamodb import DynamoAnswerCache

    return TieredAnswerCache(
        local, DynamoAnswerCache(settings.answer_cache_table, ttl_s=settings.answer_cache_ttl_s)
    )
