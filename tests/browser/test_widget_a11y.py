"""axe-core (npm, pinned in package.json) in the demo page with the widget open and answered, light and dark:
no serious or critical violations, the widget's shadow DOM included. And the screenshot in the README.

``RAG_EXPLORER_WIDGET_SCREENSHOT=docs/widget.png pytest tests/browser -k screenshot`` refreshes
docs/widget.png; otherwise the screenshot goes to a temporary folder (it is still taken and checked).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import AXE, WidgetServer
from tests.browser.widget_page import STEPS_QUESTION, ask, load

pytestmark = pytest.mark.browser

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations', 'passes']});
  const shadow = (nodes) => nodes.filter(n => n.target.some(t => Array.isArray(t))).length;
  return {
    violations: result.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => JSON.stringify(n.target)),
    })),
    checkedInShadow: result.passes.reduce((sum, rule) => sum + shadow(rule.nodes), 0),
    rulesInShadow: result.passes.filter(rule => shadow(rule.nodes) > 0).map(rule => rule.id),
  };
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_or_critical_violations(
    browser: Any, widget_server: WidgetServer, scheme: str
) -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make test does)")
    context = browser.new_context(color_scheme=scheme, viewport={"width": 1100, "height": 760})
    try:
        page = context.new_page()
        load(page, widget_server.url)
        page.locator(".launch").click()
        ask(page, STEPS_QUESTION)
        page.get_by_role("button", name="Not helpful").click()  # the comment box and the support link too
        expect(page.get_by_label("What were you looking for? (optional)")).to_be_visible()
        page.add_script_tag(path=str(AXE))
        report = page.evaluate(RUN_AXE)
    finally:
        context.close()
    serious = [v for v in report["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
    # axe did look inside the open widget: contrast, names and labels of its controls were checked
    assert report["checkedInShadow"] > 10, report
    assert {"color-contrast", "button-name", "label", "link-name"} <= set(report["rulesInShadow"]), report


def test_screenshot_of_the_answered_widget(browser: Any, widget_server: WidgetServer, tmp_path: Path) -> None:
    target = Path(os.environ.get("RAG_EXPLORER_WIDGET_SCREENSHOT") or tmp_path / "widget.png")
    context = browser.new_context(viewport={"width": 1100, "height": 760}, color_scheme="light")
    try:
        page = context.new_page()
        load(page, widget_server.url)
        page.locator(".launch").click()
        ask(page, STEPS_QUESTION)
        page.get_by_role("button", name="Helpful", exact=True).click()
        expect(page.get_by_text("Thanks for your feedback.")).to_be_visible()
        page.locator("#rx-q").blur()
        page.screenshot(path=str(target))
    finally:
        context.close()
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
