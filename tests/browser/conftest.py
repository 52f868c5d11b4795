"""The help widget in a real browser: headless Chromium from the Debian packages (``/usr/bin/chromium``),
driven by Playwright for Python, against ``rag-explorer serve`` on 127.0.0.1.

Nothing here downloads a browser: Playwright is pointed at the system Chromium (``.ci/run`` installs it
with apt). Without it the tests fail with a message saying so rather than skipping: CI must run them.

The session's server has a small documentation set ingested with the hashing embedder (fast, no model),
one site (publishable key, the server's own origin), and a collection with a URL template and a form
handoff; one document contains ``<script>`` and ``<img onerror>`` text.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from local_cli.main import cli
from tests.servers import ROOT, free_port

CHROMIUM = os.environ.get("RAG_EXPLORER_CHROMIUM", "/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PK = "pk_test_widget_0001"
DOCS_URL = "https://docs.example.com/{path}"
SUPPORT_FORM = "https://support.example.com/new?question={question}&ref={interaction_id}"

INSTALL = """---
title: Installing the agent
---
# Installing the agent

The Acme agent runs on Linux and macOS and reports to your Acme dashboard.

## Install steps

To install the agent on a server, follow these steps:

1. Download the package for your platform from the dashboard.
2. Install it with your package manager.
3. Start the agent service and check that it reports within a minute.

To install the agent with the command line, run the following:

```bash
curl -fsSL https://get.acme.example/agent | sh
acme-agent start --token "$ACME_TOKEN"
```

The agent needs outbound HTTPS access to the dashboard.
"""

KEYS = """# API keys

API keys let scripts call the Acme API on behalf of your account.

## Rotating an API key

To rotate your API key, open Settings, choose API keys and press Regenerate. The old key keeps working for
one hour, so deployed scripts have time to switch to the new key.

## Revoking a key

Revoke a key at once when it leaks: press Revoke next to it in Settings. Requests that use a revoked key
are refused with 403.
"""

#: A poisoned page: its text holds markup that must reach the customer as text, never run.
BADGES = """# Status badges

A status badge shows your service health on your own website.

## Badge labels

The badge label field is shown exactly as typed, as plain text. A label such as <script>alert(1)</script>
or <img src=x onerror=alert(2)> appears literally in the badge label and is never run as markup.

## Badge colours

Badge colours follow the service state: green when healthy, amber when degraded, red during an outage.
"""

DOCS = {"guide/install.md": INSTALL, "keys.md": KEYS, "badges.md": BADGES}


@dataclass
class WidgetServer:
    """The running ``serve``: its URL (also the site's allowed origin) and home folder."""

    url: str
    home: Path
    log: Path

    @property
    def interactions(self) -> Path:
        return self.home / "interactions.sqlite3"


def write_index(base: Path, origin: str) -> dict[str, str]:
    """Ingest :data:`DOCS` into ``base/home``; the environment ``serve`` runs with."""
    docs = base / "docs"
    for name, text in DOCS.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text, encoding="utf-8")
    env = {
        "RAG_EXPLORER_HOME": str(base / "home"),
        "RAG_EXPLORER_EMBEDDER": "hash:256",
        "RAG_EXPLORER_SITES": json.dumps([{"name": "help", "origins": [origin], "key": PK}]),
        "RAG_EXPLORER_COLLECTIONS": json.dumps(
            {"default": {"url_template": DOCS_URL, "handoff": SUPPORT_FORM}}
        ),
    }
    result = CliRunner().invoke(cli, ["ingest", str(docs)], env=env)
    assert result.exit_code == 0, result.output
    return env


def start_serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[str]:
    """``rag-explorer serve`` on ``port`` (the site's origin names it, so it is chosen before), ready."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAG_EXPLORER_")}
    args = ["--port", str(port), "--workers", "1", "--site-rate-limit", "0", "--address-rate-limit", "0"]
    out = log.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "local_cli", "serve", *args],
        cwd=ROOT,
        env={**clean, "PYTHONUNBUFFERED": "1", **env},
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out.close()
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            if time.monotonic() > deadline:
                stop(process)
                raise RuntimeError("serve did not start within 60 s") from None
            time.sleep(0.1)


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def widget_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WidgetServer]:
    base = tmp_path_factory.mktemp("widget")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = write_index(base, url)
    log = base / "serve.log"
    process = start_serve(env, port, log)
    try:
        yield WidgetServer(url=url, home=Path(env["RAG_EXPLORER_HOME"]), log=log)
    finally:
        stop(process)


@dataclass
class OtherOrigin:
    """A second origin (another port) that the site does not list, serving one page."""

    url: str
    page: bytes = field(default=b"", repr=False)


@pytest.fixture(scope="session")
def other_origin(widget_server: WidgetServer) -> Iterator[OtherOrigin]:
    """A page on http://127.0.0.1:<another port>/ embedding the widget from the server, with its key."""
    origin = OtherOrigin(url="")
    origin.page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Elsewhere</title></head><body>'
        "<main><h1>A page the site does not list</h1></main>"
        f'<script src="{widget_server.url}/widget.js" data-key="{PK}" async></script></body></html>'
    ).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(origin.page)))
            self.end_headers()
            self.wfile.write(origin.page)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    origin.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield origin
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: install Debian's (apt-get install -y chromium chromium-driver; "
            ".ci/run does) or set RAG_EXPLORER_CHROMIUM; nothing here downloads a browser"
        )
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="rag-explorer-chromium-")
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            env={**os.environ, "HOME": profile},
        )
        try:
            yield chromium
        finally:
            chromium.close()
    shutil.rmtree(profile, ignore_errors=True)


class Dialogs(list[str]):
    """Every alert/confirm/prompt the page opened (each is dismissed): XSS would show up here."""


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1100, "height": 760}, locale="en-US")
    try:
        yield ctx
    finally:
        ctx.close()


def answer_example_hosts(context: Any) -> None:
    """Citation and handoff links point at example.com hosts: the browser gets a stub page for them, never
    the network. (Only where a test follows such a link: with interception on, Playwright answers CORS
    preflights itself, which would hide the server's own.)"""
    context.route("https://docs.example.com/**", lambda route: route.fulfill(body="<title>docs</title>docs"))
    context.route(
        "https://support.example.com/**", lambda route: route.fulfill(body="<title>form</title>form")
    )


@pytest.fixture
def dialogs() -> Dialogs:
    return Dialogs()


@pytest.fixture
def page(context: Any, dialogs: Dialogs) -> Any:
    page = context.new_page()

    def on_dialog(dialog: Any) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return page
