"""Hostile documents: every loader stays within bounded memory and time, and reports what it refused.

Each hostile file is generated here (nothing large is committed) and loaded under ``tracemalloc`` with a
wall clock: the peak of Python allocations and the time per document must stay under :data:`PEAK_MB`
and :data:`SECONDS`, generous bounds that hold on a slow CI runner. Property-based tests (hypothesis)
throw random and structured garbage at every loader and at the chunker. Sockets are disabled (unit).
"""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfWriter

from shared.chunking import Chunker
from shared.embeddings.hashing import HashingEmbedder
from shared.errors import LoaderError
from shared.ingest import Ingestor
from shared.loaders import SUPPORTED_SUFFIXES, LoadLimits, load_file
from shared.models import Document, Section
from shared.settings import load_settings
from shared.stores.memory import MemoryStore

MB = 1024 * 1024
#: Bounds asserted for every hostile document: Python allocations, and CPU time (not wall time, which a
#: busy machine stretches) under tracemalloc, which itself makes Python code 2-3x slower. The worst case
#: (a 19 MB page) takes 5-12 s depending on the machine; the bound catches superlinear blow-ups.
PEAK_MB = 200
SECONDS = 30.0


# --------------------------------------------------------------------------- measuring


@dataclass
class Cost:
    seconds: float = 0.0
    peak_mb: float = 0.0


@contextmanager
def measured() -> Iterator[Cost]:
    cost = Cost()
    tracemalloc.start()
    started = time.process_time()
    try:
        yield cost
    finally:
        cost.seconds = time.process_time() - started
        cost.peak_mb = tracemalloc.get_traced_memory()[1] / MB
        tracemalloc.stop()


def load_bounded(path: Path, limits: LoadLimits | None = None, **kwargs: object) -> list[Document] | str:
    """The documents, or the LoaderError reason; asserts the per-document bounds either way."""
    with measured() as cost:
        try:
            result: list[Document] | str = load_file(path, limits=limits, **kwargs)  # type: ignore[arg-type]
        except LoaderError as exc:
            assert exc.source == str(path)  # every failure names its file
            result = exc.reason
    assert cost.seconds < SECONDS, f"{path.name}: {cost.seconds:.1f} s"
    assert cost.peak_mb < PEAK_MB, f"{path.name}: {cost.peak_mb:.0f} MB"
    return result


# --------------------------------------------------------------------------- a minimal PDF writer

FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def pdf(objects: list[bytes]) -> bytes:
    """Objects 1..n (1 is the catalog), a classic xref table and trailer."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def stream(data: bytes, *, flate: bool = False) -> bytes:
    head = b"<< /Length %d%s >>\nstream\n" % (len(data), b" /Filter /FlateDecode" if flate else b"")
    return head + data + b"\nendstream"


def text_ops(line: str) -> bytes:
    return f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET\n".encode("latin-1")


def pages_pdf(contents: list[bytes], *, flate: bool = False, count: int | None = None) -> bytes:
    """One page per content stream; ``count`` overrides the /Count the page tree claims."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", FONT]
    kids = []
    for content in contents:
        kids.append(f"{len(objects) + 1} 0 R")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (len(objects) + 2)
        )
        objects.append(stream(content, flate=flate))
    n = len(contents) if count is None else count
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {n} >>".encode()
    return pdf(objects)


def shared_page_pdf(n_pages: int) -> bytes:
    """``n_pages`` pages sharing one content stream: many pages in few bytes."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", FONT, stream(text_ops("same page"))]
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
    kids = []
    for _ in range(n_pages):
        kids.append(f"{len(objects) + 1} 0 R")
        objects.append(page + b"/Contents 4 0 R >>")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {n_pages} >>".encode()
    return pdf(objects)


def deflated(prefix: bytes, filler: bytes, total: int) -> bytes:
    """``prefix`` then ``filler`` repeated to ``total`` bytes, deflated as it is generated."""
    z = zlib.compressobj(9)
    parts = [z.compress(prefix)]
    block = filler * (MB // len(filler))
    for _ in range(total // len(block)):
        parts.append(z.compress(block))
    parts.append(z.flush())
    return b"".join(parts)


def encrypted_pdf(password: str) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def zip_bomb(entries: int = 16, entry_bytes: int = 128 * MB) -> bytes:
    """A small zip whose entries together inflate to ``entries * entry_bytes`` (2 GiB by default).

    One deflated block of zeros is written once per entry (the usual zip bomb recipe, without overlap),
    so generating it costs one compression.
    """
    body = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = body.compress(bytes(entry_bytes)) + body.flush()
    crc = zlib.crc32(bytes(entry_bytes))
    out = bytearray()
    central = bytearray()
    for i in range(entries):
        name = f"word/document{i}.xml".encode()
        offset = len(out)
        fields = (20, 0, 8, 0, 0, crc, len(data), entry_bytes, len(name), 0)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + name + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, offset) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, len(central), len(out), 0)
    return bytes(out + central + end)


# --------------------------------------------------------------------------- the hostile corpus


@dataclass
class Hostile:
    name: str
    make: Callable[[], bytes | str]
    #: the LoaderError reason starts with this; None: loads, and ``check`` inspects the documents
    error: str | None = None
    check: Callable[[list[Document]], None] | None = None
    limits: LoadLimits | None = None
    max_seconds: float = SECONDS
    tags: list[str] = field(default_factory=list)


def nested_html() -> str:
    depth = 50_000
    return "<html><body>" + "<div>" * depth + "<p>deep text</p>" + "</div>" * depth + "</body></html>"


ACTIVE_MARKERS = (
    "SCRIPT",
    "STYLE",
    "IFRAME",
    "ONCLICK",
    "ONERROR",
    "JSURL",
    "NOSCRIPT",
    "OBJECT",
    "TEMPLATE",
)


def active_html() -> str:
    return (
        "<html><head><title>Active content</title><style>body{content:'STYLE_HEAD'}</style>"
        "<script>var a = 'SCRIPT_HEAD';</script></head>"
        "<body onload=\"alert('ONLOAD')\">"
        "<p onclick=\"alert('ONCLICK')\">Visible one.</p>"
        "<script>document.write('</p><p>SCRIPT_FAKE_MARKUP</p>')</script>"
        "<iframe src='https://example.com' srcdoc='<p>IFRAME_SRCDOC</p>'>IFRAME_FALLBACK</iframe>"
        "<img src=x onerror=\"alert('ONERROR')\">"
        "<a href=\"javascript:alert('JSURL')\">a link</a>"
        "<style>p::after{content:'STYLE_BODY'}</style>"
        "<noscript>NOSCRIPT_TEXT</noscript><object data='x'>OBJECT_FALLBACK</object>"
        "<template><p>TEMPLATE_TEXT</p></template><script src='x.js'></script>"
        "<p>Visible two.</p><script>unclosed = 'SCRIPT_UNCLOSED'"
    )


def check_active(docs: list[Document]) -> None:
    [doc] = docs
    assert doc.text == "Visible one.\n\na link\n\nVisible two."
    assert not any(marker in doc.text for marker in ACTIVE_MARKERS)


def long_markdown() -> str:
    lines = []
    for i in range(100_000):
        if i % 500 == 0:
            lines.append(f"\n## Part {i // 500}\n")
        lines.append(f"Line {i} of a long file.")
    return "\n".join(lines) + "\n"


def check_long_markdown(docs: list[Document]) -> None:
    [doc] = docs
    assert len(doc.sections) == 200 and doc.sections[-1].heading_path == ["Part 199"]
    assert "Line 99999 of a long file." in doc.sections[-1].text and not doc.warnings


def mixed_encodings() -> bytes:
    """UTF-8 and Latin-1 in one file, and a NUL past the 8 KB sniffed for binary content."""
    utf8, latin1 = "Café in UTF-8.\n".encode(), "Café in Latin-1.\n".encode("latin-1")
    return utf8 + latin1 + b"padding line\n" * 700 + b"\x00tail after a NUL\n"


def check_mixed(docs: list[Document]) -> None:
    [doc] = docs
    assert "not valid UTF-8; decoded as cp1252" in doc.warnings
    assert "Café in Latin-1." in doc.text and "\x00" not in doc.text
    assert any("NUL characters removed" in w for w in doc.warnings)


def check_one_text(expected: str) -> Callable[[list[Document]], None]:
    def check(docs: list[Document]) -> None:
        assert [d.text for d in docs] == [expected]

    return check


def check_warned(fragment: str, *, chars: int | None = None) -> Callable[[list[Document]], None]:
    def check(docs: list[Document]) -> None:
        assert any(fragment in w for d in docs for w in d.warnings), [d.warnings for d in docs]
        if chars is not None:
            assert sum(len(d.text) for d in docs) <= chars + 2 * sum(len(d.sections) for d in docs)

    return check


SMALL = LoadLimits(max_document_chars=50_000, max_sections=1_000, timeout_s=60)
QUICK_TIMEOUT = LoadLimits(timeout_s=1.0)

CORPUS = [
    Hostile("nested.html", nested_html, check=check_one_text("deep text")),
    Hostile("unclosed.html", lambda: "<span>" * 200_000 + "bottom", check=check_one_text("bottom")),
    Hostile("active.html", active_html, check=check_active),
    Hostile("only_active.html", lambda: "<script>SCRIPT</script><iframe>IFRAME</iframe>", "no visible text"),
    Hostile("truncated.pdf", lambda: pages_pdf([text_ops("hello")])[:150], "PDF is truncated or corrupt"),
    Hostile("encrypted.pdf", lambda: encrypted_pdf("s3cret"), "PDF is encrypted"),
    Hostile("many_pages.pdf", lambda: shared_page_pdf(3000), "PDF has too many pages (3,000 > 2,000"),
    Hostile(
        "lying_count.pdf",
        lambda: pages_pdf([b""] * 4500, count=1),
        "PDF exceeds a safety limit",
    ),
    Hostile(
        "bomb.pdf",  # one FlateDecode stream of 300 MB of spaces, 300 KB on disk
        lambda: pages_pdf([deflated(text_ops("bomb"), b" ", 300 * MB)], flate=True),
        "PDF content exceeds the stream limits",
    ),
    Hostile(
        "bomb_page.pdf",  # the bomb is one page among readable ones: the others are indexed
        lambda: pages_pdf(
            [
                zlib.compress(text_ops("first page")),
                deflated(text_ops("bomb"), b" ", 100 * MB),
                zlib.compress(text_ops("last page")),
            ],
            flate=True,
        ),
        check=check_warned("1 of 3 pages exceed the PDF stream limits"),
    ),
    Hostile(
        "operator_bomb.pdf",  # 3 million text operators: pypdf's parse budget stops it
        lambda: pages_pdf([deflated(b"BT /F1 12 Tf 72 720 Td\n", b"(abc) Tj\n", 27 * MB)], flate=True),
        "PDF content exceeds the stream limits",
    ),
    Hostile("zip_bomb.docx", zip_bomb, "unsupported file type '.docx'", max_seconds=0.5),
    Hostile("zip_bomb.pdf", zip_bomb, "not a PDF file (no %PDF header)", max_seconds=0.5),
    Hostile("nul.txt", lambda: b"text\x00\x00\x00binary" * 100, "binary content (NUL bytes)"),
    Hostile("nul.md", lambda: b"# Title\n\x00\x01\x02\x03", "binary content (NUL bytes)"),
    Hostile("nul.html", lambda: b"<p>a</p>\x00" * 10, "binary content (NUL bytes)"),
    Hostile("long.md", long_markdown, check=check_long_markdown),
    Hostile("mixed.txt", mixed_encodings, check=check_mixed),
    Hostile(
        "utf16.md",
        lambda: "\ufeff# Überschrift\n\nInhalt ✓\n".encode("utf-16-le"),
        check=check_one_text("Inhalt ✓"),
    ),
    Hostile(
        "utf16.html",
        lambda: "<h1>Kopf</h1><p>Inhalt ✓</p>".encode("utf-16"),
        check=check_one_text("Inhalt ✓"),
    ),
    Hostile(
        "huge.txt",  # 19 MB of text: cut at max_document_chars (5,000,000), with a warning
        lambda: b"all work and no play makes a large file\n" * (19 * MB // 40),
        check=check_warned("text cut off at 5,000,000 characters", chars=5_000_000),
    ),
    Hostile(
        "huge.html",
        lambda: "<html><body>" + "<p>all work and no play makes a large file</p>\n" * (19 * MB // 48),
        check=check_warned("text cut off at 5,000,000 characters", chars=5_000_000),
    ),
    Hostile(
        "sections.md",  # 200,000 headings: sections capped, later headings kept as text
        lambda: "".join(f"# h{i}\nb\n" for i in range(200_000)),
        check=check_warned("later headings are kept as text"),
        limits=SMALL,
    ),
    Hostile(
        "sections.html",
        lambda: "".join(f"<h2>h{i}</h2><p>b</p>" for i in range(100_000)),
        check=check_warned("later headings are kept as text"),
        limits=SMALL,
    ),
    Hostile(
        "records.jsonl",
        lambda: "".join(f'{{"_id": "{i}", "text": "record {i}"}}\n' for i in range(200_000)),
        check=check_warned("records after the first 1,000 were not read"),
        limits=SMALL,
    ),
    # lines built to make backtracking regexes quadratic (each took seconds to hours before)
    Hostile(
        "spaces.md",
        lambda: "# x" + " " * 300_000 + "y\n\nbody\n",
        check=check_one_text("body"),
        max_seconds=2,
    ),
    Hostile(
        "brackets.md",
        lambda: "# " + "[" * 300_000 + "\n\nbody\n",
        check=check_one_text("body"),
        max_seconds=2,
    ),
    Hostile(
        "links.md",
        lambda: "# " + "![x](" * 100_000 + "\n\nbody\n",
        check=check_one_text("body"),
        max_seconds=2,
    ),
    Hostile("spaces.txt", lambda: ("word" + " " * 200_000 + "word\n") * 5, max_seconds=2),
    Hostile("spaces.html", lambda: "<p style='display" + " " * 300_000 + "x'>t</p>", max_seconds=2),
    # cooperative time budget: the clock is checked between slices, lines, records and pages
    Hostile(
        "tag_soup.html",
        lambda: "<b>" * 3_000_000,
        "parsing took longer than 1 s",
        limits=QUICK_TIMEOUT,
        max_seconds=5,
    ),
    Hostile(
        "slow_pages.pdf",  # 40 pages of 10 MB of whitespace each: about 0.5 s per page
        lambda: pages_pdf([deflated(text_ops("slow"), b" ", 10 * MB)] * 40, flate=True),
        "parsing took longer than 1 s",
        limits=QUICK_TIMEOUT,
        max_seconds=5,
    ),
    Hostile("random.pdf", lambda: b"%PDF-1.7\n" + bytes(range(256)) * 400, "PDF is truncated or corrupt"),
]


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_hostile_document_is_bounded(case: Hostile, hostile_dir: Path) -> None:
    data = case.make()
    path = hostile_dir / case.name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    started = time.process_time()
    result = load_bounded(path, case.limits)
    assert time.process_time() - started < case.max_seconds
    if case.error is not None:
        assert isinstance(result, str) and result.startswith(case.error), result
        return
    assert not isinstance(result, str), result
    assert result and all(d.sections for d in result)
    if case.check is not None:
        case.check(result)


def test_the_zip_bomb_is_one(hostile_dir: Path) -> None:
    data = zip_bomb()
    assert len(data) < 2 * MB
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = archive.infolist()
        assert sum(i.file_size for i in entries) >= 2 * 1024 * MB
        with archive.open(entries[-1]) as fh:  # a valid entry (its CRC is checked): 128 MiB of zeros
            assert sum(len(block) for block in iter(lambda: fh.read(16 * MB), b"")) == 128 * MB


def test_zip_bomb_is_never_opened(hostile_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = hostile_dir / "never.docx"
    path.write_bytes(zip_bomb(entries=1, entry_bytes=MB))
    opened: list[Path] = []
    real_open = Path.open

    def spy(self: Path, *args: object, **kwargs: object) -> object:
        opened.append(self)
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", spy)
    assert load_bounded(path) == "unsupported file type '.docx'"
    assert opened == []


def test_unicode_names_with_spaces_everywhere(tmp_path: Path) -> None:
    folder = tmp_path / "Dökumente mit Leerzeichen 文档"
    folder.mkdir()
    for name, body in {
        "Ünïcødé notes — 日本 📄.md": "# Überschrift\n\nInhalt äöü.\n",
        "  leading and trailing  .txt": "Spaces around the name.\n",
        "emoji 🚀 page.html": "<h1>Rakete</h1><p>Start.</p>",
    }.items():
        path = folder / name
        path.write_text(body, encoding="utf-8")
        result = load_bounded(path)
        assert not isinstance(result, str), result
        assert result[0].source == str(path)


# --------------------------------------------------------------------------- a batch of them


def test_a_batch_of_hostile_files_is_reported_file_by_file(tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    picked = {
        "zip_bomb.docx",
        "bomb.pdf",
        "many_pages.pdf",
        "encrypted.pdf",
        "nul.txt",
        "active.html",
        "nested.html",
        "mixed.txt",
    }
    for case in CORPUS:
        if case.name in picked:
            data = case.make()
            (batch / case.name).write_bytes(data.encode() if isinstance(data, str) else data)
    (batch / "sections.md").write_text("".join(f"# h{i}\nb\n" for i in range(3_000)), encoding="utf-8")
    (batch / "good guide ✓.md").write_text("# Guide\n\nRotate keys in the console.\n", encoding="utf-8")
    (batch / "zz good.txt").write_text("Invoices are emailed monthly.\n", encoding="utf-8")

    embedder = HashingEmbedder(64)
    store = MemoryStore(dimension=64)
    ingestor = Ingestor(
        embedder, store, Chunker(embedder), limits=LoadLimits(max_sections=1_000, timeout_s=30)
    )
    with measured() as cost:
        summary = ingestor.ingest_paths([batch])
    assert cost.seconds < 30

    reports = {Path(r.path).name: r for r in summary.files}
    assert set(reports) == {p.name for p in batch.iterdir()}  # every file accounted for, by name
    for name in ("good guide ✓.md", "zz good.txt", "active.html", "nested.html", "mixed.txt", "sections.md"):
        assert reports[name].status == "indexed", (name, reports[name])
    assert reports["zip_bomb.docx"].status == "skipped"
    for name in ("bomb.pdf", "many_pages.pdf", "encrypted.pdf", "nul.txt"):
        assert reports[name].status == "error" and reports[name].reason, name
    assert any("later headings are kept as text" in w for w in reports["sections.md"].warnings)
    assert summary.files_indexed == 6 and summary.files_failed == 4 and summary.files_skipped == 1
    texts = " ".join(c.text for c in store._chunks.values())
    assert not any(marker in texts for marker in ACTIVE_MARKERS)


def test_limits_come_from_settings() -> None:
    env = {
        "RAG_EXPLORER_MAX_DOCUMENT_CHARS": "12345",
        "RAG_EXPLORER_MAX_PDF_PAGES": "7",
        "RAG_EXPLORER_MAX_PDF_STREAM_MB": "1.5",
        "RAG_EXPLORER_LOADER_TIMEOUT_S": "2.5",
        "RAG_EXPLORER_MAX_SECTIONS_PER_FILE": "300",
        "RAG_EXPLORER_HOME": "/nonexistent-rag-home",
    }
    limits = LoadLimits.from_settings(load_settings(env=env))
    assert limits == LoadLimits(
        max_document_chars=12345,
        max_pdf_pages=7,
        max_pdf_stream_bytes=int(1.5 * MB),
        timeout_s=2.5,
        max_sections=300,
    )
    assert LoadLimits.from_settings(load_settings(env={"RAG_EXPLORER_HOME": "/nonexistent"})) == LoadLimits()


def test_small_limits_apply_to_every_format(tmp_path: Path) -> None:
    limits = LoadLimits(max_document_chars=1000, max_pdf_pages=2)
    cases = {
        "a.md": "# T\n\n" + "word " * 1000,
        "a.txt": "word " * 1000,
        "a.rst": "Title\n=====\n\n" + "word " * 1000,
        "a.html": "<p>" + "word " * 1000 + "</p>",
        "a.jsonl": '{"_id": "r1", "text": "' + "word " * 1000 + '"}\n',
    }
    for name, body in cases.items():
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        result = load_bounded(path, limits)
        assert not isinstance(result, str), (name, result)
        assert len(result[0].text) <= 1000, name
        assert any("max_document_chars" in w for w in result[0].warnings), name
    three = tmp_path / "three.pdf"
    three.write_bytes(pages_pdf([text_ops("a"), text_ops("b"), text_ops("c")]))
    assert load_bounded(three, limits) == "PDF has too many pages (3 > 2 limit, max_pdf_pages)"
    long_pdf = tmp_path / "long.pdf"
    long_pdf.write_bytes(pages_pdf([text_ops("x" * 90)] * 2))
    result = load_bounded(long_pdf, LoadLimits(max_document_chars=100))
    assert not isinstance(result, str) and sum(len(s.text) for s in result[0].sections) <= 100
    assert [s.page for s in result[0].sections] == [1, 2]


# --------------------------------------------------------------------------- property-based

UNSUPPORTED = [".docx", ".xlsx", ".zip", ".exe", ".png", ""]
TINY = LoadLimits(max_document_chars=2_000, max_sections=50, max_pdf_pages=20, timeout_s=30)

_pdf_like = st.builds(
    lambda pages, cut: pages_pdf([text_ops(p) for p in pages])[: cut or None],
    st.lists(st.text("abc xyz()\\", max_size=30), min_size=1, max_size=4),
    st.integers(0, 2000),
)
_markup = st.lists(
    st.sampled_from(
        [
            "<div>",
            "</div>",
            "<h1>",
            "</h1>",
            "<p>",
            "<pre>",
            "</pre>",
            "<script>",
            "</script>",
            "<br/>",
            "# ",
            "## ",
            "\n",
            "\n\n",
            "---",
            "===",
            "x",
            "word ",
            "[a](b)",
            "{",
            '"_id": 1',
            '"text": "t"}',
            "\x00",
            "\ufeff",
            "\r\n",
            "é",
            "\ud7ff",
            "&amp;",
            "<!--",
            "-->",
            "%PDF-1.4",
            "stream",
            "endobj",
        ]
    ),
    max_size=80,
).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass"))
_contents = st.one_of(
    st.binary(max_size=2000),
    _markup,
    _pdf_like,
    st.binary(max_size=500).map(lambda b: b"%PDF-1.4\n" + b),
    st.text(max_size=500).map(lambda s: s.encode("utf-16")),
    st.text(max_size=500).map(lambda s: s.encode("utf-8", "surrogatepass")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_contents, suffix=st.sampled_from(sorted(SUPPORTED_SUFFIXES) + UNSUPPORTED))
def test_any_bytes_under_any_suffix(
    data: bytes, suffix: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.getbasetemp() / f"fuzz file ✓{suffix}"
    path.write_bytes(data)
    try:
        docs = load_file(path, limits=TINY)
    except LoaderError as exc:  # the only exception a caller ever sees
        assert exc.reason and exc.source == str(path)
        if suffix in UNSUPPORTED:
            assert exc.reason.startswith("unsupported file type")
        return
    assert suffix not in UNSUPPORTED and docs
    for doc in docs:
        assert doc.sections and all(s.text.strip() for s in doc.sections)
        assert "\x00" not in doc.text
        assert sum(len(s.text) for s in doc.sections) <= TINY.max_document_chars
        assert len(doc.sections) <= TINY.max_sections + 1
        assert len(doc.content_hash) == 64
    assert len(docs) <= TINY.max_sections


_visible = st.text(st.characters(codec="utf-8", exclude_characters="<>&\x00\r"), min_size=1, max_size=20)
_active = st.sampled_from(
    [
        "<script>{m}</script>",
        "<style>{m}</style>",
        "<iframe srcdoc='{m}'>{m}</iframe>",
        '<p onclick="{m}">',
        "<img onerror='{m}'>",
        "<noscript>{m}</noscript>",
        "<template>{m}</template>",
        "<span hidden>{m}</span>",
        "<div style='display:none'>{m}</div>",
        "<nav>{m}</nav>",
        "<head><title>t</title><script>{m}</script></head>",
    ]
)


@settings(max_examples=150, deadline=None)
@given(parts=st.lists(st.one_of(_visible.map(lambda t: ("text", t)), _active.map(lambda a: ("active", a)))))
def test_active_content_never_reaches_the_index(
    parts: list[tuple[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    marker = "ZQXJ"
    html = "".join(f"<p>{v}</p>" if kind == "text" else v.format(m=marker) for kind, v in parts)
    path = tmp_path_factory.getbasetemp() / "active.html"
    path.write_text(html, encoding="utf-8")
    try:
        docs = load_file(path)
    except LoaderError as exc:
        assert exc.reason in ("no visible text in HTML", "empty file")
        return
    assert marker not in docs[0].text


_section_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=400)


@settings(max_examples=100, deadline=None)
@given(
    sections=st.lists(
        st.tuples(st.lists(st.text(max_size=30), max_size=4), _section_text.filter(str.strip)), min_size=1
    ),
    title=st.one_of(st.none(), st.text(max_size=200)),
    chunk_tokens=st.integers(32, 256),
    overlap=st.integers(0, 31),
)
def test_chunker_properties(
    sections: list[tuple[list[str], str]], title: str | None, chunk_tokens: int, overlap: int
) -> None:
    tokenizer = HashingEmbedder(16, max_tokens=256)
    chunker = Chunker(tokenizer, chunk_tokens=chunk_tokens, overlap_tokens=overlap)
    doc = Document(
        source="s",
        title=title,
        doc_type="text",
        sections=[Section(text=t, heading_path=h) for h, t in sections],
        content_hash="0" * 64,
    )
    chunks = chunker.chunk(doc)
    assert chunks == chunker.chunk(doc)  # deterministic
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    budget = chunker._budget(doc)
    for chunk in chunks:
        assert chunk.text.strip()
        assert chunk.n_tokens <= max(budget, chunk_tokens)
    words = {w for _, t in sections for w in t.split()}
    chunked = {w for c in chunks for w in c.text.split()}
    assert words <= chunked  # nothing is lost between the sections and the chunks
