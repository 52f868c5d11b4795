"""GET /widget.js and GET /widget/<hash>.js through the HTTP API resolver (API Gateway REST events, no
sockets): public, JavaScript, cacheable, versioned by content, and the integrity hash a snippet uses."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.http_api import create_app
from shared.adapters.http_api.widget_routes import (
    JAVASCRIPT,
    LONG_CACHE,
    SHORT_CACHE,
    versioned_widget,
    widget_asset,
)
from shared.feedback import MemoryInteractionStore
from shared.support import SupportDesk
from tests.unit.test_http_api import assert_error, call, event, make_service

STATIC = Path(__file__).resolve().parents[2] / "shared" / "adapters" / "http_api" / "static" / "widget.js"


@pytest.fixture(scope="module")
def app() -> Any:
    service = make_service()
    return create_app(service, desk=SupportDesk(service.settings, MemoryInteractionStore()))


def get(app: Any, path: str, lambda_context: Any, **headers: str) -> tuple[int, dict[str, Any], Any]:
    ev = event("health_event.json", path=path, resource=path)
    ev["headers"] = {**ev["headers"], **headers}
    ev["multiValueHeaders"] = {**ev["multiValueHeaders"], **{k: [v] for k, v in headers.items()}}
    return call(app, ev, lambda_context)


def test_widget_js_is_public_javascript_cached_briefly(app: Any, lambda_context: Any) -> None:
    status, headers, body = get(app, "/widget.js", lambda_context)
    assert status == 200
    assert headers["content-type"] == [JAVASCRIPT]
    assert headers["cache-control"] == [SHORT_CACHE]
    assert headers["access-control-allow-origin"] == ["*"]
    assert headers["x-content-type-options"] == ["nosniff"]
    assert body == STATIC.read_text(encoding="utf-8")
    assert headers["etag"] == [f'"{widget_asset().version}"']


def test_etag_revalidation_is_304_without_a_body(app: Any, lambda_context: Any) -> None:
    etag = widget_asset().etag
    status, headers, body = get(app, "/widget.js", lambda_context, **{"If-None-Match": f'W/"old", {etag}'})
    assert status == 304 and body == ""
    assert headers["etag"] == [etag]
    status, _, body = get(app, "/widget.js", lambda_context, **{"If-None-Match": '"0000000000000000"'})
    assert status == 200 and body


def test_versioned_file_is_immutable_and_matches_its_integrity(app: Any, lambda_context: Any) -> None:
    path, integrity = versioned_widget()
    raw = STATIC.read_bytes()
    assert path == f"/widget/{hashlib.sha256(raw).hexdigest()[:16]}.js"
    assert integrity == "sha384-" + base64.b64encode(hashlib.sha384(raw).digest()).decode()
    status, headers, body = get(app, path, lambda_context)
    assert status == 200
    assert headers["cache-control"] == [LONG_CACHE] and "immutable" in LONG_CACHE
    assert headers["content-type"] == [JAVASCRIPT]
    assert headers["access-control-allow-origin"] == ["*"]
    assert body.encode("utf-8") == raw  # the bytes the integrity hash covers


@pytest.mark.parametrize(
    "name", ["0000000000000000.js", "widget.js", "..%2Fwidget.js", "{hash}.js", "x" * 300]
)
def test_any_other_version_is_404_with_the_error_model(app: Any, lambda_context: Any, name: str) -> None:
    status, _, body = get(app, f"/widget/{name}", lambda_context)
    err = assert_error(status, body, 404, "not_found")
    assert versioned_widget()[0] in err.message


def test_a_publishable_key_may_fetch_the_widget(lambda_context: Any) -> None:
    site = {"name": "help", "origins": ["https://help.example.com"], "key": "pk_test_widget_01"}
    service = make_service(sites=[site])
    app = create_app(service, desk=SupportDesk(service.settings, MemoryInteractionStore()))
    for path in ("/widget.js", versioned_widget()[0]):
        status, _, body = get(app, path, lambda_context, **{"x-api-key": "pk_test_widget_01"})
        assert status == 200 and "attachShadow" in body


def test_the_script_never_writes_html_from_data() -> None:
    """The XSS rule the browser tests check end to end, held in the source too: no innerHTML, outerHTML,
    insertAdjacentHTML, document.write or eval anywhere in the file, and no third-party URL."""
    source = STATIC.read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/|^\s*//.*$", "", source, flags=re.S | re.M)  # comments may say "innerHTML"
    for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert banned not in code, banned
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", source))
    assert urls <= {"https://API/widget.js", "http://www.w3.org/2000/svg"}, urls
