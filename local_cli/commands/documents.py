"""Commands that change the index: `ingest`, `remove`, and `push` (to the cloud's document bucket)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from local_cli.output import UserError, echo, plural, print_ingest
from local_cli.progress import IngestProgress
from local_cli.state import State, emit, json_option, user_errors, wait_option
from shared.extras import needs_extra
from shared.text import printable

F = TypeVar("F", bound=Callable[..., Any])


def _collection_name(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A ``--collection`` value checked against the one rule for collection names."""
    from shared.models import COLLECTION_PATTERN

    if value is not None and not re.fullmatch(COLLECTION_PATTERN, value):
        raise click.BadParameter(
            f"{printable(value[:80])!r} is not a collection name: 1-63 lower-case letters, digits, - and _, "
            "starting with a letter or digit"
        )
    return value


def collection_option(help: str, **kwargs: Any) -> Callable[[F], F]:
    """``--collection NAME``, checked before the command runs."""
    return click.option("--collection", callback=_collection_name, help=help, **kwargs)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--prune", is_flag=True, help="Also remove indexed documents under these folders whose file is gone."
)
@click.option("--strict", is_flag=True, help="Exit with status 1 if any file failed to load.")
@collection_option(
    "Collection the documents belong to; its url_template (setting `collections`) gives their links. "
    "Re-ingesting a file with another collection moves it.",
    default="default",
    show_default=True,
    envvar="RAG_EXPLORER_COLLECTION",
)
@wait_option
@json_option
@click.pass_obj
def ingest(
    state: State,
    paths: tuple[Path, ...],
    prune: bool,
    strict: bool,
    collection: str,
    wait: bool,
    as_json: bool,
) -> None:
    """Index files and folders (recursively): Markdown, text, HTML, PDF, JSON Lines (BEIR).

    Unchanged files are skipped; changed files replace their old chunks. A file that cannot be read is
    reported and the rest of the batch goes on.
    """
    from shared.loaders import iter_files

    service = state.local_only("ingest")
    files = list(iter_files(paths))
    with state.writing("ingest", wait=wait), user_errors():
        service.embedder  # noqa: B018 - load the model before the progress bar starts
        ingestor = service.ingestor
        hook = ingestor.on_embedded
        with IngestProgress(len(files)) as progress:
            ingestor.on_embedded = progress.chain(hook)  # chunks count as they are embedded
            try:
                summary = service.ingest(
                    list(paths), prune=prune, files=files, on_file=progress.file_done, collection=collection
                )
            finally:
                ingestor.on_embedded = hook
    if as_json:
        emit(summary)
    else:
        print_ingest(summary)
    if strict and summary.files_failed:
        raise UserError(f"{plural(summary.files_failed, 'file')} failed to load")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
@wait_option
@click.pass_obj
def remove(state: State, paths: tuple[Path, ...], wait: bool, as_json: bool) -> None:
    """Drop the chunks of documents (a folder drops everything under it). The files may be gone already."""
    service = state.local_only("remove")
    with state.writing("remove", wait=wait), user_errors():
        summary = service.remove(list(paths))
    if as_json:
        emit(summary)
        return
    for s in summary.sources_removed:
        echo(f"removed   {s}")
    for s in summary.not_found:
        echo(f"not found {s}")
    removed = len(summary.sources_removed)
    echo(f"{plural(removed, 'document')}, {plural(summary.chunks_removed, 'chunk')} removed")
    if summary.not_found and not summary.sources_removed:
        raise UserError("none of the given paths is in the index")


@click.command()
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
    with needs_extra("aws", "uploads to S3"):
        import boto3

    from shared.adapters.push import push_folder

    def show(item: Any) -> None:
        if not as_json and item.action != "unchanged":
            echo(f"  {item.action:9} s3://{bucket}/{item.key}" + (f": {item.reason}" if item.reason else ""))

    with user_errors():
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
        emit(summary)
    else:
        echo(
            f"{summary.uploaded} uploaded, {summary.unchanged} unchanged, {summary.deleted} deleted, "
            f"{summary.skipped} skipped, "
            f"{plural(summary.errors, 'error')}" + (" (dry run)" if dry_run else "")
        )
    if summary.errors:
        raise UserError(f"{plural(summary.errors, 'file')} could not be pushed")
