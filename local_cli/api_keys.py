"""API keys and a per-key rate limit: what API Gateway does in AWS, for ``rag-explorer serve``.

In AWS, API Gateway checks the ``x-api-key`` header and applies the usage plan's throttle before the
query Lambda runs. ``rag-explorer serve`` plays API Gateway's role locally, so it does the same with the
:class:`Gateway` below (the HTTP API resolver in :mod:`shared.adapters.http_api` knows nothing of keys):

* keys come from a file (one per line, blank lines and ``#`` comments ignored) that must not be readable
  or writable by group or others, and/or from ``RAG_EXPLORER_SERVE_API_KEYS`` (comma-separated);
* with keys, every route except ``GET /health`` needs a matching ``x-api-key`` (compared with
  :func:`hmac.compare_digest` against every key), else 403;
* each key has a token bucket (``rate`` per second, ``burst`` deep); an empty bucket gives 429 with
  ``Retry-After`` in whole seconds (at least 1).

Keys are never logged or echoed: a key is named by its position (``#1``, ``#2``, ...).
"""

from __future__ import annotations

import hmac
import math
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.sites import Site

HEADER = "x-api-key"
ENV_KEYS = "RAG_EXPLORER_SERVE_API_KEYS"
#: The routes that need no key: the health check, the widget script, CORS preflights (a browser sends
#: them without the key), and the demo page (``GET /``, served by ``serve`` only).
OPEN_ROUTES = frozenset(
    {("GET", "/health"), ("GET", "/widget.js"), ("GET", "/"), ("OPTIONS", "/query"), ("OPTIONS", "/feedback")}
)
OPEN_PREFIXES = (("GET", "/widget/"),)
DEFAULT_RATE = 20.0
#: Publishable keys (sites): per key, and per key and client address (a script reusing a public key).
DEFAULT_SITE_RATE = "10/20"
DEFAULT_ADDRESS_RATE = "1/10"


def is_open_route(method: str, path: str) -> bool:
    method = method.upper()
    return (method, path) in OPEN_ROUTES or any(method == m and path.startswith(p) for m, p in OPEN_PREFIXES)


MAX_KEY_CHARS = 256


class ApiKeyError(ValueError):
    """A key file or key setting that cannot be used; the message never contains a key."""


def _check_key(key: str, where: str) -> str:
    if len(key) > MAX_KEY_CHARS:
        raise ApiKeyError(f"{where}: an API key is longer than {MAX_KEY_CHARS} characters")
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise ApiKeyError(
            f"{where}: an API key must be printable ASCII without spaces (an HTTP header value)"
        )
    return key


def read_key_file(path: Path) -> list[str]:
    """The keys in ``path``; refuses a file that group or others can read or write (keys are secrets)."""
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ApiKeyError(f"API key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ApiKeyError(f"cannot read API key file {path}: {exc}") from None
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ApiKeyError(
            f"API key file {path} is accessible by group or others (mode {stat.filemode(info.st_mode)}); "
            f"API keys are secrets: run `chmod 600 {path}`"
        )
    keys: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keys.append(_check_key(stripped, f"{path}, line {number}"))
    if not keys:
        raise ApiKeyError(f"API key file {path} holds no key (one per line; # starts a comment)")
    return keys


def parse_env_keys(value: str | None) -> list[str]:
    """Comma-separated keys (``RAG_EXPLORER_SERVE_API_KEYS``); empty items are ignored."""
    return [_check_key(k.strip(), ENV_KEYS) for k in (value or "").split(",") if k.strip()]


def parse_rate_limit(text: str | float | None) -> tuple[float, int] | None:
    """``"RATE"`` or ``"RATE/BURST"`` (burst defaults to twice the rate) → (rate, burst); 0 → no limit."""
    raw = str(text if text is not None else DEFAULT_RATE).strip()
    rate_text, sep, burst_text = raw.partition("/")
    try:
        rate = float(rate_text)
        burst = int(burst_text) if sep else 0
    except ValueError:
        raise ApiKeyError(f"rate limit {raw!r}: expected RATE or RATE/BURST, e.g. 20 or 20/40") from None
    if not math.isfinite(rate) or rate < 0:
        raise ApiKeyError(f"rate limit {raw!r}: the rate must be a number >= 0")
    if not sep:
        burst = max(1, math.ceil(rate * 2))
    if rate == 0:
        return None
    if burst < 1:
        raise ApiKeyError(f"rate limit {raw!r}: the burst must be at least 1")
    return rate, burst


class KeyRing:
    """The configured keys; :meth:`match` names the key a request presented, in constant time per key."""

    def __init__(self, keys: Iterable[str]) -> None:
        unique = list(dict.fromkeys(keys))
        if not unique:
            raise ApiKeyError("no API key given")
        self._keys = [k.encode("ascii") for k in unique]

    def __len__(self) -> int:
        return len(self._keys)

    def match(self, presented: str | None) -> str | None:
        """``"#n"`` for the n-th key if ``presented`` is one of them, else None."""
        if not presented:
            return None
        try:
            given = presented.encode("ascii")
        except UnicodeEncodeError:
            return None
        found: str | None = None
        for number, key in enumerate(self._keys, 1):  # no early exit: the time does not say which key
            if hmac.compare_digest(given, key) and found is None:
                found = f"#{number}"
        return found


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` stored; a request takes one."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float) -> float:
        """0.0 if a token was taken, else the seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """One token bucket per key, thread-safe."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """0.0 if the request may go on, else the seconds to wait."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            return bucket.take(now)


@dataclass(frozen=True)
class Rejection:
    """A request the gateway answers itself: status, error code, message and extra headers."""

    status: int
    error: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Admission:
    """The gateway's verdict: ``rejection`` is None when the request goes on; ``key`` names its key."""

    rejection: Rejection | None = None
    key: str | None = None


FORBIDDEN = Rejection(403, "forbidden", "Forbidden")


def _too_many(limiter: RateLimiter, wait: float, per: str) -> Rejection:
    retry = max(1, math.ceil(wait))
    message = (
        f"Too Many Requests: over {limiter.rate:g} requests/s (burst {limiter.burst}) {per}; "
        f"retry after {retry} s"
    )
    return Rejection(429, "too_many_requests", message, (("Retry-After", str(retry)),))


class Gateway:
    """API keys and throttling in front of the resolver; without secret keys every request goes through.

    Publishable keys (``sites``, from settings) are always recognised and always throttled, per key and
    per key and client address; which routes and collection they reach is the resolver's rule
    (:mod:`shared.adapters.http_api.access`).
    """

    def __init__(
        self,
        keys: KeyRing | None = None,
        limiter: RateLimiter | None = None,
        *,
        sites: Iterable[Site] = (),
        site_limiter: RateLimiter | None = None,
        address_limiter: RateLimiter | None = None,
    ) -> None:
        self.keys = keys
        self.limiter = limiter if keys is not None else None
        self.sites = [s for s in sites if s.key]
        self.site_limiter = site_limiter
        self.address_limiter = address_limiter
        self.origins = {o for s in self.sites for o in s.origins}

    @classmethod
    def from_options(
        cls,
        key_file: Path | None,
        env_keys: str | None,
        rate_limit: str | float | None = None,
        *,
        sites: Iterable[Site] = (),
        site_rate: str | None = DEFAULT_SITE_RATE,
        address_rate: str | None = DEFAULT_ADDRESS_RATE,
    ) -> Gateway:
        """From ``--api-key-file``, ``RAG_EXPLORER_SERVE_API_KEYS``, ``--rate-limit``, the configured sites
        and their limits (``--site-rate-limit``, ``--address-rate-limit``)."""
        keys = read_key_file(key_file) if key_file is not None else []
        keys += parse_env_keys(env_keys)
        limit = parse_rate_limit(rate_limit)
        per_site = parse_rate_limit(site_rate)
        per_address = parse_rate_limit(address_rate)
        return cls(
            KeyRing(keys) if keys else None,
            RateLimiter(*limit) if limit and keys else None,
            sites=sites,
            site_limiter=RateLimiter(*per_site) if per_site else None,
            address_limiter=RateLimiter(*per_address) if per_address else None,
        )

    def cors_headers(self, origin: str | None) -> tuple[tuple[str, str], ...]:
        """On the gateway's own errors (403, 429), so that the widget on a site's page can read them."""
        if origin and origin.rstrip("/").lower() in self.origins:
            from shared.adapters.http_api.access import EXPOSED

            return (
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Expose-Headers", EXPOSED),
                ("Vary", "Origin"),
            )
        return ()

    def _site(self, presented: str | None) -> Site | None:
        if not presented:
            return None
        given = presented.encode("utf-8", "replace")
        found = None
        for site in self.sites:  # compared like secret keys, though these are public
            if hmac.compare_digest(given, str(site.key).encode("utf-8")) and found is None:
                found = site
        return found

    def _admit_site(self, site: Site, client: str | None) -> Admission:
        label = f"site:{site.name}"
        # the address first: requests refused there do not spend the key's shared budget
        if self.address_limiter is not None:
            wait = self.address_limiter.acquire(f"{label}|{client or '-'}")
            if wait > 0:
                return Admission(
                    _too_many(self.address_limiter, wait, "for this publishable key from your address"), label
                )
        if self.site_limiter is not None:
            wait = self.site_limiter.acquire(label)
            if wait > 0:
                return Admission(_too_many(self.site_limiter, wait, "for this publishable key"), label)
        return Admission(key=label)

    @property
    def open(self) -> bool:
        return self.keys is None

    def describe(self) -> str:
        """For the startup line; never shows a key."""
        sites = f"; {len(self.sites)} publishable site key(s)" if self.sites else ""
        if self.keys is None:
            return "API open: no API keys configured (--api-key-file to require x-api-key)" + sites
        n = len(self.keys)
        limit = (
            f"rate limit {self.limiter.rate:g}/s burst {self.limiter.burst} per key"
            if self.limiter
            else "no rate limit"
        )
        return f"{n} API key{'s' if n != 1 else ''}: x-api-key required except GET /health, {limit}{sites}"

    def admit(self, method: str, path: str, api_key: str | None, client: str | None = None) -> Admission:
        """Check one request; ``api_key`` is its ``x-api-key`` header (None when absent), ``client`` its
        address (for the per-address limit of publishable keys)."""
        if is_open_route(method, path):
            return Admission()
        site = self._site(api_key)
        if site is not None:
            return self._admit_site(site, client)
        if self.keys is None:
            return Admission()
        key = self.keys.match(api_key)
        if key is None:
            return Admission(FORBIDDEN)
        if self.limiter is not None:
            wait = self.limiter.acquire(key)
            if wait > 0:
                return Admission(_too_many(self.limiter, wait, "for this API key"), key)
        return Admission(key=key)
