"""What the test server is not configured to send, staged in the browser (Playwright answers /query and
/feedback): a webhook handoff, no handoff at all, citations without a link, a hostile citation URL. The
widget, the page and the server that serves them are the real ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Dialogs, WidgetServer
from tests.browser.widget_page import FOCUSED, ask, load

pytestmark = pytest.mark.browser


def staged(page: Any, query: dict[str, Any], feedback: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Answer /query (and /feedback) in the browser with these bodies: for what the test server is not
    configured to send (a webhook handoff, none at all, citations without a link, a hostile URL). The
    widget is the real one; the bodies it sent to /feedback are returned (filled in as it sends them)."""
    sent: list[dict[str, Any]] = []

    def on_feedback(route: Any) -> None:
        sent.append(json.loads(route.request.post_data or "{}"))
        route.fulfill(status=200, json=feedback or {})

    page.route("**/query", lambda route: route.fulfill(status=200, json=query))
    page.route("**/feedback", on_feedback)
    return sent


RESPONSE = {
    "question": "How do I rotate my API key?",
    "decision": "answer",
    "answer": "Press Regenerate [1]. See the policy [2] and [3].",
    "confidence": 0.9,
    "reasons": [],
    "citations": [
        {
            "n": 1,
            "chunk_id": "a",
            "source": "docs/keys.md",
            "quote": "q",
            "title": "API keys",
            "page": None,
            "heading_path": [],
            "location": "API keys",
            "url": None,
        },
        {
            "n": 2,
            "chunk_id": "b",
            "source": "docs/policy.md",
            "quote": "q",
            "title": "Policy",
            "page": None,
            "heading_path": [],
            "location": "Policy",
            "url": "javascript:alert(3)",
        },
    ],
    "escalation": None,
    "provider": "extractive",
    "interaction_id": "0123456789abcdef0123456789abcdef",
    "handoff": {"kind": "webhook", "url": None},
}


def test_citations_without_a_url_are_text_and_a_webhook_handoff_takes_a_message(
    page: Any, widget_server: WidgetServer, dialogs: Dialogs
) -> None:
    sent = staged(
        page,
        RESPONSE,
        {
            "interaction_id": RESPONSE["interaction_id"],
            "helpful": None,
            "comment_saved": True,
            "handoff": {"kind": "webhook", "url": None, "delivered": True},
        },
    )
    load(page, widget_server.url)
    page.locator(".launch").click()
    ask(page, "How do I rotate my API key?")
    # no url: no link anywhere for [1] or [2] (a javascript: URL is dropped); [3] cites nothing: plain text
    expect(page.locator(".answer a")).to_have_count(0)
    expect(page.locator("button.cite")).to_have_count(2)
    assert "[3]" in page.locator(".answer p").first.inner_text()
    page.locator("button.cite").first.click()
    assert page.evaluate(FOCUSED) == "rx-src-1"  # the marker leads to its entry in the source list
    # webhook: a small form; the ticket request carries the contact and message
    page.locator(".foot").get_by_role("button", name="Contact support").click()
    page.get_by_label("Your e-mail (optional)").fill("ana@example.com")
    page.get_by_label("Message (optional)").fill("Still stuck after regenerating")
    page.get_by_role("form", name="Contact support").get_by_role("button", name="Send").click()
    expect(page.get_by_text("Sent: our support team will get back to you.")).to_be_visible()
    assert sent == [
        {
            "interaction_id": RESPONSE["interaction_id"],
            "handoff": True,
            "contact": "ana@example.com",
            "comment": "Still stuck after regenerating",
        }
    ]
    assert dialogs == []


def test_a_refusal_without_handoff_shows_the_escalation_text(page: Any, widget_server: WidgetServer) -> None:
    refusal = {
        **RESPONSE,
        "decision": "refuse",
        "answer": None,
        "citations": [],
        "handoff": None,
        "escalation": "Write to help@example.com and we will answer within a day.",
    }
    staged(page, refusal)
    load(page, widget_server.url)
    page.locator(".launch").click()
    ask(page, "Something the documentation does not cover")
    expect(page.locator(".refusal p")).to_have_text(
        "Write to help@example.com and we will answer within a day."
    )
    expect(page.get_by_role("button", name="Helpful", exact=True)).to_have_count(0)  # nothing to rate
    page.locator(".refusal").get_by_role("button", name="Contact support").click()
    expect(page.locator(".contactbox")).to_have_text(
        "Write to help@example.com and we will answer within a day."
    )
