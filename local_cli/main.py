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

    from shared.client import RemoteClient
    from shared.models import AskResponse, IngestSummary, SearchFilter, SearchResponse
    from shared.service import RagService
    from shared.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------- plumbing


class State:
    def __init__(self, home: str | None, endpoint: str | None = None, api_key: str | None = None) -> None:
        self.home = home
        self.flags = {"home": home, "endpoint": endpoint, "api_key": api_key}
        self._settings: Settings | None = None
        self._service: RagService | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            from shared.settings import load_settings

            with _user_errors():
                self._settings = load_settings(self.flags)
        return self._settings

    @property
    def remote(self) -> bool:
        return self.settings().endpoint is not None

    def service(self) -> RagService:
        if self._service is None:
            from shared.service import RagService

            self._service = RagService(self.settings())
        return self._service

    def local_only(self, command: str) -> RagService:
        if self.remote:
            raise click.ClickException(
                f"`{command}` works on the local index; to update the cloud index, upload documents with "
                "`rag-explorer push` (or drop --endpoint / RAG_EXPLORER_ENDPOINT)"
            )
        return self.service()

    def client(self, endpoint: str | None = None) -> RemoteClient:
        from shared.client import RemoteClient

        s = self.settings()
        url = endpoint or s.endpoint
        assert url is not None
        with _user_errors():
            return RemoteClient(url, s.api_key)

    def backend(self) -> RagService | RemoteClient:
        """Where `ask`, `search` and `eval` go: the deployed API in remote mode, else the local index."""
        return self.client() if self.remote else self.service()


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
@click.option(
    "--endpoint",
    envvar="RAG_EXPLORER_ENDPOINT",
    help="Use the deployed HTTP API at this URL instead of the local index [env RAG_EXPLORER_ENDPOINT].",
)
@click.option(
    "--api-key", envvar="RAG_EXPLORER_API_KEY", help="API key for --endpoint [env RAG_EXPLORER_API_KEY]."
)
@click.pass_context
def cli(ctx: click.Context, home: str | None, endpoint: str | None, api_key: str | None) -> None:
    """Answer questions from your documentation, with citations — or say honestly that it can't.

    \b
    rag-explorer ingest ~/docs/handbook
    rag-explorer ask "How do I rotate my API key?"
    rag-explorer search "api key rotation" -k 10
    """
    ctx.obj = State(home, endpoint, api_key)


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

    service = state.local_only("ingest")
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
@click.option(
    "--stream",
    is_flag=True,
    help="Print the generated answer as it arrives (LLM providers), then the sources.",
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
    stream: bool,
    source_prefix: str | None,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Answer QUESTION with numbered citations, or refuse with reasons."""
    if (question is None) == (batch is None):
        raise click.UsageError("give a QUESTION or --batch FILE (not both)")
    if stream and (batch is not None or as_json or state.remote):
        raise click.UsageError(
            "--stream prints text for one local question: not with --batch, --json or --endpoint"
        )
    if stream:
        assert question is not None
        _ask_stream(
            state.service(), question, max_chunks, confidence_threshold, _filters(source_prefix, tags)
        )
        return
    service = state.backend()
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


def _ask_stream(
    service: RagService,
    question: str,
    max_chunks: int | None,
    confidence_threshold: float | None,
    filters: SearchFilter | None,
) -> None:
    streamed = False
    with _user_errors():
        for item in service.ask_stream(
            question, max_chunks=max_chunks, confidence_threshold=confidence_threshold, filters=filters
        ):
            if isinstance(item, str):
                click.echo(item, nl=False)
                streamed = True
                continue
            if streamed:
                click.echo("\n")
                if item.decision == "answer" and item.provider != "extractive":
                    click.secho(f"Verified answer ({item.provider})", bold=True)
            _print_answer(item)


def _print_blocks(text: str, indent: str = "  ") -> None:
    """Prose wrapped to the terminal; code blocks, lists and tables verbatim, as the answer holds them."""
    from shared.text import split_blocks

    for i, (kind, start, end) in enumerate(split_blocks(text)):
        if i:
            click.echo()
        block = text[start:end]
        if kind == "prose":
            click.echo(click.wrap_text(block, width=100, initial_indent=indent, subsequent_indent=indent))
        else:
            for line in block.split("\n"):
                click.echo(indent + line)


def _print_answer(r: AskResponse) -> None:
    if r.decision == "answer":
        click.secho(f"Answer (confidence {r.confidence:.2f}, {r.provider})", bold=True)
        _print_blocks(r.answer or "")
        click.echo()
        click.secho("Sources", bold=True)
        for c in r.citations:
            where = c.source + (f" (page {c.page})" if c.page else "")
            click.echo(f"  [{c.n}] {c.location} — {where}" if c.location else f"  [{c.n}] {where}")
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
    service = state.backend()
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
    """Documents, chunks, embedder, store path and index health (remote: the API's detailed health)."""
    if state.remote:
        with _user_errors():
            health = state.client().health()
        if as_json:
            click.echo(json.dumps(health, indent=2))
            return
        store, embedder = health.get("store") or {}, health.get("embedder") or {}
        click.echo(f"endpoint:  {state.settings().endpoint}")
        click.echo(f"status:    {health.get('status')} (version {health.get('version')})")
        click.echo(
            f"store:     {store.get('backend')} {store.get('status')}: {store.get('documents')} documents, "
            f"{store.get('chunks')} chunks"
        )
        click.echo(f"embedder:  {embedder.get('name')} ({embedder.get('status')})")
        if health.get("failing"):
            click.echo(f"failing:   {', '.join(health['failing'])}")
        return
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
    service = state.local_only("remove")
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


# --------------------------------------------------------------------------- providers


@cli.command()
@click.option(
    "--check/--no-check", default=True, show_default=True, help="Call each provider once (live check)."
)
@json_option
@click.pass_obj
def providers(state: State, check: bool, as_json: bool) -> None:
    """List the answer provider chain (settings answer_providers) and check that each one answers."""
    from shared.llm.factory import make_llm, plan_providers, probe

    settings = state.settings()
    rows: list[dict[str, Any]] = []
    with _user_errors():
        llms, _ = plan_providers(settings.answer_providers)
    for name in settings.answer_providers:
        row: dict[str, Any] = {"provider": name, "ok": True, "detail": "offline, always available"}
        if name in llms:
            row["detail"] = "not checked"
            if check:
                with _user_errors():
                    llm = make_llm(
                        name,
                        timeout_s=settings.llm_timeout_s,
                        openai_base_url=settings.openai_base_url,
                        openai_api_key=settings.openai_api_key,
                        aws_region=settings.aws_region,
                    )
                result = probe(llm)
                row.update(ok=result.ok, detail=result.detail, seconds=round(result.seconds, 3))
        rows.append(row)
    if as_json:
        click.echo(json.dumps({"providers": rows}, indent=2))
        return
    for row in rows:
        click.echo(f"{'ok  ' if row['ok'] else 'FAIL'} {row['provider']}: {row['detail']}")


# --------------------------------------------------------------------------- eval


@cli.command("eval")
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--target",
    default="local",
    show_default=True,
    help="`local` (the index under --home, or --endpoint when set) or an http(s) URL of the API.",
)
@click.option("--split", default="test", show_default=True, help="qrels split of a BEIR folder.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Per-question results as JSON Lines; ids already there are skipped (resume).",
)
@click.option("--min-ndcg", type=click.FloatRange(0, 1), help="Exit 1 if nDCG@10 is below this.")
@click.option("--min-hit-rate", type=click.FloatRange(0, 1), help="Exit 1 if hit@5 is below this.")
@click.option(
    "--min-refusal-precision", type=click.FloatRange(0, 1), help="Exit 1 if refusal precision is below this."
)
@json_option
@click.pass_obj
def eval_(
    state: State,
    dataset: Path,
    target: str,
    split: str,
    output: Path | None,
    min_ndcg: float | None,
    min_hit_rate: float | None,
    min_refusal_precision: float | None,
    as_json: bool,
) -> None:
    """Measure retrieval and answer quality on DATASET: a BEIR folder or a JSON Lines QA file.

    \b
    QA lines: {"id": ..., "question": ..., "expected_sources": ["docs/x.md", ...] | null}
    (null: out of scope, the right outcome is a refusal; add "negative": "same-domain" or
    "unrelated" to have refusals reported for each kind). An answer counts as correct when its
    first citation is on an expected page; the reliability table and ECE compare the answers'
    confidence with how often they were correct.
    """
    from shared.evaluation import load_dataset, run_eval, summarize

    with _user_errors():
        ds = load_dataset(dataset, split=split)
    if target not in ("local",) and not target.startswith(("http://", "https://")):
        raise click.BadParameter("use `local` or an http(s) URL", param_hint="--target")
    backend = state.client(target) if target != "local" else state.backend()
    where = target if target != "local" else (state.settings().endpoint or f"local:{state.settings().home}")
    if ds.corpus is not None and target == "local" and not state.remote:
        click.echo(f"ingesting {ds.corpus} (unchanged documents are skipped) ...", err=True)
        with _user_errors():
            state.service().ingest([ds.corpus])
    # the HTTP API caps k at 100; locally more chunks give Recall@100 over 100 distinct documents
    k = 100 if target != "local" or state.remote else 300
    bar: Any
    with (
        _user_errors(),
        click.progressbar(length=len(ds.items), label="Evaluating", file=sys.stderr, show_pos=True) as bar,
    ):
        results = run_eval(ds, backend, output=output, k=k, on_result=lambda _r: bar.update(1))
        bar.update(len(ds.items) - bar.pos)
    summary = summarize(results, dataset=str(dataset), target=where)
    values = summary.model_dump(by_alias=True)
    if as_json:
        click.echo(json.dumps(values, indent=2))
    else:
        click.echo(
            f"{summary.questions} questions ({summary.answerable} answerable, {summary.out_of_scope} out of "
            f"scope, {summary.errors} errors) against {where}"
        )
        for key in (
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
        ):
            value = values[key]
            click.echo(f"  {key:20} {'-' if value is None else value}")
        if summary.reliability:
            click.echo("  reliability (answers): confidence bin, answers, mean confidence, correct")
            for b in summary.reliability:
                bounds = f"[{b.low:.1f}, {b.high:.1f})"
                click.echo(f"    {bounds}  {b.count:4d}  {b.mean_confidence:.3f}  {b.accuracy:.3f}")
    failed = [
        f"{name} {values[key]} < {minimum}"
        for name, key, minimum in (
            ("nDCG@10", "ndcg@10", min_ndcg),
            ("hit@5", "hit@5", min_hit_rate),
            ("refusal precision", "refusal_precision", min_refusal_precision),
        )
        if minimum is not None and (values[key] is None or values[key] < minimum)
    ]
    if summary.errors:
        failed.append(f"{summary.errors} questions failed with errors")
    if failed and (min_ndcg is not None or min_hit_rate is not None or min_refusal_precision is not None):
        raise click.ClickException("quality gate failed: " + "; ".join(failed))


# --------------------------------------------------------------------------- push


@cli.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--bucket",
    required=True,
    envvar="RAG_EXPLORER_DOCUMENT_BUCKET",
    help="The document bucket (stack output DocumentBucketName) [env RAG_EXPLORER_DOCUMENT_BUCKET].",
)
@click.option("--prefix", default="", help="Key prefix in the bucket, e.g. handbook/.")
@click.option("--delete", is_flag=True, help="Delete objects under the prefix whose local file is gone.")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@json_option
def push(path: Path, bucket: str, prefix: str, delete: bool, dry_run: bool, as_json: bool) -> None:
    """Upload a docs folder to the document bucket (changed files only); the cloud index follows."""
    import boto3

    from shared.adapters.push import push_folder

    def show(item: Any) -> None:
        if not as_json and item.action != "unchanged":
            click.echo(
                f"  {item.action:9} s3://{bucket}/{item.key}" + (f": {item.reason}" if item.reason else "")
            )

    with _user_errors():
        summary = push_folder(
            boto3.client("s3"),
            path,
            bucket=bucket,
            prefix=prefix,
            delete=delete,
            dry_run=dry_run,
            on_file=show,
        )
    if as_json:
        _emit(summary)
    else:
        click.echo(
            f"{summary.uploaded} uploaded, {summary.unchanged} unchanged, {summary.deleted} deleted, "
            f"{summary.errors} errors" + (" (dry run)" if dry_run else "")
        )
    if summary.errors:
        raise click.ClickException(f"{summary.errors} file(s) could not be pushed")


# --------------------------------------------------------------------------- configure


@cli.command()
@click.option("--endpoint", help="Default API URL for remote mode (empty string to clear).")
@click.option("--api-key", help="Default API key for remote mode (stored with 0600 permissions).")
@click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE", help="Any other setting (repeatable).")
@json_option
@click.pass_obj
def configure(
    state: State, endpoint: str | None, api_key: str | None, pairs: tuple[str, ...], as_json: bool
) -> None:
    """Write settings to <home>/settings.json (validated; the file is private to you)."""
    from shared.settings import DEFAULT_HOME, Settings, save_settings_file

    values: dict[str, Any] = {}
    if endpoint is not None:
        values["endpoint"] = endpoint or None
    if api_key is not None:
        values["api_key"] = api_key or None
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in Settings.model_fields or key == "home":
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE with a known setting", param_hint="--set")
        values[key] = value
    if not values:
        raise click.UsageError("nothing to configure: give --endpoint, --api-key or --set KEY=VALUE")
    home = Path(state.home or os.environ.get("RAG_EXPLORER_HOME") or DEFAULT_HOME)
    try:
        path = save_settings_file(home, values)
    except ValueError as exc:
        raise click.ClickException(f"invalid settings: {exc}") from exc
    shown = {k: ("***" if k.endswith("key") and v else v) for k, v in values.items()}
    if as_json:
        click.echo(json.dumps({"settings_file": str(path), "updated": shown}, indent=2))
    else:
        click.echo(f"updated {path}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))


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
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="RAG_EXPLORER_API_KEY_FILE",
    help="Require an x-api-key header on every route but GET /health, as API Gateway does. One key per "
    "line, # comments ignored; the file must not be readable by group or others (chmod 600). Keys can "
    "also come from RAG_EXPLORER_SERVE_API_KEYS (comma-separated). [env RAG_EXPLORER_API_KEY_FILE]",
)
@click.option(
    "--rate-limit",
    default="20/40",
    show_default=True,
    envvar="RAG_EXPLORER_SERVE_RATE_LIMIT",
    metavar="RATE[/BURST]",
    help="Requests per second per API key, with a burst (default twice the rate); over it: 429 with "
    "Retry-After. 0 turns it off. Applies only with API keys. [env RAG_EXPLORER_SERVE_RATE_LIMIT]",
)
@click.pass_obj
def serve(state: State, host: str, port: int, api_key_file: Path | None, rate_limit: str) -> None:
    """Serve the HTTP API locally: POST /query, POST /search, GET /health, GET /docs, ...

    Each request goes through the same code as the AWS Lambda functions behind API Gateway, so the
    answers, status codes and error bodies are the ones the deployed API gives. With API keys, the
    server also does API Gateway's part: x-api-key checks (403) and a per-key rate limit (429). Every
    response carries x-request-id, and every log line names it. Stop with Ctrl-C.
    """
    from local_cli.server import Gateway, make_server
    from shared.errors import StoreUnavailableError

    try:
        gateway = Gateway.from_options(
            api_key_file, os.environ.get("RAG_EXPLORER_SERVE_API_KEYS"), rate_limit
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    service = state.local_only("serve")
    with _user_errors():
        service.embedder.embed_query("warm up")  # load the model before the first request
        try:
            service.store  # noqa: B018 - open the index (or fail now on a bad one)
        except StoreUnavailableError as exc:
            click.echo(
                f"warning: the store is unavailable ({exc}); requests get 503 until it is back", err=True
            )

    from shared.adapters.http_api import create_app

    app = create_app(service)
    try:
        server = make_server(
            host, port, app.resolve, log=lambda line: click.echo(line, err=True), gateway=gateway
        )
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    click.echo(
        f"RAG Explorer API on {server.url} (docs: {server.url}/docs, store: {service.settings.store}); "
        f"{gateway.describe()}; press Ctrl-C to stop",
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
