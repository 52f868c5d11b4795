"""`rag-explorer report --html` in a real browser: the file renders without errors or requests, its
charts are real images, and text from customers stays text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from local_cli.main import cli
from tests.integration.test_report import make_home

pytestmark = pytest.mark.browser


def test_report_html_renders_in_the_browser(tmp_path: Path, page: Any, dialogs: list[str]) -> None:
    env = make_home(tmp_path)
    out = tmp_path / "report.html"
    assert CliRunner().invoke(cli, ["report", "--since", "1d", "--html", str(out)], env=env).exit_code == 0

    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("request", lambda request: requests.append(request.url))
    page.goto(out.as_uri())
    page.wait_for_load_state("load")
    assert errors == [] and dialogs == []
    assert all(url.startswith(("file:", "data:")) for url in requests)  # self-contained
    sizes = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.alt])")
    assert len(sizes) == 3 and all(done and width > 300 and alt for done, width, alt in sizes)
    assert page.locator("h1").inner_text() == "Deflection report"
    assert page.locator("script").count() == 0
    assert "<script>alert(1)</script> invoices to csv export" in page.locator("body").inner_text()
    link = page.locator('a[href="https://docs.example.com/billing"]').first
    assert link.inner_text() == "Billing"
