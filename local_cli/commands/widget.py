"""`widget-snippet`: the script tag that embeds the help widget, pinned to this version with SRI."""

from __future__ import annotations

import json
from html import escape
from urllib.parse import urlsplit

import click

from local_cli.output import UserError


def snippet(api: str, key: str | None) -> dict[str, str | None]:
    """The tag's parts and the tag: ``src`` is the versioned file, ``integrity`` its SHA-384."""
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
    if key is None:
        return None
    from pydantic import ValidationError

    from shared.sites import Site

    try:
        Site(name="snippet", key=key)
    except ValidationError:
        raise UserError(
            "--key must be a publishable key (pk_ then 8-128 letters, digits, _ or -); never put a "
            "secret key in a page"
        ) from None
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
    help="The site's publishable key, pk_... [env RAG_EXPLORER_WIDGET_KEY].",
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
