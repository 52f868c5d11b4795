"""The query work of `rag-explorer serve`, in worker processes, behind a bounded queue.

Worker side: each process of a :class:`concurrent.futures.ProcessPoolExecutor` (``spawn``) runs
:func:`init_worker` once: one BLAS/OpenMP thread and ``embed_threads=1`` (the workers share the machine's
cores), the embedder loaded and the store opened (the warm-up), and its own resolver,
``create_app(RagService(settings))``, like one warm Lambda instance. :func:`run_event` then takes an API
Gateway proxy event and returns the proxy result. A worker ignores SIGINT (Ctrl-C reaches the whole
process group; the server stops the pool) and exits by itself if the server process dies.

Server side: :class:`WorkerPool` admits at most ``max_pending`` requests, queued or running; over that,
:meth:`WorkerPool.dispatch` says ``busy`` at once. Queued requests wait for one of ``workers`` slots in
the event loop, not in the executor (whose own queue marks calls as running before a worker takes them,
so they could no longer be cancelled): a request whose client disconnects, whose deadline passes or
that is still queued when the server stops is dropped there and never reaches a worker. A slot is given
back when its worker has finished, even if nobody waits for the answer any more, so at most ``workers``
calls are ever in the processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Literal

from local_cli.server import LocalLambdaContext, _current_request_id, internal_error_result

if TYPE_CHECKING:
    from shared.settings import Settings

#: API Gateway's integration timeout: a pooled request is answered 504 past it (queue time included).
DEADLINE_S = 29.0
#: Thread pools read these when they load; threadpoolctl limits those already loaded.
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

Outcome = Literal["ok", "busy", "timeout", "gone_queued", "gone_running", "stopping", "crashed"]

log = logging.getLogger("local_cli.server")

# --------------------------------------------------------------------------- in the worker processes

#: Per worker process: its resolver ("app") and what the warm-up found ("problem").
_worker: dict[str, Any] = {}


def init_worker(settings: Settings, parent_pid: int) -> None:
    """The pool's initializer: runs once in each worker process, before any request."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in THREAD_ENV:
        os.environ[name] = "1"
    _watch_parent(parent_pid)
    from local_cli.output import echo
    from local_cli.server import RequestIdLogHandler

    logging.getLogger().addHandler(RequestIdLogHandler(lambda line: echo(line, err=True)))
    from threadpoolctl import threadpool_limits

    from shared.adapters.http_api import create_app
    from shared.service import RagService

    service = RagService(settings.model_copy(update={"embed_threads": 1}))
    _worker["problem"] = _warm_up(service)
    _worker["limits"] = threadpool_limits(limits=1)  # kept: the limit holds while the object lives
    _worker["app"] = create_app(service)


def _watch_parent(parent_pid: int) -> None:
    """Exit when the server process is gone (killed with SIGKILL, say): no orphan workers."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _warm_up(service: Any) -> tuple[str, str] | None:
    """Load the embedder and open the store now; ``("fatal"|"warning", message)`` if that failed."""
    from shared.errors import StoreUnavailableError

    try:
        service.embedder.embed_query("warm up")
    except Exception as exc:
        return "fatal", f"cannot load the embedder: {exc}"
    try:
        service.store  # noqa: B018 - open the index (or learn now that it is unavailable)
    except StoreUnavailableError as exc:
        return "warning", f"the store is unavailable ({exc}); requests get 503 until it is back"
    except Exception as exc:
        return "fatal", f"cannot open the store: {exc}"
    return None


def ready() -> tuple[int, tuple[str, str] | None]:
    """A no-op call that starts a worker: its pid and its warm-up's problem."""
    return os.getpid(), _worker.get("problem")


def run_event(event: dict[str, Any], deadline: float) -> dict[str, Any] | None:
    """The proxy result for ``event``; None when ``deadline`` (epoch seconds) passed before it started."""
    request_id = str(event["requestContext"]["requestId"])
    if time.time() >= deadline:
        return None
    token = _current_request_id.set(request_id)
    try:
        result: dict[str, Any] = _worker["app"].resolve(event, LocalLambdaContext(request_id, deadline))
        return result
    except Exception as exc:  # the resolver maps errors itself; this is a last resort
        log.error("unhandled error: %r", exc)
        return internal_error_result(request_id)
    finally:
        _current_request_id.reset(token)


# --------------------------------------------------------------------------- in the server process


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Processes spawned inside start with SIGINT ignored (Ctrl-C in a terminal reaches them too)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class WorkerStartError(RuntimeError):
    """A worker could not build its service (the embedder or the store); the message says why."""


class WorkerPool:
    """``workers`` processes, at most ``max_pending`` requests queued or running (see the module doc)."""

    def __init__(
        self, settings: Settings, *, workers: int, max_pending: int, log: Callable[[str], None]
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.max_pending = max_pending
        self.log = log
        self.pending = 0  # queued or running; changed only in the event loop's thread
        self.not_computed = 0  # dropped while queued: client gone, deadline passed or shutting down
        self.stopping = asyncio.Event()
        self._slots: asyncio.Semaphore | None = None
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(self.settings, os.getpid()),
        )

    def start(self) -> list[str]:
        """Start every worker and wait for its warm-up; returns the warnings, raises on a fatal one."""
        with _sigint_ignored():
            futures = [self._executor.submit(ready) for _ in range(self.workers)]
        warnings: list[str] = []
        for future in futures:
            _, problem = future.result()
            if problem is not None:
                kind, message = problem
                if kind == "fatal":
                    raise WorkerStartError(message)
                if message not in warnings:
                    warnings.append(message)
        return warnings

    def pids(self) -> list[int]:
        processes = getattr(self._executor, "_processes", None) or {}
        return sorted(int(pid) for pid in processes)

    async def dispatch(
        self, event: dict[str, Any], deadline: float, gone: asyncio.Future[Any]
    ) -> tuple[Outcome, dict[str, Any] | None]:
        """Run ``event`` in a worker unless the queue is full, ``gone`` (the client's disconnect)
        completes or ``deadline`` passes first. Returns what happened and the proxy result if any."""
        if self.stopping.is_set():
            return "stopping", None
        if self.pending >= self.max_pending:
            return "busy", None
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        self.pending += 1
        handed_over = False
        try:
            waited = await self._wait_for_slot(self._slots, deadline, gone)
            if waited != "ok":
                self.not_computed += 1
                return waited, None
            executor = self._executor
            try:
                future = executor.submit(run_event, event, deadline)
            except (BrokenProcessPool, RuntimeError) as exc:
                self._slots.release()
                self._replace(executor, exc)
                return "crashed", None
            handed_over = True
            waiter = asyncio.wrap_future(future)
            waiter.add_done_callback(lambda done: self._finished(executor, done))
            return await self._wait_for_result(waiter, deadline, gone)
        finally:
            if not handed_over:
                self.pending -= 1

    async def _wait_for_slot(
        self, slots: asyncio.Semaphore, deadline: float, gone: asyncio.Future[Any]
    ) -> Outcome:
        """ "ok" holding a slot, or why the request left the queue (it then holds none)."""
        acquire = asyncio.ensure_future(slots.acquire())
        stop = asyncio.ensure_future(self.stopping.wait())
        keep = False
        try:
            await asyncio.wait(
                {acquire, gone, stop}, timeout=max(0.0, deadline - time.time()), return_when="FIRST_COMPLETED"
            )
            if gone.done():
                return "gone_queued"
            if stop.done():
                return "stopping"
            if acquire.done():
                keep = True
                return "ok"
            return "timeout"
        finally:
            stop.cancel()
            if not acquire.done():
                acquire.cancel()
            elif not keep and not acquire.cancelled():
                slots.release()

    async def _wait_for_result(
        self, waiter: asyncio.Future[Any], deadline: float, gone: asyncio.Future[Any]
    ) -> tuple[Outcome, dict[str, Any] | None]:
        await asyncio.wait(
            {waiter, gone}, timeout=max(0.0, deadline - time.time()), return_when="FIRST_COMPLETED"
        )
        if waiter.done():
            if waiter.exception() is not None:
                return "crashed", None
            result = waiter.result()
            return ("timeout", None) if result is None else ("ok", result)
        return ("gone_running", None) if gone.done() else ("timeout", None)

    def _finished(self, executor: ProcessPoolExecutor, done: asyncio.Future[Any]) -> None:
        """A worker is done with a call (answered or not): its slot and its place in the queue are free."""
        self.pending -= 1
        if self._slots is not None:
            self._slots.release()
        exc = None if done.cancelled() else done.exception()
        if isinstance(exc, BrokenProcessPool):
            self._replace(executor, exc)

    def _replace(self, broken: ProcessPoolExecutor, exc: BaseException) -> None:
        """A worker process died (killed, out of memory): start a new pool for the next requests."""
        if broken is not self._executor:
            return
        self.log(f"ERROR a worker process died ({exc}); starting new workers request_id=-")
        self._executor = self._new_executor()
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self, timeout: float) -> None:
        """Stop the workers: queued calls are cancelled, running ones get ``timeout`` seconds to finish,
        then the processes are terminated. No process is left behind."""
        executor = self._executor
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        end = time.monotonic() + timeout
        for process in processes:
            process.join(max(0.0, end - time.monotonic()))
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(1)
