"""`rag-explorer`: ingest documentation, search it, and answer questions with citations — offline.

Only click is imported at module level: the core (numpy, chromadb, the model) loads lazily inside the
commands that need it, so `--help` stays fast. The commands live in `local_cli.commands`, one module
per group; what they share (settings, service, options, batch input) in `local_cli.state`, and what
they print for people in `local_cli.output`.
"""

from __future__ import annotations

import click

from local_cli.commands import admin, documents, query, report, widget
from local_cli.state import State


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


for command in (
    documents.ingest,
    query.ask,
    query.search,
    admin.status,
    documents.remove,
    admin.providers,
    query.eval_,
    documents.push,
    admin.configure,
    admin.serve,
    report.report,
    widget.widget_snippet,
):
    cli.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    cli()
