"""``GET /widget.js`` and ``GET /widget/<hash>.js``: the help widget's script (``static/widget.js``).

Both are public (a ``<script>`` tag sends no key) and carry ``Access-Control-Allow-Origin: *``:

* ``/widget.js`` is what an embed snippet points at by default; it is cached for five minutes and has an
  ``ETag``, so a new version reaches pages soon after a deploy;
* ``/widget/<first 16 hex of its SHA-256>.js`` is this exact version, cached for a year (``immutable``),
  for a snippet with a Subresource Integrity hash (``rag-explorer widget-snippet``); any other name is 404,
  so a page pinned to an old version fails visibly rather than running a file that does not match its
  ``integrity``.

The file is read once per process (:func:`widget_asset`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from shared.adapters.http_api.context import ApiContext

WIDGET_FILE = "widget.js"
JAVASCRIPT = "application/javascript; charset=utf-8"
SHORT_CACHE = "public, max-age=300"
LONG_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class WidgetAsset:
    """The widget script and the names it is published under."""

    body: str
    sha256: str  # hex
    integrity: str  # "sha384-<base64>", the value of a <script integrity> attribute

    @property
    def version(self) -> str:
        return self.sha256[:16]

    @property
    def path(self) -> str:
        """The versioned path, ``/widget/<version>.js``."""
        return f"/widget/{self.version}.js"

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


@functools.cache
def widget_asset() -> WidgetAsset:
    """The packaged ``static/widget.js`` with its hashes (read once per process)."""
    raw = (resources.files("shared.adapters.http_api") / "static" / WIDGET_FILE).read_bytes()
    digest = base64.b64encode(hashlib.sha384(raw).digest()).decode("ascii")
    return WidgetAsset(
        body=raw.decode("utf-8"), sha256=hashlib.sha256(raw).hexdigest(), integrity=f"sha384-{digest}"
    )


def versioned_widget() -> tuple[str, str]:
    """``(path, integrity)`` of the current widget: ``("/widget/<hash>.js", "sha384-...")``."""
    asset = widget_asset()
    return asset.path, asset.integrity


def widget_router(ctx: ApiContext) -> Router:
    router = Router()

    def script(cache: str) -> Response[str]:
        asset = widget_asset()
        headers = {
            "Cache-Control": cache,
            "ETag": asset.etag,
            "Access-Control-Allow-Origin": "*",
            "Cross-Origin-Resource-Policy": "cross-origin",
            "X-Content-Type-Options": "nosniff",
        }
        asked = ctx.app.current_event.headers.get("if-none-match") or ""
        if asset.etag in {tag.strip().removeprefix("W/") for tag in asked.split(",")}:
            return Response(status_code=HTTPStatus.NOT_MODIFIED, body="", headers=headers)
        return Response(status_code=HTTPStatus.OK, content_type=JAVASCRIPT, body=asset.body, headers=headers)

    @router.get("/widget.js", include_in_schema=False)
    def widget_js() -> Response[str]:
        return script(SHORT_CACHE)

    @router.get("/widget/<file>", include_in_schema=False)
    def widget_version(file: str) -> Response[str]:
        asset = widget_asset()
        if file != f"{asset.version}.js":
            return ctx.error(
                HTTPStatus.NOT_FOUND,
                "not_found",
                f"no such widget version; this server has {asset.path} (or /widget.js, always the latest)",
            )
        return script(LONG_CACHE)

    ctx.register("GET", "/widget.js")
    return router
