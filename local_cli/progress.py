"""`ingest`'s progress on stderr: click's progress bar on a terminal; elsewhere (make, CI, a pipe, a log
file), where a bar prints its label and then nothing until the end, a plain line now and then.

A line is printed when :data:`INTERVAL_S` seconds have passed since the last one, or when another tenth
of the files is done, whichever comes first; it says the files done of the total, the chunks embedded,
the rates and, once a file is done, the time left at that pace. Chunks count as they are embedded, so a
single large file (a 240-page manual) shows progress too. Checking costs one clock read per event.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import click

from local_cli.output import echo, plural
from shared.text import printable

#: Seconds between two progress lines when stderr is not a terminal (at most: a tenth of the files
#: done prints one sooner).
INTERVAL_S = 10.0


def duration(seconds: float) -> str:
    """``"45s"``, ``"3m 05s"``, ``"2h 07m"``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


class IngestProgress:
    """Told of each file done (:meth:`file_done`) and each batch of chunks embedded (:meth:`embedded`)."""

    def __init__(
        self,
        total_files: int,
        *,
        tty: bool | None = None,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total_files
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.interval_s = interval_s
        self.clock = clock
        self.files = 0
        self.chunks = 0
        self._step = max(1, math.ceil(total_files / 10))
        self._next_files = self._step
        self._started = self._last = 0.0
        self._bar: Any = None

    def __enter__(self) -> IngestProgress:
        self._started = self._last = self.clock()
        if self.tty:
            self._bar = click.progressbar(
                length=self.total,
                label="Ingesting",
                file=sys.stderr,
                show_pos=True,
                item_show_func=lambda p: printable(p.name) if p else "",
            ).__enter__()
        else:
            echo(f"Ingesting {plural(self.total, 'file')} ...", err=True)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)

    def file_done(self, path: Path, _report: object = None) -> None:
        self.files += 1
        if self._bar is not None:
            self._bar.update(1, path)
            return
        if self.files >= self._next_files or self.files == self.total:
            self._next_files = (self.files // self._step + 1) * self._step
            self._line()
        else:
            self._maybe_line()

    def embedded(self, chunks: Sequence[object]) -> None:
        self.chunks += len(chunks)
        if self._bar is None:
            self._maybe_line()

    def chain(self, hook: Callable[[Sequence[Any]], None] | None) -> Callable[[Sequence[Any]], None]:
        """A batch-embedded hook that calls ``hook`` (the service's own, if any) and counts the chunks."""

        def embedded(chunks: Sequence[Any]) -> None:
            if hook is not None:
                hook(chunks)
            self.embedded(chunks)

        return embedded

    def _maybe_line(self) -> None:
        if self.clock() - self._last >= self.interval_s:
            self._line()

    def _line(self) -> None:
        now = self.clock()
        self._last = now
        echo(self.describe(now - self._started), err=True)

    def describe(self, elapsed: float) -> str:
        """One progress line after ``elapsed`` seconds."""
        parts = [f"  {self.files}/{plural(self.total, 'file')}", f"{plural(self.chunks, 'chunk')} embedded"]
        if elapsed > 0:
            parts.append(f"{self.files / elapsed:.1f} files/s, {self.chunks / elapsed:.1f} chunks/s")
        if self.files >= self.total:
            parts.append(f"{duration(elapsed)} in all")
        elif self.files and elapsed > 0:
            parts.append(f"about {duration((self.total - self.files) * elapsed / self.files)} left")
        return ", ".join(parts)
