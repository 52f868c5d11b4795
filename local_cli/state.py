"""What every command shares: the lazily built settings, service and client; options; batch input."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from local_cli.output import UserError, echo

if TYPE_CHECKING:
    from pydantic import BaseModel

    from shared.adapters.client import RemoteClient
    from shared.extras import MissingExtraError
    from shared.models import SearchFilter
    from shared.service import RagService
    from shared.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


class State:
    def __init__(self, home: str | None, endpoint: str | None = None, api_key: str | None = None) -> None:
        self.home = home
        self.flags = {"home": home, "endpoint": endpoint, "api_key": api_key}
        self._settings: Settings | None = None
        self._service: RagService | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            from shared.settings import load_settings

            with user_errors():
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

    def empty_index(self) -> bool:
        """Whether the local index holds no chunk at all (remote mode: never said; the API reports it)."""
        return not self.remote and self.service().store.count_chunks() == 0

    def local_only(self, command: str) -> RagService:
        if self.remote:
            raise UserError(
                f"`{command}` works on the local index; to update the cloud index, upload documents with "
                "`rag-explorer push` (or drop --endpoint / RAG_EXPLORER_ENDPOINT)"
            )
        return self.service()

    @contextlib.contextmanager
    def writing(self, command: str, *, wait: bool) -> Iterator[None]:
        """Hold the home folder's write lock (see :mod:`local_cli.lock`) for a command that changes
        the index. Open the store inside the block: a store opened earlier would not see the index that
        the previous writer left."""
        from local_cli.lock import LockHeld, write_lock

        home = self.settings().home_path

        def waiting(holder: str) -> None:
            echo(f"waiting for {holder or 'another process'} to finish writing to {home} ...", err=True)

        try:
            with write_lock(home, command, wait=wait, on_wait=waiting):
                yield
        except LockHeld as exc:
            raise UserError(
                f"another rag-explorer command is writing to {home} ({exc.holder or 'unknown'}); "
                "wait for it to finish, or add --wait"
            ) from None
        except OSError as exc:
            raise UserError(f"cannot lock {home}: {exc.strerror or exc}") from None

    def client(self, endpoint: str | None = None) -> RemoteClient:
        from shared.adapters.client import RemoteClient

        s = self.settings()
        url = endpoint or s.endpoint
        assert url is not None
        with user_errors():
            return RemoteClient(url, s.api_key)

    def backend(self) -> RagService | RemoteClient:
        """Where `ask`, `search` and `eval` go: the deployed API in remote mode, else the local index."""
        return self.client() if self.remote else self.service()


class user_errors:
    """Turn the core's deliberate errors into ClickException (exit 1, message, no traceback)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        from shared.errors import RagExplorerError
        from shared.extras import MissingExtraError

        if isinstance(exc, MissingExtraError):
            raise missing_extra(exc) from exc
        if isinstance(exc, RagExplorerError):
            raise UserError(str(exc)) from exc


def missing_extra(exc: MissingExtraError) -> UserError:
    """``rag-explorer ingest needs the [local] extra ...: pip install 'rag-explorer[local]'`` (the command
    as typed: also ``deflect-bot ...``)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return UserError(str(exc))
    command = ctx.command_path + (f" {ctx.invoked_subcommand}" if ctx.invoked_subcommand else "")
    return UserError(exc.for_command(command))


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(f)


def wait_option(f: F) -> F:
    return click.option(
        "--wait", is_flag=True, help="If another command is writing to this home, wait for it (else exit 1)."
    )(f)


def filter_options(f: F) -> F:
    f = click.option("--tag", "tags", multiple=True, help="Only documents with this tag (repeatable).")(f)
    f = click.option("--source-prefix", help="Only documents whose source starts with this.")(f)
    return f


def filters_from(source_prefix: str | None, tags: tuple[str, ...]) -> SearchFilter | None:
    if not source_prefix and not tags:
        return None
    from shared.models import SearchFilter

    if source_prefix and not os.path.isabs(source_prefix):
        # sources are absolute paths: a prefix that starts like a relative path is taken from here
        first = Path(source_prefix).parts[0] if Path(source_prefix).parts else ""
        if first in (".", "..", "~") or (first and Path(first).expanduser().exists()):
            keep_sep = source_prefix.endswith(("/", os.sep))
            source_prefix = os.path.abspath(os.path.expanduser(source_prefix)) + (os.sep if keep_sep else "")

    from pydantic import ValidationError

    try:
        return SearchFilter(source_prefix=source_prefix, tags=list(tags))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise click.BadParameter(problems, param_hint="--tag / --source-prefix") from None


def emit(model: BaseModel) -> None:
    click.echo(model.model_dump_json(indent=2))


def _read_batch(path: Path, key_names: tuple[str, ...]) -> Iterator[tuple[Any, str | None, str | None]]:
    """Yield ``(id, text, error)`` per JSON Lines record."""
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read batch file {path}: {exc.strerror or exc}") from exc
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


def run_batch(path: Path, key_names: tuple[str, ...], handle: Callable[[str], BaseModel]) -> None:
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
