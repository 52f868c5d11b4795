"""Is each configured LLM provider reachable? A cheap check for ``GET /health/detailed``, never a completion.

For every LLM in ``answer_providers`` (as :func:`shared.llm.factory.plan_providers` lists them) the provider
is built with the factory's :func:`~shared.llm.factory.make_llm` (which calls nothing) only to learn its
endpoint: the provider's own ``base_url``/``endpoint_url``, else its SDK client's (``client.base_url`` for
OpenAI-compatible and Anthropic SDKs, ``client.meta.endpoint_url`` for boto3). The check is one
``GET <endpoint>/models`` **without credentials**: any HTTP answer below 500 (200 from Ollama, 401/403
from a cloud API that wants a key) means the endpoint is up; no answer, a timeout or a 5xx means down. A
kind whose endpoint cannot be learned is reported ``unknown`` (not failing), so a new kind of provider
never breaks the health check.

Results are kept :data:`CHECK_TTL_S` per provider, so a monitor polling the endpoint costs at most one
request per provider per minute.
"""

from __future__ import annotations

import inspect
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pydantic import Field

from shared.models import StrictModel
from shared.settings import Settings

#: Seconds a provider's check result is reused.
CHECK_TTL_S = 60.0
#: Seconds one check may take.
PROBE_TIMEOUT_S = 2.0
_PLACEHOLDER_KEY = "health-check-not-sent"  # lets an SDK client be built to read its URL; never sent

Probe = Callable[[str, float], tuple[bool, str]]


class ProviderCheck(StrictModel):
    provider: str = Field(description='As configured, e.g. "openai:gpt-4o-mini".')
    ok: bool = Field(description="False only when the provider's endpoint did not answer (or answered 5xx).")
    status: Literal["ok", "down", "unknown"] = Field(
        description="unknown: no endpoint could be learned for this kind of provider (not a failure)."
    )
    endpoint: str | None = None
    detail: str | None = None
    latency_ms: float = 0.0
    age_s: float = Field(
        default=0.0, description=f"Seconds since the check ran (results are reused for {CHECK_TTL_S:g} s)."
    )


def http_probe(url: str, timeout_s: float) -> tuple[bool, str]:
    """``GET url`` without credentials: ``(reachable, detail)``; any HTTP status below 500 is reachable."""
    if not url.startswith(("http://", "https://")):
        return False, "not an http(s) URL"
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        url, method="GET", headers={"User-Agent": "rag-explorer-health"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return True, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return exc.code < 500, f"HTTP {exc.code}"
    except TimeoutError:
        return False, f"no answer within {timeout_s:g} s"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"unreachable: {str(reason)[:200]}"


def _build(spec: str, settings: Settings) -> Any:
    """The provider, built by the factory from these settings with a placeholder key (so an SDK client can
    be made to tell its URL; nothing is sent), passing what the factory's signature takes."""
    from shared.llm import factory

    name = spec.partition(":")[0]
    offered: dict[str, Any] = {
        "timeout_s": PROBE_TIMEOUT_S,
        "openai_base_url": settings.openai_base_url,
        "openai_api_key": _PLACEHOLDER_KEY,
        "aws_region": settings.aws_region,
    }
    access = getattr(factory, "ProviderAccess", None)
    if access is not None:  # named providers: base URLs per provider, keys never needed here
        keyed = settings.model_copy(update={"llm_api_keys": {name: _PLACEHOLDER_KEY}})
        offered["access"] = access.from_settings(keyed, secret={})
    accepted = inspect.signature(factory.make_llm).parameters
    return factory.make_llm(spec, **{k: v for k, v in offered.items() if k in accepted})


def endpoint_of(llm: Any) -> str | None:
    """The URL ``llm`` sends its requests to, or None when it cannot be learned without a call."""
    for attr in ("base_url", "endpoint_url", "endpoint"):
        value = getattr(llm, attr, None)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value
    try:
        client = llm.client  # built lazily by every SDK-based provider; no request is made
    except Exception:
        return None
    value = getattr(client, "base_url", None) or getattr(getattr(client, "meta", None), "endpoint_url", None)
    text = str(value) if value else ""
    return text if text.startswith(("http://", "https://")) else None


class ProviderProbe:
    """Checks the configured LLM providers, each at most once per ``ttl_s``."""

    def __init__(
        self,
        settings: Settings,
        *,
        probe: Probe = http_probe,
        ttl_s: float = CHECK_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._probe = probe
        self.ttl_s = ttl_s
        self._clock = clock
        self._endpoints: dict[str, str | None] = {}
        self._results: dict[str, tuple[float, ProviderCheck]] = {}

    def providers(self) -> tuple[list[str], bool]:
        """The configured LLM providers and whether the extractive answer is the floor."""
        from shared.llm.factory import plan_providers

        return plan_providers(self.settings.answer_providers)

    def _endpoint(self, spec: str) -> str | None:
        if spec not in self._endpoints:
            try:
                self._endpoints[spec] = endpoint_of(_build(spec, self.settings))
            except Exception:  # an unknown kind, a missing SDK: nothing to check, not a failure
                self._endpoints[spec] = None
        return self._endpoints[spec]

    def _run(self, spec: str) -> ProviderCheck:
        endpoint = self._endpoint(spec)
        if endpoint is None:
            return ProviderCheck(
                provider=spec, ok=True, status="unknown", detail="no endpoint known for this provider"
            )
        started = time.perf_counter()
        reachable, detail = self._probe(endpoint.rstrip("/") + "/models", PROBE_TIMEOUT_S)
        return ProviderCheck(
            provider=spec,
            ok=reachable,
            status="ok" if reachable else "down",
            endpoint=endpoint,
            detail=detail,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def check(self) -> list[ProviderCheck]:
        specs, _ = self.providers()
        now = self._clock()
        stale = [s for s in specs if s not in self._results or now - self._results[s][0] >= self.ttl_s]
        if stale:
            with ThreadPoolExecutor(max_workers=min(8, len(stale))) as pool:
                for spec, result in zip(stale, pool.map(self._run, stale), strict=True):
                    self._results[spec] = (now, result)
        return [
            self._results[s][1].model_copy(update={"age_s": round(now - self._results[s][0], 1)})
            for s in specs
        ]
