"""The whole flow in headless Chromium against ``rag-explorer serve``: open the demo page, open the widget
with the keyboard only, ask, follow a citation, rate (stored), refuse with a pre-filled handoff, a
poisoned document shown as text, a page on an origin the site does not list refused, errors with
Retry-After, the page's CSS kept out, mobile width and the dark theme."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from shared.interactions_sqlite import SqliteInteractionStore
from tests.browser.conftest import PK, Dialogs, OtherOrigin, WidgetServer, answer_example_hosts
from tests.browser.widget_page import (
    CODE_QUESTION,
    FOCUSED,
    OUT_OF_SCOPE,
    POISON_QUESTION,
    STEPS_QUESTION,
    ask,
    load,
    open_with_keyboard,
)

pytestmark = pytest.mark.browser


def test_keyboard_only_ask_follow_a_citation_rate_and_close(
    page: Any, widget_server: WidgetServer, dialogs: Dialogs
) -> None:
    answer_example_hosts(page.context)
    load(page, widget_server.url)
    open_with_keyboard(page)
    body = ask(page, STEPS_QUESTION)
    assert body["decision"] == "answer", body

    # the core's numbered steps as an ordered list, in order
    steps = page.locator(".answer ol:not(.sources ol) > li")
    expect(steps).to_have_count(3)
    assert steps.nth(0).inner_text().startswith("Download the package")

    # [1] links to citation 1's public URL, from the collection's URL template
    url = body["citations"][0]["url"]
    assert url and re.fullmatch(r"https://docs\.example\.com/guide/install(#[\w-]+)?", url), url
    marker = page.locator("a.cite").first
    expect(marker).to_have_text("[1]")
    expect(marker).to_have_attribute("href", url)
    expect(marker).to_have_attribute("target", "_blank")
    assert "noopener" in (marker.get_attribute("rel") or "")
    source = page.locator(".sources li").first
    expect(source.get_by_role("link", name="Installing the agent")).to_have_attribute("href", url)
    with page.context.expect_page() as opened:
        marker.click()
    assert opened.value.url == url  # the link works: the docs page opened in a new tab
    opened.value.close()

    # rate it: the button is pressed, the store has it
    helpful = page.get_by_role("button", name="Helpful", exact=True)
    with page.expect_response(lambda r: r.url.endswith("/feedback")) as fb:
        helpful.click()
    assert fb.value.status == 200
    expect(helpful).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_text("Thanks for your feedback.")).to_be_visible()
    stored = SqliteInteractionStore(widget_server.interactions).get(body["interaction_id"])
    assert stored is not None and stored.helpful is True and stored.site == "help"
    assert stored.page_url == widget_server.url + "/"

    # Escape closes the panel and gives focus back to the launcher
    page.locator("#rx-q").focus()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert page.evaluate(FOCUSED) == "launch"
    assert dialogs == []


def test_code_blocks_are_formatted_and_the_host_page_css_stays_out(
    page: Any, widget_server: WidgetServer
) -> None:
    load(page, widget_server.url)
    # the demo page styles its own buttons (uppercase, rust red): the widget's launcher is untouched
    assert page.locator("#open-help").evaluate("e => getComputedStyle(e).textTransform") == "uppercase"
    assert page.locator(".launch").evaluate("e => getComputedStyle(e).textTransform") == "none"
    page.locator("#open-help").click()  # the page's own "Ask a question" opens the widget too
    body = ask(page, CODE_QUESTION)
    assert "```" in body["answer"]
    code = page.locator(".answer pre code")
    expect(code).to_contain_text(
        'curl -fsSL https://get.acme.example/agent | sh\nacme-agent start --token "$ACME_TOKEN"'
    )
    assert "```" not in page.locator(".answer").inner_text()


def test_not_helpful_takes_a_comment_and_offers_support(page: Any, widget_server: WidgetServer) -> None:
    load(page, widget_server.url)
    page.locator(".launch").click()
    body = ask(page, "How do I rotate my API key?")
    page.get_by_role("button", name="Not helpful").click()
    expect(page.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")
    comment = page.get_by_label("What were you looking for? (optional)")
    comment.fill("I need to rotate a key without downtime")
    with page.expect_response(
        lambda r: r.url.endswith("/feedback") and "comment" in (r.request.post_data or "")
    ):
        page.get_by_role("button", name="Send").click()
    stored = SqliteInteractionStore(widget_server.interactions).get(body["interaction_id"])
    assert stored is not None and stored.helpful is False
    assert stored.comment == "I need to rotate a key without downtime"
    offer = page.locator(".more").get_by_role("link", name="Contact support")
    assert parse_qs(urlsplit(offer.get_attribute("href")).query)["question"] == [
        "How do I rotate my API key?"
    ]


def test_out_of_scope_question_gets_the_prefilled_handoff(page: Any, widget_server: WidgetServer) -> None:
    answer_example_hosts(page.context)
    load(page, widget_server.url)
    open_with_keyboard(page)
    body = ask(page, OUT_OF_SCOPE)
    assert body["decision"] == "refuse" and body["handoff"]["kind"] == "form"
    refusal = page.locator(".refusal")
    expect(refusal).to_be_visible()
    link = refusal.get_by_role("link", name="Contact support")
    href = link.get_attribute("href") or ""
    assert href.startswith("https://support.example.com/new?")
    query = parse_qs(urlsplit(href).query)
    assert query["question"] == [OUT_OF_SCOPE] and query["ref"] == [body["interaction_id"]]
    # the footer's link is the same offer
    expect(page.locator(".foot").get_by_role("link", name="Contact support")).to_have_attribute("href", href)
    with page.expect_response(lambda r: r.url.endswith("/feedback")) as fb, page.context.expect_page() as tab:
        link.click()
    assert fb.value.status == 200 and fb.value.json()["handoff"]["kind"] == "form"
    assert tab.value.url == href  # the support form opened, pre-filled
    stored = SqliteInteractionStore(widget_server.interactions).get(body["interaction_id"])
    assert stored is not None and stored.decision == "refuse" and stored.handoff_kind == "form"


def test_a_poisoned_document_is_shown_as_text(
    page: Any, widget_server: WidgetServer, dialogs: Dialogs
) -> None:
    load(page, widget_server.url)
    page.locator(".launch").click()
    body = ask(page, POISON_QUESTION)
    assert "<script>alert(1)</script>" in body["answer"], body  # the server sends the markup as text
    answer = page.locator(".answer p").first
    expect(answer).to_contain_text("<script>alert(1)</script>")
    expect(answer).to_contain_text("<img src=x onerror=alert(2)>")
    created = page.evaluate(
        """() => {
          const root = document.getElementById('rag-explorer-widget').shadowRoot;
          return {
            img: root.querySelectorAll('img').length + document.querySelectorAll('img').length,
            script: root.querySelectorAll('script').length,
            onerror: root.querySelectorAll('[onerror]').length,
          };
        }"""
    )
    assert created == {"img": 0, "script": 0, "onerror": 0}
    page.wait_for_timeout(200)  # give a (wrongly) created handler the chance to fire
    assert dialogs == []


def test_a_page_on_an_origin_the_site_does_not_list_is_refused(
    page: Any, widget_server: WidgetServer, other_origin: OtherOrigin
) -> None:
    """Another port is another origin: the preflight is refused (403), so the browser never sends the
    question, and the widget says it could not reach the service."""
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    load(page, other_origin.url)
    page.locator(".launch").click()
    page.locator("#rx-q").fill("How do I rotate my API key?")
    page.keyboard.press("Enter")
    expect(page.locator(".status[role=alert]")).to_have_text(
        "The help service could not be reached. Please try again later."
    )
    expect(page.locator(".answer > *")).to_have_count(0)
    assert failed == [widget_server.url + "/query"]
    # the server writes its log line after the response: wait for it (bounded), then check it
    for _ in range(100):
        if 'OPTIONS /query" 403' in widget_server.log.read_text():
            break
        page.wait_for_timeout(50)
    assert 'OPTIONS /query" 403' in widget_server.log.read_text()


def test_the_same_server_under_another_host_name_shows_why(page: Any, widget_server: WidgetServer) -> None:
    """http://localhost:<port> is not the listed http://127.0.0.1:<port>: same-origin to the server, so
    the widget can read the error model's message and shows it."""
    load(page, widget_server.url.replace("127.0.0.1", "localhost"))
    page.locator(".launch").click()
    page.locator("#rx-q").fill("How do I rotate my API key?")
    page.keyboard.press("Enter")
    expect(page.locator(".status[role=alert]")).to_contain_text("is not allowed for this key")


def test_busy_server_message_honours_retry_after(page: Any, widget_server: WidgetServer) -> None:
    """The error model's message, and Retry-After, as the widget shows them (the 503 is staged by the
    browser's request interception; the widget code under test is the real one)."""
    page.route(
        "**/query",
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "7", "Content-Type": "application/json"},
            body='{"error": "service_unavailable", "message": "The server is busy.", "details": [],'
            ' "request_id": "r1", "timestamp": "2026-01-01T00:00:00Z"}',
        ),
    )
    load(page, widget_server.url)
    page.locator(".launch").click()
    page.locator("#rx-q").fill("How do I rotate my API key?")
    page.keyboard.press("Enter")
    expect(page.locator(".status[role=alert]")).to_have_text("The server is busy. Please try again in 7 s.")
    expect(page.get_by_role("button", name="Ask", exact=True)).to_be_enabled()


def test_key_and_strings_come_from_data_attributes(page: Any, widget_server: WidgetServer) -> None:
    """A page with its own strings, a dark theme and the versioned file: the API base comes from the
    script's src, the key goes in x-api-key."""
    from shared.adapters.http_api.widget_routes import versioned_widget

    path, integrity = versioned_widget()
    html = (
        '<!doctype html><html lang="fr"><head><title>Aide</title></head><body><main><h1>Aide</h1></main>'
        f'<script src="{path}" integrity="{integrity}" crossorigin="anonymous" data-key="{PK}" '
        'data-launcher="Aide" data-title="Centre d&#39;aide" data-button="Demander" data-theme="dark" async>'
        "</script></body></html>"
    )
    page.route(widget_server.url + "/fr", lambda route: route.fulfill(body=html, content_type="text/html"))
    page.goto(widget_server.url + "/fr")
    page.get_by_role("button", name="Aide").click()
    expect(page.get_by_role("dialog", name="Centre d'aide")).to_be_visible()
    with page.expect_request(lambda r: r.url.endswith("/query")) as request:
        page.locator("#rx-q").fill("How do I rotate my API key?")
        page.get_by_role("button", name="Demander").click()
    assert request.value.headers["x-api-key"] == PK
    expect(page.locator(".answer p").first).to_contain_text("Regenerate")
    background = page.locator(".panel").evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(28, 33, 40)"  # the dark palette


def test_mobile_width_uses_the_whole_screen(browser: Any, widget_server: WidgetServer) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 700}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        load(page, widget_server.url)
        page.locator(".launch").tap()
        box = page.locator(".panel").bounding_box()
        assert box is not None and box["x"] == 0 and box["width"] == 375
    finally:
        context.close()


def test_prefers_dark_color_scheme(browser: Any, widget_server: WidgetServer) -> None:
    context = browser.new_context(color_scheme="dark")
    try:
        page = context.new_page()
        load(page, widget_server.url)
        page.locator(".launch").click()
        background = page.locator(".panel").evaluate("e => getComputedStyle(e).backgroundColor")
        assert background == "rgb(28, 33, 40)"
    finally:
        context.close()
