"""Commands about the setup: `status`, `providers`, `configure`, `serve`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from local_cli.api_keys import DEFAULT_ADDRESS_RATE, DEFAULT_SITE_RATE
from local_cli.output import UserError, echo, print_remote_health, print_status
from local_cli.state import State, emit, json_option, user_errors


@click.command()
@json_option
@click.pass_obj
def status(state: State, as_json: bool) -> None:
    """Documents, chunks, embedder, store path and index health (remote: the API's detailed health)."""
    if state.remote:
        with user_errors():
            health = state.client().health()
        if as_json:
            click.echo(json.dumps(health, indent=2))
            return
        print_remote_health(state.settings().endpoint, health)
        return
    service = state.service()
    with user_errors():
        st = service.status()
    if as_json:
        emit(st)
        return
    print_status(st)


@click.command()
@click.option(
    "--check/--no-check", default=True, show_default=True, help="Call each provider once (live check)."
)
@json_option
@click.pass_obj
def providers(state: State, check: bool, as_json: bool) -> None:
    """List the answer provider chain (settings answer_providers) and check that each one answers."""
    from shared.llm.factory import ProviderAccess, make_llm, plan_providers, probe

    settings = state.settings()
    rows: list[dict[str, Any]] = []
    with user_errors():
        llms, _ = plan_providers(settings.answer_providers)
        access = ProviderAccess.from_settings(settings)
    for name in settings.answer_providers:
        row: dict[str, Any] = {"provider": name, "ok": True, "detail": "offline, always available"}
        if name in llms:
            row["detail"] = "not checked"
            if check:
                with user_errors():
                    llm = make_llm(name, access=access, timeout_s=settings.llm_timeout_s)
                result = probe(llm)
                row.update(ok=result.ok, detail=result.detail, seconds=round(result.seconds, 3))
        rows.append(row)
    if as_json:
        click.echo(json.dumps({"providers": rows}, indent=2))
        return
    for row in rows:
        echo(f"{'ok  ' if row['ok'] else 'FAIL'} {row['provider']}: {row['detail']}")


@click.command()
@click.option("--endpoint", help="Default API URL for remote mode (empty string to clear).")
@click.option("--api-key", help="Default API key for remote mode (stored with 0600 permissions).")
@click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE", help="Any other setting (repeatable).")
@json_option
@click.pass_obj
def configure(
    state: State, endpoint: str | None, api_key: str | None, pairs: tuple[str, ...], as_json: bool
) -> None:
    """Write settings to <home>/settings.json (validated; the file is private to you)."""
    from shared.settings import Settings, masked, resolve_home, save_settings_file

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
    home = resolve_home(state.home)
    with user_errors():
        path = save_settings_file(home, values)
    shown = masked(values)
    if as_json:
        click.echo(json.dumps({"settings_file": str(path), "updated": shown}, indent=2))
    else:
        echo(f"updated {path}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))


@click.command()
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
@click.option(
    "--api-keys",
    "api_keys",
    envvar="RAG_EXPLORER_SERVE_API_KEYS",
    metavar="KEY[,KEY...]",
    help="API keys, comma-separated; prefer the environment variable, as a command line is visible to "
    "other users of the machine. [env RAG_EXPLORER_SERVE_API_KEYS]",
)
@click.option(
    "--site-rate-limit",
    default=DEFAULT_SITE_RATE,
    show_default=True,
    envvar="RAG_EXPLORER_SERVE_SITE_RATE_LIMIT",
    metavar="RATE[/BURST]",
    help="Requests per second per publishable key (the `sites` setting; the help widget). 0 turns it "
    "off. [env RAG_EXPLORER_SERVE_SITE_RATE_LIMIT]",
)
@click.option(
    "--address-rate-limit",
    default=DEFAULT_ADDRESS_RATE,
    show_default=True,
    envvar="RAG_EXPLORER_SERVE_ADDRESS_RATE_LIMIT",
    metavar="RATE[/BURST]",
    help="Requests per second per publishable key and client address: a public key copied into a "
    "script is bounded too. 0 turns it off. [env RAG_EXPLORER_SERVE_ADDRESS_RATE_LIMIT]",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    envvar="RAG_EXPLORER_SERVE_WORKERS",
    help="Worker processes that answer queries, each with its own copy of the model and index; "
    "GET /health is answered apart and never waits behind them. [env RAG_EXPLORER_SERVE_WORKERS]",
)
@click.option(
    "--max-pending",
    type=click.IntRange(1, 100_000),
    default=128,
    show_default=True,
    envvar="RAG_EXPLORER_SERVE_MAX_PENDING",
    help="Requests queued or running in the workers at most; beyond it: 503 with Retry-After at once. "
    "[env RAG_EXPLORER_SERVE_MAX_PENDING]",
)
@click.option(
    "--max-connections",
    type=click.IntRange(2, 1_000_000),
    default=1024,
    show_default=True,
    envvar="RAG_EXPLORER_SERVE_MAX_CONNECTIONS",
    help="Open connections plus running requests at most (at least max-pending + 64); beyond it new "
    "requests get 503. Idle connections are closed after 5 s. [env RAG_EXPLORER_SERVE_MAX_CONNECTIONS]",
)
@click.pass_obj
def serve(
    state: State,
    host: str,
    port: int,
    api_key_file: Path | None,
    rate_limit: str,
    api_keys: str | None,
    site_rate_limit: str,
    address_rate_limit: str,
    workers: int,
    max_pending: int,
    max_connections: int,
) -> None:
    """Serve the HTTP API locally: POST /query, POST /search, POST /feedback, GET /health, GET /docs,
    the help widget (GET /widget.js) and a demo help page with it (GET /).

    Each request goes through the same code as the AWS Lambda functions behind API Gateway, so the
    answers, status codes and error bodies are the ones the deployed API gives; queries run in
    --workers processes, at most --max-pending at a time (else 503), 29 s each (else 504). With API
    keys, the server also does API Gateway's part: x-api-key checks (403) and a per-key rate limit
    (429). Every response carries x-request-id, and every log line names it. Stop with Ctrl-C.
    """
    from local_cli.server import Gateway, ServeOptions, make_server
    from local_cli.worker_pool import WorkerStartError

    settings = state.local_only("serve").settings
    try:
        gateway = Gateway.from_options(
            api_key_file,
            api_keys,
            rate_limit,
            sites=settings.sites,
            site_rate=site_rate_limit,
            address_rate=address_rate_limit,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    options = ServeOptions(workers=workers, max_pending=max_pending, max_connections=max_connections)
    try:
        server = make_server(
            host, port, settings, log=lambda line: echo(line, err=True), gateway=gateway, options=options
        )
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        try:
            for warning in server.start_workers():  # each loads the model and opens the index
                echo(f"warning: {warning}", err=True)
        except WorkerStartError as exc:
            raise UserError(str(exc)) from exc
        echo(
            f"RAG Explorer API on {server.url} (docs: {server.url}/docs, store: {settings.store}); "
            f"{gateway.describe()}; {workers} worker{'s' if workers != 1 else ''}, at most {max_pending} "
            "requests pending; press Ctrl-C to stop",
            err=True,
        )
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    echo("stopped", err=True)
