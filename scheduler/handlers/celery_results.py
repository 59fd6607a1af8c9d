"""The Celery client's side of waiting: a small thread pool every blocking Celery call runs
on (``call``, under a deadline), and one ``ResultWatch`` per result backend that polls the
results of all pending runs together (one batched read per tick, no thread per pending
result), turning a finished task's state into a run result (``outcome_of``).
Caller: ``handlers.celery``.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from scheduler.handlers.base import Result

if TYPE_CHECKING:  # imported by the first run, not by `validate`
    import asyncio

POLL_TIMEOUT = 10.0  # seconds for one batched read of pending results
POLL_INTERVAL = 0.2  # seconds between two reads of the pending results
REPR_LIMIT = 4096
TRACEBACK_LINES = 30
CLIENT_THREADS = 4  # sends, revokes and result reads wait on the network, not the CPU
READY = {"SUCCESS", "FAILURE", "REVOKED"}

T = TypeVar("T")
log = logging.getLogger("scheduler.handlers.celery")


@cache
def executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(CLIENT_THREADS, thread_name_prefix="celery-client")


async def call(fn: Callable[[], T], timeout: float) -> T:
    """A blocking Celery call off the loop, waited for at most ``timeout`` seconds."""
    import asyncio

    future = asyncio.get_running_loop().run_in_executor(executor(), fn)
    return await asyncio.wait_for(future, timeout)


@dataclass
class _Waiter:
    future: asyncio.Future[dict[str, Any]]
    on_worker: Callable[[str], None]


@dataclass
class ResultWatch:
    """Pending results of one backend, read together every ``POLL_INTERVAL``."""

    backend: Any
    pending: dict[str, _Waiter] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    failing: str | None = None  # why the last read failed, logged once per streak

    async def wait(self, task_id: str, on_worker: Callable[[str], None]) -> dict[str, Any]:
        import asyncio

        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[task_id] = _Waiter(future, on_worker)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._loop())
        try:
            return await future
        finally:
            self.pending.pop(task_id, None)

    async def _loop(self) -> None:
        import asyncio

        while self.pending:
            await asyncio.sleep(POLL_INTERVAL)
            ids = list(self.pending)
            try:
                metas = await call(functools.partial(self._read, ids), POLL_TIMEOUT)
            except Exception as exc:  # backend down: keep waiting, the job's timeout bounds it
                why = f"{type(exc).__name__}: {exc}"
                if why != self.failing:
                    log.warning("celery results not readable (%s); retrying", why)
                self.failing = why
                continue
            self.failing = None
            for task_id, meta in metas.items():
                waiter = self.pending.get(task_id)
                if waiter is None or waiter.future.done():
                    continue
                try:
                    if worker := worker_of(meta):
                        waiter.on_worker(worker)
                    if meta.get("status") in READY:
                        waiter.future.set_result(meta)
                except Exception as exc:  # an odd result fails its run, not every pending one
                    waiter.future.set_exception(exc)

    def _read(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        backend = self.backend
        found: dict[str, dict[str, Any]] = {}
        if hasattr(backend, "mget") and hasattr(backend, "get_key_for_task"):
            for start in range(0, len(ids), 500):  # key-value stores: one round trip per 500
                chunk = ids[start : start + 500]
                values = backend.mget([backend.get_key_for_task(i) for i in chunk])
                for task_id, value in zip(chunk, values, strict=True):
                    if value:
                        found[task_id] = backend.decode(value)
        else:
            for task_id in ids:  # other backends: one read each, still on this one thread
                found[task_id] = backend.get_task_meta(task_id)
        return found


def worker_of(meta: dict[str, Any]) -> str | None:
    # `worker` with result_extended; a STARTED state's result carries it with track_started.
    worker = meta.get("worker")
    result = meta.get("result")
    if not worker and isinstance(result, dict) and meta.get("status") == "STARTED":
        worker = result.get("hostname")
    return worker if isinstance(worker, str) else None


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ResultWatch]] = (
    weakref.WeakKeyDictionary()
)


def watch(app: Any, backend_url: str) -> ResultWatch:
    import asyncio

    per_loop = _watches.setdefault(asyncio.get_running_loop(), {})
    if backend_url not in per_loop:
        per_loop[backend_url] = ResultWatch(app.backend)
    return per_loop[backend_url]


def cut(text: str) -> str:
    return text if len(text) <= REPR_LIMIT else text[:REPR_LIMIT] + "...(truncated)"


def outcome_of(meta: dict[str, Any]) -> Result:
    """A finished task's state as a run result (the raw meta: remote exception classes
    are never imported here)."""
    status = meta.get("status")
    if status == "SUCCESS":
        return Result("success", output=cut(repr(meta.get("result"))))
    value = meta.get("result")
    if isinstance(value, dict) and "exc_type" in value:
        message = value.get("exc_message")
        if isinstance(message, list | tuple):
            message = ", ".join(map(str, message))
        error = f"{value['exc_type']}: {message}"
    else:
        error = repr(value)
    if status == "REVOKED":
        error = f"the task was revoked before it finished ({error})"
    tb = (meta.get("traceback") or "").rstrip().splitlines()[-TRACEBACK_LINES:]
    return Result("failure", output="\n".join(tb), error=f"celery task {status}: {error}")
