"""Driving the widget from Playwright: the questions the tests ask, focus inside its shadow root, asking."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

STEPS_QUESTION = "What are the steps to install the agent on a server?"
CODE_QUESTION = "How do I install the agent with the command line?"
POISON_QUESTION = "What happens to a badge label with markup like <script>?"
OUT_OF_SCOPE = "How do I bake sourdough bread?"

#: what has focus, looking into the widget's shadow root: its element's id or class
FOCUSED = """() => {
  const a = document.activeElement;
  if (!a || !a.shadowRoot) return a ? a.tagName.toLowerCase() : null;
  const inner = a.shadowRoot.activeElement;
  return inner ? (inner.id || inner.className || inner.tagName.toLowerCase()) : a.id;
}"""


def open_with_keyboard(page: Any) -> None:
    """Tab until the launcher has focus (nothing else), then Enter."""
    for _ in range(25):
        page.keyboard.press("Tab")
        if page.evaluate(FOCUSED) == "launch":
            break
    else:
        pytest.fail("Tab never reached the widget's launcher")
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog", name="Help center")).to_be_visible()
    assert page.evaluate(FOCUSED) == "rx-q"  # the question box has focus


def ask(page: Any, question: str) -> dict[str, Any]:
    """Type the question and press Enter; the /query response the widget received."""
    if page.evaluate(FOCUSED) == "rx-q":
        page.keyboard.type(question)
    else:
        page.locator("#rx-q").fill(question)
    with page.expect_response(lambda r: r.url.endswith("/query") and r.request.method == "POST") as info:
        page.keyboard.press("Enter")
    body: dict[str, Any] = info.value.json()
    expect(page.locator(".answer > *").first).to_be_visible()
    return body


def load(page: Any, url: str) -> None:
    page.goto(url + "/")
    expect(page.locator(".launch")).to_be_visible()
