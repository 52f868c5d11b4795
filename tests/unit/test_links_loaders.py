"""Links in the loaders: a document's public URL and its headings' anchors, only as the document gives
them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.loaders import load_bytes, load_file
from shared.models import Document


def md(text: str) -> Document:
    (doc,) = load_bytes(text.encode(), name="page.md", source="page.md")
    return doc


def html(text: str) -> Document:
    (doc,) = load_bytes(text.encode(), name="page.html", source="page.html")
    return doc


def rst(text: str) -> Document:
    (doc,) = load_bytes(text.encode(), name="page.rst", source="page.rst")
    return doc


def anchors(doc: Document) -> list[tuple[list[str], str | None]]:
    return [(s.heading_path, s.anchor) for s in doc.sections]


# --------------------------------------------------------------------------- Markdown


def test_front_matter_url_is_the_documents_address() -> None:
    doc = md("---\ntitle: Keys\nurl: https://docs.example.com/keys/\n---\n# Keys\n\nRotate them.\n")
    assert doc.url == "https://docs.example.com/keys/" and doc.warnings == []
    quoted = md("---\nURL: 'http://help.example.com/a?b=1'\n---\nText.\n")
    assert quoted.url == "http://help.example.com/a?b=1"


@pytest.mark.parametrize(
    "value",
    ["/keys/", "keys.html", "ftp://example.com/keys", "javascript:alert(1)", "https://", "https://a b.com/"],
)
def test_a_front_matter_url_that_is_not_absolute_http_is_ignored_with_a_warning(value: str) -> None:
    doc = md(f"---\nurl: {value}\n---\n# Keys\n\nRotate them.\n")
    assert doc.url is None
    assert [w for w in doc.warnings if "front matter url" in w and "not an absolute http(s) URL" in w]


def test_no_front_matter_url_no_address_and_no_warning() -> None:
    for text in ("# Keys\n\nRotate them.\n", "---\ntitle: Keys\nurl:\n---\nRotate them.\n"):
        doc = md(text)
        assert doc.url is None and doc.warnings == []


def test_markdown_heading_ids_become_anchors_and_leave_the_heading_text() -> None:
    doc = md(
        "# Guide {#guide}\n\nIntro.\n\n## Install the agent {#install .important}\n\nRun it.\n\n"
        "Upgrade {#upgrade}\n-------\n\nDownload it.\n"
    )
    assert anchors(doc) == [
        (["Guide"], "guide"),
        (["Guide", "Install the agent"], "install"),
        (["Guide", "Upgrade"], "upgrade"),
    ]
    assert "{#" not in doc.text and doc.title == "Guide"


def test_markdown_without_ids_has_no_anchors_never_a_slug() -> None:
    doc = md("# Guide\n\nIntro.\n\n## Install the agent\n\nRun it.\n")
    assert [s.anchor for s in doc.sections] == [None, None]


def test_a_heading_without_an_id_links_to_the_enclosing_heading_that_has_one() -> None:
    doc = md(
        "# Guide\n\nIntro.\n\n## Install {#install}\n\nRun it.\n\n"
        "### On Linux\n\nUse apt.\n\n## Upgrade\n\nX.\n"
    )
    assert anchors(doc) == [
        (["Guide"], None),
        (["Guide", "Install"], "install"),
        (["Guide", "Install", "On Linux"], "install"),
        (["Guide", "Upgrade"], None),
    ]


def test_braces_that_are_not_an_id_stay_in_the_heading() -> None:
    doc = md("# Use {placeholders}\n\nText.\n\n## Set {#}\n\nMore.\n\n## Map {#} and {a}\n\nX.\n")
    assert [s.heading_path[-1] for s in doc.sections] == ["Use {placeholders}", "Set {#}", "Map {#} and {a}"]
    assert [s.anchor for s in doc.sections] == [None, None, None]


# --------------------------------------------------------------------------- HTML


PAGE = """<html><head><title>Keys — Example docs</title>
<link rel="stylesheet" href="x.css"><link rel="Canonical" href="https://docs.example.com/keys.html">
</head><body><main>
<h1 id="keys">Keys</h1><p>Intro.</p>
<h2><a id="rotate"></a>Rotate</h2><p>Regenerate the key.</p>
<h2><a name="legacy-name">Expire</a></h2><p>Old keys expire.</p>
<section id="audit"><h2>Audit<a class="headerlink" href="#audit" title="Link">¶</a></h2><p>Logs.</p></section>
<h2>See <a href="#rotate">Rotate</a></h2><p>Cross reference.</p>
</main></body></html>"""


def test_html_canonical_link_is_the_documents_address() -> None:
    doc = html(PAGE)
    assert doc.url == "https://docs.example.com/keys.html" and doc.warnings == []


def test_html_heading_ids_an_anchor_inside_or_a_permalink_give_anchors() -> None:
    doc = html(PAGE)
    assert anchors(doc) == [
        (["Keys"], "keys"),
        (["Keys", "Rotate"], "rotate"),
        (["Keys", "Expire"], "legacy-name"),
        (["Keys", "Audit"], "audit"),
        (["Keys", "See Rotate"], "keys"),  # a plain link to another heading is not this heading's id
    ]
    assert "¶" not in doc.text


def test_html_without_ids_has_no_anchors() -> None:
    doc = html("<h1>Keys</h1><p>Intro.</p><h2>Rotate</h2><p>Regenerate.</p>")
    assert [s.anchor for s in doc.sections] == [None, None] and doc.url is None


def test_a_relative_canonical_link_is_ignored_with_a_warning() -> None:
    doc = html('<link rel="canonical" href="/keys.html"><h1>Keys</h1><p>Text.</p>')
    assert doc.url is None
    assert doc.warnings == ["canonical link '/keys.html' ignored: not an absolute http(s) URL"]


def test_only_the_first_canonical_link_counts() -> None:
    doc = html(
        '<link rel="canonical" href="https://a.example.com/x"><link rel="canonical" href="https://b.example.com/">'
        "<p>Text.</p>"
    )
    assert doc.url == "https://a.example.com/x"


# --------------------------------------------------------------------------- reStructuredText, JSON Lines


def test_rst_labels_before_titles_become_anchors_and_leave_the_text() -> None:
    doc = rst(
        "Guide\n=====\n\nIntro.\n\n.. _install-guide:\n\nInstall\n-------\n\nRun it.\n\n"
        ".. _`Old Name`:\n.. _Upgrade_Steps:\n\nUpgrade\n-------\n\nDownload.\n\n"
        ".. _python: https://python.org\n\nPlain\n-----\n\nText.\n"
    )
    assert anchors(doc) == [
        (["Guide"], None),
        (["Guide", "Install"], "install-guide"),
        (["Guide", "Upgrade"], "upgrade-steps"),  # as docutils writes the id; the closest label
        (["Guide", "Plain"], None),  # an external link target is not a label
    ]
    assert ".. _install-guide:" not in doc.text and ".. _python: https://python.org" in doc.text


def test_jsonl_record_url_is_that_documents_address(tmp_path: Path) -> None:
    lines = [
        {"_id": "a", "title": "A", "text": "Alpha.", "url": "https://kb.example.com/a"},
        {"_id": "b", "title": "B", "text": "Beta.", "url": "kb/b"},
        {"_id": "c", "title": "C", "text": "Gamma."},
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    a, b, c = load_file(path)
    assert (a.url, b.url, c.url) == ("https://kb.example.com/a", None, None)
    assert b.warnings == ["record 'b': url 'kb/b' ignored: not an absolute http(s) URL"]
    assert a.warnings == c.warnings == []


def test_a_document_cut_at_the_size_limit_keeps_its_address_and_anchors() -> None:
    from shared.loaders import LoadLimits

    text = "---\nurl: https://docs.example.com/big\n---\n## Part {#part}\n\n" + "word " * 400
    (doc,) = load_bytes(
        text.encode(), name="big.md", source="big.md", limits=LoadLimits(max_document_chars=1000)
    )
    assert doc.url == "https://docs.example.com/big" and doc.sections[0].anchor == "part"
