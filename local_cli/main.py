"""`rag-explorer`: ingest documentation, search it, and answer questions with citations — offline.

Only click is imported at module level: the core (numpy, chromadb, the model) loads lazily inside the
commands that need it, so `--help` stays fast. The commands live in `local_cli.commands`, one module
per group; what they share (settings, service, options, batch input) in `local_cli.state`, and what
they print for people in `local_cli.output`.
"""

from __future__ import annotations

import shlex
from typing import Any

import click

from local_cli.commands import admin, documents, query, report, smoke, widget
from local_cli.state import State, missing_extra
from shared.extras import MissingExtraError

#: The options of the group itself, given before the command (``rag-explorer --home X ask ...``).
GLOBAL_OPTIONS = ("--home", "--endpoint", "--api-key")


class RagExplorerGroup(click.Group):
    """The command group: a global option given after the command is a usage error that says where it
    goes, with the command line put right, instead of click's "No such option ... Did you mean"."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["rag_explorer.args"] = list(args)
        return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta["rag_explorer.command_args"] = list(rest)
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.NoSuchOption as exc:
            sub = exc.ctx
            if exc.option_name not in GLOBAL_OPTIONS or sub is None or sub.parent is not ctx:
                raise
            raise click.UsageError(misplaced_global_option(ctx, sub, exc.option_name), ctx=sub) from None
        except MissingExtraError as exc:  # an optional dependency imported outside `user_errors`
            raise missing_extra(exc) from exc


def misplaced_global_option(ctx: click.Context, sub: click.Context, option: str) -> str:
    """The message for a global ``option`` given after the command, with the corrected command line:
    every global option the command does not have itself moves before it (an API key shown as KEY)."""
    given: list[str] = ctx.meta.get("rag_explorer.args", [])
    rest: list[str] = list(ctx.meta.get("rag_explorer.command_args", []))
    before = given[: max(0, len(given) - len(rest) - 1)]
    command = sub.info_name or "COMMAND"
    own = {opt for param in sub.command.params for opt in param.opts}
    moved: list[str] = []
    kept: list[str] = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        name = arg.split("=", 1)[0]
        if arg == "--":
            kept += rest[i:]
            break
        if name in GLOBAL_OPTIONS and name not in own:
            if "=" in arg:
                moved += arg.split("=", 1)
            else:
                moved += rest[i : i + 2]
                i += 1
        else:
            kept.append(arg)
        i += 1
    line = _masked([*before, *moved])
    prog = ctx.find_root().info_name or "rag-explorer"
    fixed = shlex.join([prog, *line, command, *kept])
    return f"{option} is a global option: it goes before the command, as in\n\n    {fixed}\n"


def _masked(args: list[str]) -> list[str]:
    """``args`` with the value of every ``--api-key`` replaced by ``KEY`` (error messages end up in logs)."""
    out = list(args)
    for i, arg in enumerate(args):
        if arg.startswith("--api-key="):
            out[i] = "--api-key=KEY"
        elif i and args[i - 1] == "--api-key":
            out[i] = "KEY"
    return out


@click.group(cls=RagExplorerGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    rag-explorer --home .rag-demo ask "How do I reset the index?"

    The options below (--home, --endpoint, --api-key) go before the command.
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
    smoke.smoke,
):
    cli.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    cli()
