"""Health checks: a cheap liveness answer and a detailed report of every dependency.

``GET /health`` never touches a dependency. ``GET /health/detailed`` loads the embedder, asks the store
for its counts, health and index version (``RagService.status()``), calls ``head_bucket`` on the document
bucket when ``RAG_EXPLORER_DOCUMENT_BUCKET`` is set, checks that each LLM provider's endpoint answers (no
completion; results reused for a minute, :mod:`shared.adapters.provider_health`), and reports this
process's memory and uptime and the answer cache's configuration. It is ``ok`` only when every configured
dependency is; an unreachable LLM provider fails it only when no other provider nor the extractive answer
can answer instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

import shared
from shared.adapters.provider_health import ProviderCheck, ProviderProbe
from shared.extras import needs_extra
from shared.models import StrictModel

if TYPE_CHECKING:
    from shared.service import RagService

BUCKET_ENV = "RAG_EXPLORER_DOCUMENT_BUCKET"
_STARTED = time.monotonic()  # module import: the cold start of a Lambda, the start of `serve`


class CheckResult(StrictModel):
    ok: bool = Field(description="False only when the dependency is configured and failing.")
    status: Literal["ok", "down", "not_configured"]
    detail: str | None = None
    latency_ms: float = Field(default=0.0, description="How long the check took.")


class StoreCheck(CheckResult):
    backend: str = Field(description="chroma or opensearch.")
    documents: int | None = None
    chunks: int | None = None
    index_version: str | None = Field(
        default=None, description="Changes with every ingest or removal that changes the index."
    )


class EmbedderCheck(CheckResult):
    name: str | None = None
    dimension: int | None = None
    loaded: bool = False


class BucketCheck(CheckResult):
    bucket: str | None = None


class ProcessInfo(StrictModel):
    pid: int
    rss_mb: float | None = Field(description="Resident memory now (Linux; null elsewhere).")
    peak_rss_mb: float | None = Field(description="Highest resident memory since the process started.")


class AnswerCacheInfo(StrictModel):
    enabled: bool
    max_entries: int
    max_mb: float
    ttl_s: float
    shared_table: str | None = Field(description="The DynamoDB table of the shared tier, if any.")


class HealthResponse(StrictModel):
    status: Literal["ok"] = "ok"
    version: str = Field(description="RAG Explorer version.")
    uptime_s: float = Field(description="Seconds since this process (Lambda instance) started.")


class DetailedHealthResponse(StrictModel):
    status: Literal["ok", "unavailable"]
    version: str
    uptime_s: float
    failing: list[str] = Field(default_factory=list, description="Names of the checks that failed.")
    store: StoreCheck
    embedder: EmbedderCheck
    document_bucket: BucketCheck
    llm_providers: list[str] = Field(
        default_factory=list,
        description="Configured LLM providers, in fallback order (extractive is the floor).",
    )
    providers: list[ProviderCheck] = Field(
        default_factory=list, description="Whether each LLM provider's endpoint answers (no completion)."
    )
    process: ProcessInfo
    answer_cache: AnswerCacheInfo


def _mb(n_bytes: float) -> float:
    return round(n_bytes / (1024 * 1024), 1)


def process_info() -> ProcessInfo:
    """This process's resident memory (``/proc/self/statm``) and its peak (``getrusage``)."""
    rss: float | None = None
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            rss = _mb(int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        pass
    peak: float | None = None
    try:
        import resource
        import sys

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = _mb(maxrss if sys.platform == "darwin" else maxrss * 1024)  # bytes on macOS, KiB on Linux
    except (ImportError, OSError):
        pass
    return ProcessInfo(pid=os.getpid(), rss_mb=rss, peak_rss_mb=peak)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def _default_s3_client() -> Any:
    with needs_extra("aws", "the S3 health check"):
        import boto3
        from botocore.config import Config

    # a health check must answer quickly: short timeouts, no retry storm
    config = Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client("s3", config=config)


class HealthChecker:
    def __init__(
        self,
        service: RagService,
        *,
        bucket: str | None = None,
        s3_client: Any = None,
        s3_client_factory: Callable[[], Any] = _default_s3_client,
        started: float | None = None,
        providers: ProviderProbe | None = None,
    ) -> None:
        self.service = service
        self.bucket = bucket
        self._s3 = s3_client
        self._s3_factory = s3_client_factory
        self.started = _STARTED if started is None else started
        self.providers = providers or ProviderProbe(service.settings)

    @classmethod
    def from_settings(cls, service: RagService, **kwargs: Any) -> HealthChecker:
        return cls(service, bucket=service.settings.document_bucket or None, **kwargs)

    def _uptime(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def liveness(self) -> HealthResponse:
        return HealthResponse(version=shared.__version__, uptime_s=self._uptime())

    # ------------------------------------------------------------------ checks

    def check_embedder(self) -> EmbedderCheck:
        t = time.perf_counter()
        try:
            embedder = self.service.embedder
            embedder.embed_query("health check")  # loads the weights on first use
        except Exception as exc:  # any failure to load is the answer of the check
            return EmbedderCheck(ok=False, status="down", detail=_short(exc), latency_ms=_ms(t))
        return EmbedderCheck(
            ok=True,
            status="ok",
            name=embedder.name,
            dimension=embedder.dimension,
            loaded=True,
            latency_ms=_ms(t),
        )

    def check_store(self) -> StoreCheck:
        backend = self.service.settings.store
        t = time.perf_counter()
        try:
            status = self.service.status()
            version = self.service.store.index_version()
        except Exception as exc:
            return StoreCheck(ok=False, status="down", backend=backend, detail=_short(exc), latency_ms=_ms(t))
        return StoreCheck(
            ok=status.health.ok,
            status="ok" if status.health.ok else "down",
            backend=backend,
            detail=status.health.detail,
            documents=status.documents,
            chunks=status.chunks,
            index_version=version,
            latency_ms=_ms(t),
        )

    def check_bucket(self) -> BucketCheck:
        if not self.bucket:
            return BucketCheck(ok=True, status="not_configured", detail=f"{BUCKET_ENV} is not set")
        t = time.perf_counter()
        try:
            if self._s3 is None:
                self._s3 = self._s3_factory()
            self._s3.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            return BucketCheck(
                ok=False, status="down", bucket=self.bucket, detail=_short(exc), latency_ms=_ms(t)
            )
        return BucketCheck(ok=True, status="ok", bucket=self.bucket, latency_ms=_ms(t))

    def detailed(self) -> DetailedHealthResponse:
        embedder = self.check_embedder()
        store = (
            self.check_store()
            if embedder.ok
            else StoreCheck(
                ok=False,
                status="down",
                backend=self.service.settings.store,
                detail="not checked: the embedder is not available",
            )
        )
        bucket = self.check_bucket()
        checks = {"store": store, "embedder": embedder, "document_bucket": bucket}
        failing = [name for name, check in checks.items() if not check.ok]
        llms, floor = self.providers.providers()
        providers = self.providers.check()
        if providers and not floor and not any(p.ok for p in providers):
            failing.append("llm_providers")  # nothing left that can answer
        return DetailedHealthResponse(
            status="unavailable" if failing else "ok",
            version=shared.__version__,
            uptime_s=self._uptime(),
            failing=failing,
            store=store,
            embedder=embedder,
            document_bucket=bucket,
            llm_providers=llms,
            providers=providers,
            process=process_info(),
            answer_cache=self._cache_info(),
        )

    def _cache_info(self) -> AnswerCacheInfo:
        s = self.service.settings
        return AnswerCacheInfo(
            enabled=s.answer_cache,
            max_entries=s.answer_cache_entries,
            max_mb=s.answer_cache_mb,
            ttl_s=s.answer_cache_ttl_s,
            shared_table=s.answer_cache_table,
        )
