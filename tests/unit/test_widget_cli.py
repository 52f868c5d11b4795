"""`rag-explorer widget-snippet` and the demo page `serve` shows at `/` (no sockets)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from click.testing import CliRunner

from local_cli.demo_page import demo_page_html
from local_cli.main import cli
from shared.adapters.http_api.widget_routes import versioned_widget


class Tags(HTMLParser):
    """Every start tag with its attributes; the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


def test_snippet_pins_the_versioned_file_with_its_integrity() -> None:
    result = CliRunner().invoke(
        cli, ["widget-snippet", "--api", "https://api.example.com/v1/", "--key", "pk_live_help_0123"]
    )
    assert result.exit_code == 0, result.output
    path, integrity = versioned_widget()
    [(tag, attrs)] = parse(result.output).tags
    assert tag == "script"
    assert attrs == {
        "src": f"https://api.example.com/v1{path}",
        "data-key": "pk_live_help_0123",
        "integrity": integrity,
        "crossorigin": "anonymous",
        "async": None,
    }
    assert re.fullmatch(r"sha384-[A-Za-z0-9+/]{64}", integrity)


def test_snippet_json_and_environment() -> None:
    env = {"RAG_EXPLORER_ENDPOINT": "http://127.0.0.1:8000", "RAG_EXPLORER_WIDGET_KEY": "pk_test_local_01"}
    result = CliRunner().invoke(cli, ["widget-snippet", "--json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["src"] == "http://127.0.0.1:8000" + versioned_widget()[0]
    assert data["key"] == "pk_test_local_01" and data["integrity"] == versioned_widget()[1]
    assert data["html"].startswith(f'<script src="{data["src"]}" data-key="pk_test_local_01"')


def test_snippet_refuses_a_secret_key_and_a_bad_api_url() -> None:
    runner = CliRunner()
    secret = runner.invoke(
        cli, ["widget-snippet", "--api", "https://x.example", "--key", "sk-live-0123456789"]
    )
    assert secret.exit_code == 1 and "publishable key" in secret.output
    assert "sk-live" not in secret.output
    aws = runner.invoke(
        cli, ["widget-snippet", "--api", "https://x.example/v1", "--key", "Rk3rT0gs9L4Ef5wXyZ1aB2cD"]
    )
    assert (
        aws.exit_code == 0 and 'data-key="Rk3rT0gs9L4Ef5wXyZ1aB2cD"' in aws.stdout
    )  # AWS-generated site key
    for api in ("ftp://x.example", "https://x.example/?a=1", "not a url"):
        bad = runner.invoke(cli, ["widget-snippet", "--api", api])
        assert bad.exit_code == 1 and "--api" in bad.output
    quoted = runner.invoke(cli, ["widget-snippet", "--api", 'https://x.example/"><script>', "--json"])
    assert quoted.exit_code == 0
    assert '"><script>' not in json.loads(quoted.output)["html"]  # the URL is escaped in the attribute


def test_demo_page_embeds_the_widget_with_the_key_and_nothing_from_elsewhere() -> None:
    html = demo_page_html(key="pk_test_demo_0001")
    tags = parse(html)
    scripts = [attrs for tag, attrs in tags.tags if tag == "script" and attrs.get("src")]
    assert scripts == [{"src": "/widget.js", "data-key": "pk_test_demo_0001", "async": None}]
    urls = [v for _, attrs in tags.tags for k, v in attrs.items() if k in ("src", "href") and v]
    assert all(u.startswith(("/", "#")) for u in urls), urls  # no external resources
    text = " ".join(tags.text)
    assert "Contact us" in text and "How can we help?" in text
    assert ("html", {"lang": "en"}) in tags.tags


def test_demo_page_without_a_key_and_with_a_hostile_title() -> None:
    html = demo_page_html(key=None, title='Acme <script>alert(1)</script> "Help"')
    tags = parse(html)
    assert [a for t, a in tags.tags if t == "script" and a.get("src")] == [
        {"src": "/widget.js", "async": None}
    ]
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
