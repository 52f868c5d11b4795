"""`rag-explorer`: ingest documentation, search it, and answer questions with citations — offline.

Only click is imported at module level: the core (numpy, chromadb, the model) loads lazily inside the
commands that need it, so `--help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pydantic import BaseModel

    from shared.models import AskResponse, IngestSummary, SearchFilter, SearchResponse
    from shared.service import RagService

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------- plumbing


class State:
    def __init__(self, home: str | None) -> None:
        self.home = home
        self._service: RagService | None = None

    def service(self) -> RagService:
        if self._service is None:
            from shared.service import RagService
            from shared.settings import load_settings

            with _user_errors():
                self._service = RagService(load_settings({"home": self.home}))
        assert self._service is not None
        return self._service


class _user_errors:
    """Turn the core's deliberate errors into ClickException (exit 1, message, no traceback)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        from shared.errors import RagExplorerError

        if isinstance(exc, RagExplorerError):
            raise click.ClickException(str(exc)) from exc


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(f)


def filter_options(f: F) -> F:
    f = click.option("--tag", "tags", multiple=True, help="Only documents with this tag (repeatable).")(f)
    f = click.option("--source-prefix", help="Only documents whose source starts with this.")(f)
    return f


def _filters(source_prefix: str | None, tags: tuple[str, ...]) -> SearchFilter | None:
    if not source_prefix and not tags:
        return None
    from shared.models import SearchFilter

    if source_prefix and not os.path.isabs(source_prefix):
        # sources are absolute paths: a prefix that starts like a relative path is taken from here
        first = Path(source_prefix).parts[0] if Path(source_prefix).parts else ""
        if first in (".", "..", "~") or (first and Path(first).expanduser().exists()):
            keep_sep = source_prefix.endswith(("/", os.sep))
            source_prefix = os.path.abspath(os.path.expanduser(source_prefix)) + (os.sep if keep_sep else "")

    return SearchFilter(source_prefix=source_prefix, tags=list(tags))


def _emit(model: BaseModel) -> None:
    click.echo(model.model_dump_json(indent=2))


def _read_batch(path: Path, key_names: tuple[str, ...]) -> Iterator[tuple[Any, str | None, str | None]]:
    """Yield ``(id, text, error)`` per JSON Lines record."""
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot read batch file {path}: {exc.strerror or exc}") from exc
    with fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, None, f"line {lineno}: invalid JSON ({exc.msg})"
                continue
            if not isinstance(record, dict):
                yield lineno, None, f"line {lineno}: expected a JSON object"
                continue
            rid = record.get("id", lineno)
            text = next((record[k] for k in key_names if isinstance(record.get(k), str)), None)
            if text is None:
                yield rid, None, f"line {lineno}: missing '{key_names[0]}'"
            else:
                yield rid, text, None


def _run_batch(path: Path, key_names: tuple[str, ...], handle: Callable[[str], BaseModel]) -> None:
    from shared.errors import RagExplorerError
    from shared.models import BatchError

    for rid, text, error in _read_batch(path, key_names):
        if error is None and text is not None:
            try:
                record = handle(text).model_dump(mode="json")
                record = {"id": rid, **record}
                click.echo(json.dumps(record, ensure_ascii=False))
                continue
            except RagExplorerError as exc:
                error = str(exc)
        click.echo(BatchError(id=rid, error=error or "unknown error").model_dump_json())


# --------------------------------------------------------------------------- the group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rag-explorer", prog_name="rag-explorer")
@click.option(
    "--home",
    envvar="RAG_EXPLORER_HOME",
    type=click.Path(file_okay=False, path_type=str),
    help="Folder holding the index and settings.json [env RAG_EXPLORER_HOME; default ~/.rag-explorer].",
)
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Answer questions from your documentation, with citations — or say honestly that it can't.

    \b
    rag-explorer ingest ~/docs/handbook
    rag-explorer ask "How do I rotate my API key?"
    rag-explorer search "api key rotation" -k 10
    """
    ctx.obj = State(home)


# --------------------------------------------------------------------------- ingest


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--prune", is_flag=True, help="Also remove indexed documents under these folders whose file is gone."
)
@click.option("--strict", is_flag=True, help="Exit with status 1 if any file failed to load.")
@json_option
@click.pass_obj
def ingest(state: State, paths: tuple[Path, ...], prune: bool, strict: bool, as_json: bool) -> None:
    """Index files and folders (recursively): Markdown, text, HTML, PDF, JSON Lines (BEIR).

    Unchanged files are skipped; changed files replace their old chunks. A file that cannot be read is
    reported and the rest of the batch goes on.
    """
    from shared.loaders import iter_files

    service = state.service()
    files = list(iter_files(paths))
    with _user_errors():
        service.embedder  # noqa: B018 - load the model before the progress bar starts
        bar: Any
        with click.progressbar(
            length=len(files),
            label="Ingesting",
            file=sys.stderr,
            show_pos=True,
            item_show_func=lambda p: p.name if p else "",
        ) as bar:
            summary = service.ingest(
                list(paths), prune=prune, files=files, on_file=lambda p, _r: bar.update(1, p)
            )
    if as_json:
        _emit(summary)
    else:
        _print_ingest(summary)
    if strict and summary.files_failed:
        raise click.ClickException(f"{summary.files_failed} file(s) failed to load")


def _print_ingest(s: IngestSummary) -> None:
    for f in s.files:
        if f.status in ("error", "skipped", "removed"):
            click.echo(f"  {f.status:8} {f.path}: {f.reason}")
        for w in f.warnings:
            click.echo(f"  warning  {f.path}: {w}")
    click.echo(
        f"{s.files_seen} files: {s.files_indexed} indexed, {s.files_unchanged} unchanged, "
        f"{s.files_skipped} skipped, {s.files_failed} failed; {s.documents_indexed} documents, "
        f"{s.chunks_added} chunks embedded"
        + (f", {s.documents_removed} documents removed" if s.documents_removed else "")
        + f" in {s.seconds:.1f}s"
    )


# --------------------------------------------------------------------------- ask


@cli.command()
@click.argument("question", required=False)
@click.option(
    "--batch",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON Lines file of {"id": ..., "question": ...}; prints one JSON line per input.',
)
@click.option("--max-chunks", type=click.IntRange(1, 20), help="Chunks considered for the answer.")
@click.option(
    "--threshold", "confidence_threshold", type=click.FloatRange(0, 1), help="Refuse below this confidence."
)
@filter_options
@json_option
@click.pass_obj
def ask(
    state: State,
    question: str | None,
    batch: Path | None,
    max_chunks: int | None,
    confidence_threshold: float | None,
    source_prefix: str | None,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Answer QUESTION with numbered citations, or refuse with reasons."""
    if (question is None) == (batch is None):
        raise click.UsageError("give a QUESTION or --batch FILE (not both)")
    service = state.service()
    filters = _filters(source_prefix, tags)

    def handle(q: str) -> AskResponse:
        return service.ask(
            q, max_chunks=max_chunks, confidence_threshold=confidence_threshold, filters=filters
        )

    if batch is not None:
        with _user_errors():
            _run_batch(batch, ("question", "query", "text"), handle)
        return
    assert question is not None
    with _user_errors():
        response = handle(question)
    if as_json:
        _emit(response)
    else:
        _print_answer(response)


def _print_answer(r: AskResponse) -> None:
    if r.decision == "answer":
        click.secho(f"Answer (confidence {r.confidence:.2f})", bold=True)
        click.echo(click.wrap_text(r.answer or "", width=100, initial_indent="  ", subsequent_indent="  "))
        click.echo()
        click.secho("Sources", bold=True)
        for c in r.citations:
            where = c.source + (f" (page {c.page})" if c.page else "")
            click.echo(f"  [{c.n}] {where}")
            click.echo(
                click.wrap_text(
                    f'"{c.quote}"', width=100, initial_indent="      ", subsequent_indent="      "
                )
            )
    else:
        click.secho(f"No answer (confidence {r.confidence:.2f})", bold=True)
        if r.escalation:
            click.echo(click.wrap_text(r.escalation, width=100, initial_indent="  ", subsequent_indent="  "))
        click.echo("Why:")
        for reason in r.reasons:
            click.echo(f"  - {reason}")


# --------------------------------------------------------------------------- search


@cli.command()
@click.argument("query", required=False)
@click.option("-k", "--top-k", "k", type=click.IntRange(1, 100), help="Number of hits [default 5].")
@click.option(
    "--batch",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON Lines file of {"id": ..., "question": ...}; prints one JSON line per input.',
)
@filter_options
@json_option
@click.pass_obj
def search(
    state: State,
    query: str | None,
    k: int | None,
    batch: Path | None,
    source_prefix: str | None,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show the chunks that best match QUERY (hybrid: embeddings + BM25)."""
    if (query is None) == (batch is None):
        raise click.UsageError("give a QUERY or --batch FILE (not both)")
    service = state.service()
    filters = _filters(source_prefix, tags)

    def handle(q: str) -> SearchResponse:
        return service.search(q, k=k, filters=filters)

    if batch is not None:
        with _user_errors():
            _run_batch(batch, ("question", "query", "text"), handle)
        return
    assert query is not None
    with _user_errors():
        response = handle(query)
    if as_json:
        _emit(response)
        return
    if not response.hits:
        click.echo("No matches.")
    for i, h in enumerate(response.hits, start=1):
        heading = " › ".join(h.heading_path)
        click.secho(f"{i:>2}. {h.score:.4f}  {h.source}" + (f"  [{heading}]" if heading else ""), bold=True)
        snippet = " ".join(h.text.split())
        click.echo("    " + (snippet[:240] + "…" if len(snippet) > 240 else snippet))


# --------------------------------------------------------------------------- status / remove


@cli.command()
@json_option
@click.pass_obj
def status(state: State, as_json: bool) -> None:
    """Documents, chunks, embedder, store path and index health."""
    service = state.service()
    with _user_errors():
        st = service.status()
    if as_json:
        _emit(st)
        return
    click.echo(f"home:      {st.home}")
    click.echo(f"store:     {st.store_path}")
    click.echo(f"embedder:  {st.embedder} ({st.embedder_dimension} dimensions)")
    click.echo(f"documents: {st.documents}")
    click.echo(f"chunks:    {st.chunks} (BM25: {st.lexical_chunks})")
    click.echo(
        f"health:    {'ok' if st.health.ok else 'PROBLEM'}"
        + (f" — {st.health.detail}" if st.health.detail else "")
    )


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
@click.pass_obj
def remove(state: State, paths: tuple[Path, ...], as_json: bool) -> None:
    """Drop the chunks of documents (a folder drops everything under it). The files may be gone already."""
    service = state.service()
    with _user_errors():
        summary = service.remove(list(paths))
    if as_json:
        _emit(summary)
        return
    for s in summary.sources_removed:
        click.echo(f"removed   {s}")
    for s in summary.not_found:
        click.echo(f"not found {s}")
    click.echo(f"{len(summary.sources_removed)} documents, {summary.chunks_removed} chunks removed")
    if summary.not_found and not summary.sources_removed:
        raise click.ClickException("none of the given paths is in the index")


# --------------------------------------------------------------------------- serve


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="RAG_EXPLORER_SERVE_HOST",
    help="Address to listen on [env RAG_EXPLORER_SERVE_HOST]; 0.0.0.0 exposes it to your network.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    envvar="RAG_EXPLORER_SERVE_PORT",
    help="Port to listen on [env RAG_EXPLORER_SERVE_PORT]; 0 picks a free one.",
)
@click.pass_obj
def serve(state: State, host: str, port: int) -> None:
    """Serve the HTTP API locally: POST /query, POST /search, GET /health, GET /docs, ...

    Each request goes through the same code as the AWS Lambda functions behind API Gateway, so the
    answers, status codes and error bodies are the ones the deployed API gives. Stop with Ctrl-C.
    """
    from shared.errors import StoreUnavailableError

    service = state.service()
    with _user_errors():
        service.embedder.embed_query("warm up")  # load the model before the first request
        try:
            service.store  # noqa: B018 - open the index (or fail now on a bad one)
        except StoreUnavailableError as exc:
            click.echo(
                f"warning: the store is unavailable ({exc}); requests get 503 until it is back", err=True
            )

    from local_cli.server import make_server
    from shared.http_api import create_app

    app = create_app(service)
    try:
        server = make_server(host, port, app.resolve, log=lambda line: click.echo(line, err=True))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    click.echo(
        f"RAG Explorer API on {server.url} (docs: {server.url}/docs, store: {service.settings.store}); "
        "press Ctrl-C to stop",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    click.echo("stopped", err=True)


if __name__ == "__main__":  # pragma: no cover
    cli()
