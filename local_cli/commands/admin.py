"""Commands about the setup: `status`, `providers`, `configure`, `serve`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from local_cli.api_keys import DEFAULT_ADDRESS_RATE, DEFAULT_SITE_RATE
from local_cli.output import UserError, echo, print_empty_index, print_remote_health, print_status
from local_cli.state import State, emit, json_option, user_errors
from shared.llm.providers import known_names


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
        if st.chunks == 0:
            print_empty_index(st.home, ["status"], note=True)
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
@click.option(
    "--remote-api-key",
    help="Default API key for remote mode, sent as x-api-key to --endpoint (stored with 0600 permissions). "
    "Before LLM provider keys, this was `configure --api-key KEY`.",
)
@click.option(
    "--provider",
    metavar="NAME",
    help="Answer with this LLM provider, the extractive answer as fallback: writes answer_providers="
    f"NAME:MODEL,extractive. Known: {known_names()}; any other NAME (an OpenAI-compatible server) needs "
    "--base-url.",
)
@click.option("--model", help="The model for --provider (default: the provider's usual one, e.g. llama3.1).")
@click.option("--base-url", help="The base URL for --provider (vLLM, Ollama on another machine, a proxy).")
@click.option(
    "--api-key",
    "provider_keys",
    nargs=2,
    multiple=True,
    metavar="PROVIDER KEY",
    help="An LLM provider's API key, e.g. --api-key openai sk-... (repeatable; stored with 0600 "
    "permissions, shown masked; an empty KEY removes it). Remote mode's key is --remote-api-key.",
)
@click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE", help="Any other setting (repeatable).")
@json_option
@click.pass_obj
def configure(
    state: State,
    endpoint: str | None,
    remote_api_key: str | None,
    provider: str | None,
    model: str | None,
    base_url: str | None,
    provider_keys: tuple[tuple[str, str], ...],
    pairs: tuple[str, ...],
    as_json: bool,
) -> None:
    """Write settings to <home>/settings.json (validated; the file is private to you).

    \b
    rag-explorer configure --provider ollama          # ollama:llama3.1, then extractive
    rag-explorer configure --provider groq --api-key groq gsk_...
    rag-explorer configure --endpoint URL --remote-api-key KEY
    """
    from shared.llm.providers import configure_values
    from shared.settings import Settings, read_settings_file, resolve_home, save_settings_file

    home = resolve_home(state.home)
    values: dict[str, Any] = {}
    if endpoint is not None:
        values["endpoint"] = endpoint or None
    if remote_api_key is not None:
        values["api_key"] = remote_api_key or None
    with user_errors():
        current = read_settings_file(home)
    try:
        values.update(
            configure_values(current, provider=provider, model=model, base_url=base_url, keys=provider_keys)
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in Settings.model_fields or key == "home":
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE with a known setting", param_hint="--set")
        values[key] = value
    if not values:
        raise click.UsageError(
            "nothing to configure: give --provider, --api-key PROVIDER KEY, --endpoint, --remote-api-key "
            "or --set KEY=VALUE"
        )
    with user_errors():
        path = save_settings_file(home, values)
    shown = _shown(values, [name for name, _ in provider_keys])
    if as_json:
        click.echo(json.dumps({"settings_file": str(path), "updated": shown}, indent=2))
        return
    echo(f"updated {path}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    if provider is not None:
        _provider_note(home, str(values["answer_providers"]))


def _shown(values: dict[str, Any], key_names: list[str]) -> dict[str, Any]:
    """``values`` for people: secrets masked; of llm_api_keys only the providers just given, masked."""
    from shared.llm.providers import OWN_SETTINGS
    from shared.settings import MASK, masked

    shown = masked(values)
    if "llm_api_keys" in values:
        shown.pop("llm_api_keys")
        for name in {n.lower() for n in key_names} - set(OWN_SETTINGS):  # openai's: openai_api_key
            shown[f"llm_api_keys.{name}"] = MASK if name in values["llm_api_keys"] else None
    return shown


def _provider_note(home: Path, chain: str) -> None:
    """Say what the new chain still needs (a key, a running server) and how to check it."""
    from shared.errors import ConfigError
    from shared.llm.factory import ProviderAccess
    from shared.settings import load_settings

    name = chain.split(":", 1)[0]
    try:
        endpoint = ProviderAccess.from_settings(load_settings({"home": home})).endpoint(name)
    except ConfigError:
        return
    if endpoint.missing_key:
        echo(f"note: {endpoint.missing_key}")
    elif endpoint.base_url and "localhost" in endpoint.base_url:
        echo(f"note: {name} must be running at {endpoint.base_url}, with the model pulled")
    echo("check it with: rag-explorer providers")


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
