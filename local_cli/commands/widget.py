"""`widget-snippet`: the script tag that embeds the help widget, pinned to this version with SRI."""

from __future__ import annotations

import json
import re
from html import escape
from urllib.parse import urlsplit

import click

from local_cli.output import UserError, echo
from shared.extras import needs_extra


def snippet(api: str, key: str | None) -> dict[str, str | None]:
    """The tag's parts and the tag: ``src`` is the versioned file, ``integrity`` its SHA-384."""
    with needs_extra("local", "the help widget"):
        from shared.adapters.http_api.widget_routes import versioned_widget

    path, integrity = versioned_widget()
    src = api.rstrip("/") + path
    key_attr = f' data-key="{escape(key, quote=True)}"' if key else ""
    html = (
        f'<script src="{escape(src, quote=True)}"{key_attr} integrity="{integrity}" '
        'crossorigin="anonymous" async></script>'
    )
    return {"src": src, "integrity": integrity, "key": key, "html": html}


def _check_api(api: str) -> str:
    parts = urlsplit(api)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise UserError(f"--api must be the API's base URL, e.g. https://api.example.com/v1 (got {api!r})")
    return api


def _check_key(key: str | None) -> str | None:
    """A publishable key: ``pk_...`` (``sites`` of `serve`), or the bare 20-128 character value API
    Gateway generates for a site's key in AWS. A key that says it is secret (``sk_``/``sk-``) is refused."""
    if key is None:
        return None
    if key.lower().startswith(("sk_", "sk-")) or not re.fullmatch(r"[A-Za-z0-9_-]{8,128}", key):
        raise UserError(
            "--key must be a publishable key (pk_ then 8-128 letters, digits, _ or -, or the value of a "
            "site's key in AWS); never put a secret key in a page"
        )
    if not key.startswith("pk_"):
        if not re.fullmatch(r"[A-Za-z0-9]{20,128}", key):
            raise UserError("--key must be a publishable key: pk_... locally, or a site's key value in AWS")
        echo(
            "note: --key is not pk_...: make sure it is a site's key (Site<Name>KeyId), not a secret one",
            err=True,
        )
    return key


@click.command("widget-snippet")
@click.option(
    "--api",
    envvar="RAG_EXPLORER_ENDPOINT",
    required=True,
    help="Base URL of the API that serves the widget, e.g. https://abc.execute-api.eu-west-1.amazonaws.com"
    "/v1 or http://127.0.0.1:8080 [env RAG_EXPLORER_ENDPOINT].",
)
@click.option(
    "--key",
    envvar="RAG_EXPLORER_WIDGET_KEY",
    help="The site's publishable key: pk_... for `serve`, the site key's value in AWS "
    "[env RAG_EXPLORER_WIDGET_KEY].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: src, integrity, key, html.")
def widget_snippet(api: str, key: str | None, as_json: bool) -> None:
    """Print the <script> tag that embeds the help widget on a page.

    The tag points at this version's file (/widget/<hash>.js, cached for a year) with its Subresource
    Integrity hash, so the page runs exactly this script; the API must serve the same version (deploy
    first). Strings, theme and position are data- attributes: see docs/widget.md.

    \b
    rag-explorer widget-snippet --api https://api.example.com/v1 --key pk_live_help_0123
    """
    parts = snippet(_check_api(api), _check_key(key))
    if as_json:
        click.echo(json.dumps(parts, indent=2))
        return
    click.echo(parts["html"])
