"""Collections and sites: which documents a help widget answers from, where citations link, and how a
customer reaches a person.

* A **collection** is a named document set (``ingest --collection NAME`` locally; an S3 key prefix in the
  cloud). Its settings (:class:`CollectionSettings`) give the public URL template of its pages and its
  handoff to support.
* A **site** (:class:`Site`) is a place the widget is embedded: one publishable key (``pk_...``, public by
  design), one collection, the browser origins allowed to use it.

The one rule for each lives here: :func:`page_url` (a citation's link), :func:`handoff_offer` (the
pre-filled form or e-mail), :func:`origin_problem` (an allowed origin).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import quote, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.models import COLLECTION_PATTERN, DEFAULT_COLLECTION, MAX_URL_CHARS, HandoffOffer

PUBLISHABLE_PREFIX = "pk_"
#: What a handoff URL carries of the question (an e-mail body or query string must stay usable).
MAX_HANDOFF_QUESTION_CHARS = 1000
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def handoff_kind(target: str) -> Literal["form", "mailto", "webhook"]:
    """``https://…`` is a support form, ``mailto:…`` an e-mail, ``webhook:https://…`` a server-side POST."""
    if target.startswith("mailto:"):
        return "mailto"
    if target.startswith("webhook:"):
        return "webhook"
    return "form"


class CollectionSettings(_Config):
    """One collection's public links and handoff (settings ``collections``: name -> these)."""

    url_template: str | None = Field(
        default=None,
        max_length=MAX_URL_CHARS,
        pattern=r"^https?://",
        description="Public URL of a page, e.g. https://docs.example.com/{path}: {path} is the file's path "
        "in the collection without its extension (guide/index.md -> guide/), {file} the path as is.",
    )
    handoff: str | None = Field(
        default=None,
        max_length=MAX_URL_CHARS,
        description="https://support.example.com/new?q={question}&ref={interaction_id} (a form), "
        "mailto:support@example.com, or webhook:https://hooks.example.com/tickets (the server POSTs "
        "a ticket).",
    )
    escalation: str | None = Field(default=None, description="Refusal text for this collection.")
    prefix: str | None = Field(
        default=None, description="S3 key prefix of its documents (default: '<name>/')."
    )

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str | None) -> str | None:
        if value is None:
            return None
        kind = handoff_kind(value)
        if kind == "mailto":
            if not re.fullmatch(r"mailto:[^@\s?]+@[^@\s?]+", value):
                raise ValueError("a mailto handoff is mailto:ADDRESS (subject and body are filled in)")
        elif kind == "webhook":
            url = value.removeprefix("webhook:")
            if not url.startswith("https://") or not urlsplit(url).hostname:
                raise ValueError("a webhook handoff must be webhook:https://HOST/… (HTTPS only)")
        elif not value.startswith("https://") or not urlsplit(value).hostname:
            raise ValueError("a form handoff must be an https:// URL")
        return value


class Site(_Config):
    """A page (or set of pages) that embeds the help widget with one publishable key."""

    name: str = Field(pattern=COLLECTION_PATTERN)
    collection: str = Field(default=DEFAULT_COLLECTION, pattern=COLLECTION_PATTERN)
    origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API with this key, e.g. https://help.example.com.",
    )
    key: str | None = Field(
        default=None, description="The publishable key (pk_…); public by design, it names the site."
    )
    key_id: str | None = Field(default=None, description="In AWS: the API Gateway key id of `key`.")

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        cleaned = [o.strip().rstrip("/").lower() for o in value if o.strip()]
        for origin in cleaned:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path, no wildcard)")
        return list(dict.fromkeys(cleaned))

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and (
            not value.startswith(PUBLISHABLE_PREFIX) or not re.fullmatch(r"[A-Za-z0-9_-]{8,128}", value)
        ):
            raise ValueError("a publishable key starts with pk_ and has 8-128 letters, digits, _ or -")
        return value


def find_site(sites: list[Site], *, key: str | None, key_id: str | None) -> Site | None:
    """The site whose publishable key was presented (by value locally, by API Gateway key id in AWS)."""
    for site in sites:
        if (key and site.key and key == site.key) or (key_id and site.key_id and key_id == site.key_id):
            return site
    return None


def origin_problem(site: Site, origin: str | None) -> str | None:
    """Why a browser request from ``origin`` may not use ``site``'s key, or None when it may.

    No ``Origin`` header means not a browser's cross-origin call (a script): the rate limits bound those.
    """
    if origin is None:
        return None
    if origin.rstrip("/").lower() in site.origins:
        return None
    return f"the origin {origin[:200]!r} is not allowed for this key"


def page_url(template: str, relative_path: str, anchor: str | None = None) -> str:
    """A page's public URL from the collection's template and the file's path within the collection."""
    path = PurePosixPath(relative_path.replace("\\", "/").lstrip("/"))
    stem = path.with_suffix("") if path.suffix else path
    if stem.name in ("index", "README", "readme", "_index"):
        tail = "" if str(stem.parent) == "." else f"{stem.parent}/"
    else:
        tail = str(stem)
    url = template.replace("{path}", quote(tail)).replace("{file}", quote(str(path)))
    return with_anchor(url, anchor)


def with_anchor(url: str, anchor: str | None) -> str:
    """``url`` pointing at heading ``anchor`` (an id the document itself gave), replacing any fragment."""
    if not anchor:
        return url
    return f"{url.split('#', 1)[0]}#{quote(anchor, safe='-._~')}"


def handoff_offer(
    target: str | None, *, question: str, interaction_id: str | None, page: str | None = None
) -> HandoffOffer | None:
    """The collection's handoff, pre-filled: a form URL with the question and interaction id, a mailto with
    subject and body, or (webhook) just the kind: the ticket is filed server-side on request."""
    if not target:
        return None
    kind = handoff_kind(target)
    if kind == "webhook":
        return HandoffOffer(kind="webhook")
    text = question[:MAX_HANDOFF_QUESTION_CHARS]
    ref = interaction_id or ""
    if kind == "mailto":
        body = f"{text}\n\nReference: {ref}" + (f"\nPage: {page}" if page else "")
        query = urlencode({"subject": f"Question: {text[:120]}", "body": body}, quote_via=quote)
        return HandoffOffer(kind="mailto", url=f"{target}?{query}")
    values = {"question": text, "interaction_id": ref, "page_url": page or ""}
    if any("{" + k + "}" in target for k in values):
        url = target
        for name, value in values.items():
            url = url.replace("{" + name + "}", quote(value, safe=""))
    else:
        sep = "&" if "?" in target else "?"
        url = f"{target}{sep}{urlencode({'question': text, 'interaction_id': ref}, quote_via=quote)}"
    return HandoffOffer(kind="form", url=url[: MAX_URL_CHARS * 4])


def _prefix(name: str, conf: CollectionSettings) -> str:
    """A configured collection's S3 key prefix: its own, else ``<name>/``."""
    return conf.prefix if conf.prefix is not None else f"{name}/"


def collection_for_key(collections: Mapping[str, CollectionSettings], key: str) -> str:
    """The collection an S3 object key belongs to: the longest configured prefix it starts with."""
    best, best_len = DEFAULT_COLLECTION, -1
    for name, conf in collections.items():
        prefix = _prefix(name, conf)
        if key.startswith(prefix) and len(prefix) > best_len:
            best, best_len = name, len(prefix)
    return best


def relative_to_collection(collections: Mapping[str, CollectionSettings], name: str, key: str) -> str:
    """An S3 object key as a path within its collection (the prefix removed)."""
    conf = collections.get(name)
    prefix = _prefix(name, conf) if conf else ""  # an unconfigured collection has no prefix to remove
    return key[len(prefix) :] if prefix and key.startswith(prefix) else key
