"""Document loaders: good paths per format, stable hashes, and a suite of bad inputs."""

from __future__ import annotations

import io
import logging
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter

from shared.errors import LoaderError
from shared.loaders import SUPPORTED_SUFFIXES, iter_files, load_file
from shared.models import Document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DOCS = FIXTURES / "docs"
BAD = FIXTURES / "bad_inputs"
MB = 1024 * 1024


# --------------------------------------------------------------------------- helpers


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal valid PDF: one Helvetica text line per string, one page per list, optional /Title."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    page_ids = [4 + 2 * i for i in range(len(pages))]
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for page_id, lines in zip(page_ids, pages, strict=True):
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td", *(f"({esc(ln)}) Tj T*" for ln in lines), "ET"]
        stream = "\n".join(ops).encode("latin-1")
        objs.append(
            (
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>"
            ).encode()
        )
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info = ""
    if title is not None:
        objs.append(f"<< /Title ({esc(title)}) /Producer (rag-explorer tests) >>".encode())
        info = f" /Info {len(objs)} 0 R"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


SAMPLE_PDF_PAGES = [
    ["Getting started", "Install the tool with pip install rag-explorer."],
    ["Refunds", "Refunds take 5 business days (see policy)."],
]


def encrypt_pdf(data: bytes, user_password: str, owner_password: str | None = None) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password, owner_password, algorithm="RC4-128")  # RC4 needs no `cryptography`
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def one(path: Path, **kwargs: object) -> Document:
    docs = load_file(path, **kwargs)  # type: ignore[arg-type]
    assert len(docs) == 1
    return docs[0]


def reason_of(path: Path, **kwargs: object) -> str:
    with pytest.raises(LoaderError) as info:
        load_file(path, **kwargs)  # type: ignore[arg-type]
    assert info.value.reason
    return info.value.reason


def make_big_text_file(path: Path, size: int = 50 * MB) -> Path:
    """A real (non-sparse) text file of ``size`` bytes, generated at test time and never committed."""
    line = b"lorem ipsum dolor sit amet, consectetur adipiscing elit\n"
    with path.open("wb") as fh:
        block = line * (MB // len(line) + 1)
        written = 0
        while written < size:
            part = block[: size - written]
            fh.write(part)
            written += len(part)
    return path


# --------------------------------------------------------------------------- API surface


def test_supported_suffixes() -> None:
    assert {".md", ".markdown", ".mdx", ".txt", ".text", ".rst", ".html", ".htm", ".pdf", ".jsonl"} == set(
        SUPPORTED_SUFFIXES
    )
    assert isinstance(SUPPORTED_SUFFIXES, frozenset)


def test_source_defaults_to_path_and_can_be_overridden() -> None:
    path = DOCS / "notes.txt"
    assert one(path).source == str(path)
    assert one(path, source="kb/notes.txt").source == "kb/notes.txt"


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    doc = one(write(tmp_path, "UPPER.MD", "# Title\n\nBody."))
    assert doc.doc_type == "markdown"
    assert doc.title == "Title"


# --------------------------------------------------------------------------- markdown


def test_markdown_sections_headings_front_matter_and_tags() -> None:
    doc = one(DOCS / "guide.md")
    assert doc.doc_type == "markdown"
    assert doc.title == "Deflect Bot Guide"  # front matter wins over the first H1
    assert doc.tags == ["setup", "linux"]
    paths = [s.heading_path for s in doc.sections]
    assert paths == [
        [],
        ["Install"],
        ["Install", "On Linux"],
        ["Install", "On macOS"],  # closing '##' stripped
        ["Configuration"],  # setext H1 resets the stack
        ["Configuration", "Environment variables"],  # setext H2
        ["Configuration", "Environment variables", "Advanced tuning"],  # backticks stripped
    ]
    assert doc.sections[0].text == "Intro paragraph before any heading."
    linux = doc.sections[2].text
    assert "# this is a comment, not a heading" in linux  # fenced code kept, not a heading
    assert "```bash" in linux and "sudo apt install deflect-bot" in linux
    assert "author:" not in doc.text and "---" not in doc.text  # front matter stripped
    assert all(s.page is None for s in doc.sections)
    assert doc.warnings == []


def test_markdown_tags_as_yaml_list_and_title_from_h1() -> None:
    doc = one(DOCS / "faq.markdown")
    assert doc.tags == ["faq", "billing"]
    assert doc.title == "Frequently Asked Questions"
    assert [s.heading_path for s in doc.sections] == [
        ["Frequently Asked Questions", "Refunds"],
        ["Frequently Asked Questions", "Invoices"],
    ]


def test_document_tags_are_deduplicated_capped_and_shortened(tmp_path: Path) -> None:
    from shared.models import MAX_DOCUMENT_TAGS, MAX_TAG_CHARS

    tags = ", ".join(["dup", "dup", "x" * 500] + [f"t{i}" for i in range(MAX_DOCUMENT_TAGS + 10)])
    page = tmp_path / "tags.md"
    page.write_text(f"---\ntags: {tags}\n---\n# Tags\n\nBody text.\n", encoding="utf-8")
    doc = one(page)
    assert len(doc.tags) == MAX_DOCUMENT_TAGS and doc.tags[:2] == ["dup", "x" * MAX_TAG_CHARS]
    assert any(f"the first {MAX_DOCUMENT_TAGS} are kept" in w for w in doc.warnings)


def test_markdown_title_falls_back_to_stem() -> None:
    doc = one(DOCS / "release-notes.md")
    assert doc.title == "release-notes"
    assert [s.heading_path for s in doc.sections] == [[], ["1.2.0"]]


def test_markdown_edge_cases(tmp_path: Path) -> None:
    text = (
        "Para line one\nPara line two\n---\n\n"  # multi-line paragraph + '---': not a setext heading
        "- item\n---\n\n"  # list item + '---': not a heading
        "#hashtag is not a heading\n\n"
        "~~~~\n## inside tilde fence\n~~~\n```\n~~~~\n\n"  # fence closes only with >= 4 tildes
        "##### Deep\ntext\n"
    )
    doc = one(write(tmp_path, "edge.mdx", text))
    assert [s.heading_path for s in doc.sections] == [[], ["Deep"]]
    assert "## inside tilde fence" in doc.sections[0].text
    assert doc.title == "edge"


def test_markdown_only_headings_keeps_the_text(tmp_path: Path) -> None:
    doc = one(write(tmp_path, "toc.md", "# A\n## B\n"))
    assert doc.title == "A"
    assert "B" in doc.text


def test_markdown_front_matter_only_is_empty(tmp_path: Path) -> None:
    assert reason_of(write(tmp_path, "fm.md", "---\ntitle: x\n---\n\n")).startswith("empty file")


def test_markdown_crlf_and_trailing_spaces_normalised(tmp_path: Path) -> None:
    lf = one(write(tmp_path, "lf.md", "# T\n\nline one\nline two\n"))
    crlf = one(write(tmp_path, "crlf.md", "# T  \r\n\r\nline one   \r\nline two\t\r\n"))
    assert crlf.sections == lf.sections
    assert crlf.content_hash == lf.content_hash


# --------------------------------------------------------------------------- text / rst


def test_text_single_section_title_from_first_line() -> None:
    doc = one(DOCS / "notes.txt")
    assert doc.doc_type == "text"
    assert doc.title == "Support hours"
    assert len(doc.sections) == 1
    assert doc.sections[0].heading_path == []
    assert "CET.\n" in doc.sections[0].text  # trailing spaces stripped
    assert doc.sections[0].text.endswith("on-call number.")


def test_text_long_first_line_uses_stem(tmp_path: Path) -> None:
    doc = one(write(tmp_path, "long.text", "x" * 150 + "\nmore\n"))
    assert doc.title == "long"


def test_rst_underlined_titles_are_sections() -> None:
    doc = one(DOCS / "manual.rst")
    assert doc.doc_type == "text"
    assert doc.title == "Admin Manual"
    assert [s.heading_path for s in doc.sections] == [
        ["Admin Manual"],
        ["Admin Manual", "Backups"],
        ["Admin Manual", "Backups", "Restoring"],
        ["Admin Manual", "Monitoring"],
    ]
    assert doc.sections[2].text == "Run ``restore --latest``."


# --------------------------------------------------------------------------- html


def test_html_visible_text_sections_and_title() -> None:
    doc = one(DOCS / "page.html")
    assert doc.doc_type == "html"
    assert doc.title == "Password reset & account help"
    assert [s.heading_path for s in doc.sections] == [
        ["Account help"],
        ["Account help", "Reset your password"],
        ["Account help", "Reset your password", "Link expired?"],
        ["Account help", "Delete your account"],
    ]
    assert doc.sections[0].text == "This page explains how to manage your account."
    # paragraph breaks kept (blank line between <p>s), &nbsp; collapsed
    assert (
        doc.sections[1].text
        == "Click Forgot password on the sign-in page.\n\nCheck your inbox for the reset link."
    )
    assert doc.sections[2].text == "Links expire after 24 hours.\nRequest a new one."
    delete = doc.sections[3].text
    assert "account delete --confirm\n  --keep-backups" in delete  # <pre> whitespace kept
    assert "Plan Retention" in delete and "Free 30 days" in delete
    for junk in ("trackingSecret", "color: red", "Navigation link", "Home", "Sidebar", "Copyright",
                 "Hidden text", "Enable JavaScript", "inline script"):  # fmt: skip
        assert junk not in doc.text, junk


def test_html_title_falls_back_to_h1_then_stem(tmp_path: Path) -> None:
    assert one(write(tmp_path, "a.htm", "<h1>Main <em>Topic</em></h1><p>x</p>")).title == "Main Topic"
    assert one(write(tmp_path, "b.html", "<p>just text</p>")).title == "b"


def test_html_headings_only_and_unclosed_heading(tmp_path: Path) -> None:
    doc = one(write(tmp_path, "h.html", "<h1>Only</h1><h2>Headings</h2>"))
    assert doc.text == "Only\nHeadings"
    swallowed = "<h2>Intro<p>" + "A long paragraph that never closes the heading. " * 10 + "<p>Second."
    doc = one(write(tmp_path, "unclosed.html", swallowed))
    assert doc.sections[0].heading_path == []
    assert "Second." in doc.text


def test_html_article_header_is_content(tmp_path: Path) -> None:
    html = "<header>Site banner</header><article><header><h1>Post</h1></header><p>Body</p></article>"
    doc = one(write(tmp_path, "post.html", html))
    assert doc.title == "Post"
    assert "Site banner" not in doc.text
    assert doc.sections[0].heading_path == ["Post"]


# --------------------------------------------------------------------------- pdf


def test_committed_sample_pdf_is_what_the_helper_builds() -> None:
    assert (DOCS / "sample.pdf").read_bytes() == make_pdf(SAMPLE_PDF_PAGES, title="RAG Explorer Sample")


def test_pdf_pages_and_metadata_title() -> None:
    doc = one(DOCS / "sample.pdf")
    assert doc.doc_type == "pdf"
    assert doc.title == "RAG Explorer Sample"
    assert [s.page for s in doc.sections] == [1, 2]
    assert doc.sections[0].text == "Getting started\nInstall the tool with pip install rag-explorer."
    assert "Refunds take 5 business days (see policy)." in doc.sections[1].text
    assert all(s.heading_path == [] for s in doc.sections)


def test_pdf_title_from_first_line_and_empty_pages_skipped(tmp_path: Path) -> None:
    data = make_pdf([["Chapter One", "Text."], [], ["Page three"]])
    doc = one(write(tmp_path, "book.pdf", data))
    assert doc.title == "Chapter One"
    assert [s.page for s in doc.sections] == [1, 3]
    assert "1 of 3 pages have no extractable text" in doc.warnings


def test_pdf_with_empty_user_password_opens(tmp_path: Path) -> None:
    path = write(tmp_path, "owner_only.pdf", encrypt_pdf(make_pdf(SAMPLE_PDF_PAGES), "", "owner-secret"))
    doc = one(path)
    assert [s.page for s in doc.sections] == [1, 2]
    assert doc.title == "Getting started"


def test_pypdf_warnings_do_not_reach_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # a wrong xref offset: pypdf recovers, logging "Ignoring wrong pointing object 1 0"
    data = make_pdf(SAMPLE_PDF_PAGES).replace(b"0000000009 00000 n", b"0000000011 00000 n")
    with caplog.at_level(logging.DEBUG):
        doc = one(write(tmp_path, "noeof.pdf", data))
    assert [s.page for s in doc.sections] == [1, 2]
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]
    assert any(w.startswith("pypdf: Ignoring wrong pointing object") for w in doc.warnings)
    assert logging.getLogger("pypdf").propagate  # logger state restored


# --------------------------------------------------------------------------- jsonl


def test_jsonl_beir_corpus() -> None:
    path = DOCS / "corpus.jsonl"
    docs = load_file(path, source="ignored-for-jsonl")
    assert [d.source for d in docs] == ["doc1", "doc2", "3"]
    assert [d.title for d in docs] == ["Refund policy", None, "Shipping"]
    assert all(d.doc_type == "jsonl" and len(d.sections) == 1 for d in docs)
    assert docs[0].sections[0].text == "Refunds are processed within 5 business days."
    assert all(d.warnings == [] for d in docs)
    assert len({d.content_hash for d in docs}) == 3


def test_jsonl_bad_lines_skipped_and_counted() -> None:
    docs = load_file(BAD / "mixed.jsonl")
    assert [d.source for d in docs] == ["a1", "a2", "a5"]
    assert docs[0].warnings == ["6 invalid lines skipped (first at line 2: invalid JSON)"]
    assert docs[1].warnings == [] and docs[2].warnings == []


def test_jsonl_all_invalid_is_an_error() -> None:
    assert reason_of(BAD / "all_invalid.jsonl") == (
        "no valid JSON Lines records (3 invalid lines; first at line 1: invalid JSON)"
    )


def test_jsonl_title_only_record_uses_title(tmp_path: Path) -> None:
    docs = load_file(write(tmp_path, "c.jsonl", '\ufeff{"_id": "t", "title": "Only a title", "text": ""}\n'))
    assert docs[0].text == "Only a title"


# --------------------------------------------------------------------------- content hash


@pytest.mark.parametrize("name", ["guide.md", "notes.txt", "manual.rst", "page.html", "sample.pdf"])
def test_content_hash_is_stable_and_independent_of_path(name: str, tmp_path: Path) -> None:
    original = one(DOCS / name)
    copy = tmp_path / "sub dir" / name
    copy.parent.mkdir()
    shutil.copy(DOCS / name, copy)
    again = one(copy, source="elsewhere")
    assert original.content_hash == again.content_hash == one(DOCS / name).content_hash
    assert len(original.content_hash) == 64 and int(original.content_hash, 16) >= 0


def test_content_hash_changes_with_content_title_headings_and_tags(tmp_path: Path) -> None:
    base = one(write(tmp_path, "a.md", "# T\n\n## H\n\nbody\n")).content_hash
    assert one(write(tmp_path, "b.md", "# T\n\n## H\n\nbody!\n")).content_hash != base
    assert one(write(tmp_path, "c.md", "# T2\n\n## H\n\nbody\n")).content_hash != base
    assert one(write(tmp_path, "d.md", "# T\n\n## H2\n\nbody\n")).content_hash != base
    assert one(write(tmp_path, "e.md", "---\ntags: [x]\n---\n# T\n\n## H\n\nbody\n")).content_hash != base
    assert one(write(tmp_path, "f.md", "# T\n\n## H\n\nbody\n")).content_hash == base


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.md", "empty file"),
        ("whitespace_only.txt", "empty file"),
        ("binary.md", "binary content (NUL bytes) in a text file"),
        ("nul_bytes.txt", "binary content (NUL bytes) in a text file"),
        ("not_a_pdf.pdf", "not a PDF file (no %PDF header)"),
        ("unknown.xyz", "unsupported file type '.xyz'"),
        ("only_scripts.html", "no visible text in HTML"),
    ],
)
def test_bad_inputs_committed(name: str, reason: str) -> None:
    assert reason_of(BAD / name) == reason


def test_bad_input_loader_error_names_the_source() -> None:
    with pytest.raises(LoaderError) as info:
        load_file(BAD / "empty.md", source="kb/empty.md")
    assert info.value.source == "kb/empty.md"
    assert str(info.value) == "kb/empty.md: empty file"


def test_truncated_pdf() -> None:
    reason = reason_of(BAD / "truncated.pdf")
    assert reason.startswith("PDF is truncated or corrupt: ")


def test_encrypted_pdf(tmp_path: Path) -> None:
    path = write(tmp_path, "locked.pdf", encrypt_pdf(make_pdf(SAMPLE_PDF_PAGES), "s3cret"))
    assert reason_of(path) == "PDF is encrypted"


def test_scanned_pdf_without_text(tmp_path: Path) -> None:
    assert reason_of(write(tmp_path, "scan.pdf", blank_pdf())) == "no extractable text (scanned PDF?)"


def test_invalid_utf8_is_loaded_as_cp1252_with_a_warning() -> None:
    doc = one(BAD / "invalid_utf8.txt")
    assert doc.warnings == ["not valid UTF-8; decoded as cp1252"]
    assert doc.text == "Café naïve “quoted” – résumé"


def test_utf16_with_bom_is_text_not_binary(tmp_path: Path) -> None:
    doc = one(write(tmp_path, "u16.txt", "Hello UTF-16 ✓\n".encode("utf-16")))
    assert doc.text == "Hello UTF-16 ✓"


def test_nul_bytes_after_the_sniffed_prefix_are_removed(tmp_path: Path) -> None:
    doc = one(write(tmp_path, "late.txt", b"a" * 9000 + b"\x00tail\n"))
    assert "\x00" not in doc.text and doc.text.endswith("tail")
    assert doc.warnings == ["1 NUL characters removed"]


def test_html_scripts_never_leak() -> None:
    doc = one(BAD / "scripts.html")
    assert doc.title == "Scripts everywhere"
    assert doc.text == "Visible paragraph one.\n\nVisible paragraph two."
    for marker in ("SCRIPT", "ONLOAD", "STYLE_TEXT", "TEMPLATE", "SVG_TEXT", "COMMENT", "NOSCRIPT"):
        assert marker not in doc.text


@pytest.mark.parametrize("depth", [5_000, 50_000])
def test_deeply_nested_html(tmp_path: Path, depth: int) -> None:
    html = "<html><body>" + "<div>" * depth + "<p>deep text</p>" + "</div>" * depth + "</body></html>"
    path = write(tmp_path, "nested.html", html)
    start = time.process_time()  # CPU time, with a wide margin: linear work takes well under a second
    doc = one(path)
    assert doc.text == "deep text"
    assert time.process_time() - start < 5


def test_deeply_nested_unclosed_html(tmp_path: Path) -> None:
    doc = one(write(tmp_path, "unclosed.html", "<span>" * 20_000 + "bottom"))
    assert doc.text == "bottom"


def test_unicode_file_name_with_spaces(tmp_path: Path) -> None:
    path = write(tmp_path, "Ünïcødé file — name 日本.md", "# Überschrift\n\nInhalt mit Umlauten: äöü.\n")
    doc = one(path)
    assert doc.source == str(path)
    assert doc.title == "Überschrift"
    assert one(path.with_name(path.name)).content_hash == doc.content_hash


def test_file_too_large_is_rejected_before_reading(tmp_path: Path) -> None:
    big = make_big_text_file(tmp_path / "big.txt")
    assert big.stat().st_size == 50 * MB
    tracemalloc.start()
    try:
        reason = reason_of(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # decided from the size alone: not one block of the 50 MB was read
    assert reason == "file too large (50.0 MB > 20.0 MB limit)"


def test_max_bytes_is_configurable(tmp_path: Path) -> None:
    path = write(tmp_path, "small.txt", "x" * 2048)
    assert reason_of(path, max_bytes=1024) == "file too large (2.0 KB > 1.0 KB limit)"
    assert one(path, max_bytes=4096).text == "x" * 2048


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert reason_of(tmp_path / "nope.md") == "file not found"
    folder = tmp_path / "folder.md"
    folder.mkdir()
    assert reason_of(folder) == "is a directory"


# --------------------------------------------------------------------------- iter_files


def test_iter_files_walks_sorted_and_skips_hidden(tmp_path: Path) -> None:
    for rel in ["b.md", "a/z.txt", "a/c.html", ".hidden.md", ".git/config", "a/.secret/x.md", "a/b/d.pdf"]:
        p = tmp_path / "root" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    extra = tmp_path / "extra.md"
    extra.write_text("x")
    root = tmp_path / "root"
    got = list(iter_files([root, extra, root / "b.md", tmp_path / "missing.md"]))
    assert got == [
        root / "a/b/d.pdf",
        root / "a/c.html",
        root / "a/z.txt",
        root / "b.md",
        extra,
        tmp_path / "missing.md",
    ]


def test_iter_files_yields_an_explicit_hidden_file(tmp_path: Path) -> None:
    p = tmp_path / ".notes.md"
    p.write_text("x")
    assert list(iter_files([p])) == [p]


# --------------------------------------------------------------------------- property-based

_SAMPLE_PDF = make_pdf(SAMPLE_PDF_PAGES, title="t")


@st.composite
def _mutated_pdf(draw: st.DrawFn) -> bytes:
    data = bytearray(_SAMPLE_PDF)
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    cut = draw(st.integers(len(data) // 2, len(data)))
    return bytes(data[:cut])


_contents = st.one_of(
    st.binary(max_size=600),
    st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=300).map(lambda b: b"%PDF-1.4\n" + b),
    _mutated_pdf(),
    st.lists(
        st.sampled_from(["<div>", "</div>", "<h1>", "# ", "\n", "x", "{", '"_id"', "---"]), max_size=60
    ).map(lambda parts: "".join(parts).encode()),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_contents, suffix=st.sampled_from(sorted(SUPPORTED_SUFFIXES)))
def test_random_bytes_only_ever_raise_loader_error(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            docs = load_file(path)
        except LoaderError as exc:
            assert exc.reason
            return
        assert docs
        for doc in docs:
            assert doc.sections and all(s.text.strip() for s in doc.sections)
            assert len(doc.content_hash) == 64


# --------------------------------------------------------------------------- bytes already in memory

from shared.loaders import load_bytes  # noqa: E402


def test_load_bytes_gives_what_load_file_gives_without_a_file(tmp_path: Path) -> None:
    text = "# Guide\n\n## Install\n\nRun the installer:\n\n```\n./install.sh\n```\n"
    path = tmp_path / "guide.md"
    path.write_text(text, encoding="utf-8")
    from_file = load_file(path, source="s3://b/docs/guide.md")
    from_bytes = load_bytes(text.encode(), name="docs/guide.md", source="s3://b/docs/guide.md")
    assert from_bytes == from_file
    untitled = load_bytes(b"Plain words here.\n\nMore words.", name="notes.txt", source="s3://b/notes.txt")
    assert untitled[0].source == "s3://b/notes.txt"


def test_load_bytes_applies_the_same_checks() -> None:
    with pytest.raises(LoaderError, match=r"unsupported file type '\.docx'"):
        load_bytes(b"PK\x03\x04", name="a.docx", source="s")
    with pytest.raises(LoaderError, match=r"file too large \(11 bytes > 10 bytes limit\)"):
        load_bytes(b"x" * 11, name="a.txt", source="s", max_bytes=10)
    with pytest.raises(LoaderError, match="empty file"):
        load_bytes(b"", name="a.md", source="s")
    with pytest.raises(LoaderError) as info:
        load_bytes(b"%PDF-1.7\ntruncated", name="broken.pdf", source="s3://b/broken.pdf")
    assert info.value.source == "s3://b/broken.pdf"
