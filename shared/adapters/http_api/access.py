"""Who is calling, from which page: publishable keys (sites), what they may call, and CORS.

API Gateway (or ``rag-explorer serve``) has already checked that a key is valid. Here the resolver tells
a **publishable** key (one of the configured :class:`~shared.sites.Site` s: by its API Gateway key id in
AWS, ``requestContext.identity.apiKeyId``; by its value locally, ``identity.apiKey``) from a secret one:

* a publishable key may call only :data:`PUBLISHABLE_ROUTES` (else 403 ``forbidden``);
* from a browser, only from the site's origins (``Origin`` header; else 403 ``origin_not_allowed``);
* it reads only its site's collection (:meth:`Access.scope`);
* its answers carry ``Access-Control-Allow-Origin`` for that origin (:meth:`Access.cors_headers`), and
  ``OPTIONS`` preflights are answered for any origin some site lists (:meth:`Access.preflight_headers`).

Secret keys get no CORS headers: a browser page cannot use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.errors import ForbiddenError
from shared.models import SearchFilter
from shared.sites import Site, find_site, origin_problem

#: (method, path) a publishable key may call; ``/widget/`` covers the versioned widget files.
PUBLISHABLE_ROUTES = frozenset({("POST", "/query"), ("POST", "/feedback"), ("GET", "/widget.js")})
PUBLISHABLE_PREFIXES = (("GET", "/widget/"),)
#: Routes a browser calls cross-origin, with their preflight.
CORS_ROUTES = ("/query", "/feedback")
PREFLIGHT_MAX_AGE_S = 600
ALLOWED_HEADERS = "content-type, x-api-key"
#: Response headers a page on another origin may read: the wait after a 429/503, the id to quote.
EXPOSED = "Retry-After, x-request-id"


def header(event: Mapping[str, Any], name: str) -> str | None:
    """A request header from a REST proxy event, whatever its case (first value)."""
    lower = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == lower and value is not None:
            return str(value)
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == lower and values:
            return str(values[0])
    return None


def _identity(event: Mapping[str, Any]) -> Mapping[str, Any]:
    context = event.get("requestContext") or {}
    identity = context.get("identity") if isinstance(context, Mapping) else None
    return identity if isinstance(identity, Mapping) else {}


class Access:
    """The configured sites, and the rules above applied to one event."""

    def __init__(self, sites: list[Site]) -> None:
        self.sites = sites
        self.all_origins = {o for s in sites for o in s.origins}

    def site(self, event: Mapping[str, Any]) -> Site | None:
        """The site whose publishable key the request carries, else None (a secret key, or no key)."""
        if not self.sites:
            return None
        identity = _identity(event)
        key = identity.get("apiKey") or header(event, "x-api-key")
        key_id = identity.get("apiKeyId")
        return find_site(self.sites, key=str(key) if key else None, key_id=str(key_id) if key_id else None)

    def refusal(self, event: Mapping[str, Any], method: str, path: str) -> ForbiddenError | None:
        """Why a publishable key may not make this request, or None."""
        site = self.site(event)
        if site is None:
            return None
        allowed = (method, path) in PUBLISHABLE_ROUTES or any(
            method == m and path.startswith(p) for m, p in PUBLISHABLE_PREFIXES
        )
        if not allowed:
            return ForbiddenError("a publishable key may only call POST /query and POST /feedback")
        problem = origin_problem(site, header(event, "origin"))
        if problem:
            return ForbiddenError(problem, code="origin_not_allowed")
        return None

    def scope(self, event: Mapping[str, Any], filters: SearchFilter | None) -> SearchFilter | None:
        """``filters`` held to the caller's collection: a publishable key reads its site's only."""
        site = self.site(event)
        if site is None:
            return filters
        asked = filters.collection if filters else None
        if asked is not None and asked != site.collection:
            raise ForbiddenError("this key may not read that collection")
        base = filters or SearchFilter()
        return base.model_copy(update={"collection": site.collection})

    def cors_headers(self, event: Mapping[str, Any]) -> dict[str, str]:
        """For a publishable key's request from one of its site's origins: allow that origin to read."""
        origin = header(event, "origin")
        site = self.site(event)
        if origin is None or site is None or origin_problem(site, origin):
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": EXPOSED,
            "Vary": "Origin",
        }

    def preflight_headers(self, event: Mapping[str, Any]) -> dict[str, str] | None:
        """The answer to an ``OPTIONS`` preflight (which carries no key): None when no site lists the
        origin."""
        origin = header(event, "origin")
        if origin is None or origin.rstrip("/").lower() not in self.all_origins:
            return None
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
            "Vary": "Origin",
        }
