"""What the CLI prints for people (``--json`` prints the models instead, as exact JSON).

Everything printed for people goes through :func:`echo` or :func:`secho`, which drop terminal escape
sequences and control characters: file names, document text and answers come from whoever wrote the
documents, and printed raw they could clear the screen, fake report lines or set the window title.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from shared.text import plural, printable

if TYPE_CHECKING:
    from shared.evaluation import EvalSummary
    from shared.models import AskResponse, IngestSummary, SearchResponse, StatusResponse

#: The metrics `eval` prints, in order.
EVAL_METRICS = (
    "ndcg@10",
    "recall@100",
    "mrr",
    "mrr@10",
    "hit@5",
    "answer_rate",
    "refusal_precision",
    "refusal_recall",
    "refused_same_domain",
    "refused_unrelated",
    "citation_accuracy",
    "answer_precision",
    "ece",
    "latency_p50_ms",
    "latency_p95_ms",
)


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    click.echo(printable(message), err=err, nl=nl)


def secho(message: str = "", *, err: bool = False, nl: bool = True, **styles: Any) -> None:
    click.secho(printable(message), err=err, nl=nl, **styles)


#: Where `make demo` keeps its index (the Makefile's DEMO_HOME), named when an empty index is queried.
DEMO_HOME = ".rag-demo"


class UserError(click.ClickException):
    """A user error (exit 1, ``Error: message``), its message safe to print."""

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


def print_ingest(s: IngestSummary) -> None:
    unsupported = 0
    for f in s.files:
        if f.status in ("error", "skipped", "removed"):
            echo(f"  {f.status:8} {f.path}: {f.reason}")
            unsupported += (f.reason or "").startswith("unsupported file type")
        for w in f.warnings:
            echo(f"  warning  {f.path}: {w}")
    if unsupported:
        from shared.loaders import SUPPORTED_SUFFIXES

        echo(f"  (the file types RAG Explorer reads: {' '.join(sorted(SUPPORTED_SUFFIXES))})")
    echo(
        f"{plural(s.files_seen, 'file')}: {s.files_indexed} indexed, {s.files_unchanged} unchanged, "
        f"{s.files_skipped} skipped, {s.files_failed} failed; {plural(s.documents_indexed, 'document')}, "
        f"{plural(s.chunks_added, 'chunk')} embedded"
        + (f", {plural(s.documents_removed, 'document')} removed" if s.documents_removed else "")
        + f" in {s.seconds:.1f}s"
    )


def empty_index_lines(home: str | Path, command: Sequence[str]) -> list[str]:
    """What to tell someone whose index is empty: that it is, how to fill it, and where the demo's index
    is. ``command`` is the command they ran, without global options (to show it with ``--home``)."""
    from shared.loaders import SUPPORTED_SUFFIXES

    pad = " " * 21
    lines = [
        f"The index in {home} is empty: nothing has been ingested into it yet.",
        "  Fill it:           rag-explorer ingest PATH",
        f"{pad}(files or folders; it reads {' '.join(sorted(SUPPORTED_SUFFIXES))})",
    ]
    demo = Path(DEMO_HOME)
    if demo.is_dir() and os.path.abspath(demo) == os.path.abspath(os.path.expanduser(home)):
        return lines  # this is the demo's home: `make demo` fills it
    lines.append("  The demo's index:  " + shlex.join(["rag-explorer", "--home", DEMO_HOME, *command]))
    if demo.is_dir():
        lines.append(f"{pad}(`make demo` put it in ./{DEMO_HOME})")
    else:
        lines.append(f"{pad}(`make demo` keeps it in {DEMO_HOME}/ of the repository: run it from there)")
    return lines


def print_empty_index(home: str | Path, command: Sequence[str], *, note: bool = False) -> None:
    """The empty-index hint, after the output; ``note``: as one short line on stderr (with --json)."""
    if note:
        echo(f"note: the index in {home} is empty; fill it with `rag-explorer ingest PATH`", err=True)
        return
    echo()
    for line in empty_index_lines(home, command):
        echo(line)


def print_blocks(text: str, indent: str = "  ") -> None:
    """Prose wrapped to the terminal; code blocks, lists and tables verbatim, as the answer holds them."""
    from shared.text import split_blocks

    text = printable(text)
    for i, (kind, start, end) in enumerate(split_blocks(text)):
        if i:
            echo()
        block = text[start:end]
        if kind == "prose":
            echo(click.wrap_text(block, width=100, initial_indent=indent, subsequent_indent=indent))
        else:
            for line in block.split("\n"):
                echo(indent + line)


def print_answer(r: AskResponse) -> None:
    if r.decision == "answer":
        secho(f"Answer (confidence {r.confidence:.2f}, {r.provider})", bold=True)
        print_blocks(r.answer or "")
        echo()
        secho("Sources", bold=True)
        for c in r.citations:
            where = c.source + (f" (page {c.page})" if c.page else "")
            echo(f"  [{c.n}] {c.location} — {where}" if c.location else f"  [{c.n}] {where}")
            if c.url:
                echo(f"      {c.url}")
            echo(
                click.wrap_text(
                    f'"{c.quote}"', width=100, initial_indent="      ", subsequent_indent="      "
                )
            )
    else:
        secho(f"No answer (confidence {r.confidence:.2f})", bold=True)
        if r.escalation:
            echo(click.wrap_text(r.escalation, width=100, initial_indent="  ", subsequent_indent="  "))
        echo("Why:")
        for reason in r.reasons:
            echo(f"  - {reason}")


def print_hits(response: SearchResponse) -> None:
    if not response.hits:
        echo("No matches.")
    for i, h in enumerate(response.hits, start=1):
        heading = " › ".join(h.heading_path)
        secho(f"{i:>2}. {h.score:.4f}  {h.source}" + (f"  [{heading}]" if heading else ""), bold=True)
        if h.url:
            echo(f"    {h.url}")
        snippet = " ".join(h.text.split())
        echo("    " + (snippet[:240] + "…" if len(snippet) > 240 else snippet))


def print_remote_health(endpoint: str | None, health: dict[str, Any]) -> None:
    store, embedder = health.get("store") or {}, health.get("embedder") or {}
    counts = [
        plural(n, word) if isinstance(n, int) else f"{n} {word}s"
        for n, word in ((store.get("documents"), "document"), (store.get("chunks"), "chunk"))
    ]
    echo(f"endpoint:  {endpoint}")
    echo(f"status:    {health.get('status')} (version {health.get('version')})")
    echo(f"store:     {store.get('backend')} {store.get('status')}: {', '.join(counts)}")
    echo(f"embedder:  {embedder.get('name')} ({embedder.get('status')})")
    if health.get("failing"):
        echo(f"failing:   {', '.join(health['failing'])}")


def print_status(st: StatusResponse) -> None:
    echo(f"home:      {st.home}")
    echo(f"store:     {st.store_path}")
    echo(f"embedder:  {st.embedder} ({st.embedder_dimension} dimensions)")
    echo(f"documents: {st.documents}" + (" (the index is empty)" if st.chunks == 0 else ""))
    echo(f"chunks:    {st.chunks} (BM25: {st.lexical_chunks})")
    echo(
        f"health:    {'ok' if st.health.ok else 'PROBLEM'}"
        + (f" — {st.health.detail}" if st.health.detail else "")
    )
    if st.chunks == 0:
        print_empty_index(st.home, ["status"])


def print_eval(summary: EvalSummary, values: dict[str, Any], where: str) -> None:
    echo(
        f"{plural(summary.questions, 'question')} ({summary.answerable} answerable, {summary.out_of_scope} "
        f"out of scope, {plural(summary.errors, 'error')}) against {where}"
    )
    for key in EVAL_METRICS:
        value = values[key]
        echo(f"  {key:20} {'-' if value is None else value}")
    if summary.reliability:
        echo("  reliability (answers): confidence bin, answers, mean confidence, correct")
        for b in summary.reliability:
            bounds = f"[{b.low:.1f}, {b.high:.1f})"
            echo(f"    {bounds}  {b.count:4d}  {b.mean_confidence:.3f}  {b.accuracy:.3f}")
