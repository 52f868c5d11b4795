"""Start `rag-explorer serve` in a subprocess for integration tests (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(
    env: dict[str, str], *args: str, log_path: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Run `rag-explorer serve` with ``env`` (on top of os.environ); yields its URL once /health answers.
    Its output (a line per request) goes to ``log_path``, or a temporary file: never to a pipe that nobody
    reads, which would block the server once full."""
    port = free_port()
    log = log_path.open("w+") if log_path else tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
    # only the given settings: none leak in from the developer's own RAG_EXPLORER_* environment
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAG_EXPLORER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "local_cli", "serve", "--port", str(port), *args],
        cwd=ROOT,
        env={**clean, "PYTHONUNBUFFERED": "1", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"serve exited: {log.read()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("serve did not start within 60 s") from None
                time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # as Ctrl-C would
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
