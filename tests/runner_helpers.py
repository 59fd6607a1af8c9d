"""Drive ``Runner`` as a library for the runner and handler tests: a real SQLite store on
tmp_path, a started ``HistoryWriter``, job specs built through the same models the loader
uses, and polling helpers (no sleeps that guess). Also the functions the ``python`` handler
tests import by reference (``tests.runner_helpers:name``).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from scheduler.handlers import Registry, default_registry
from scheduler.history import HistoryWriter, list_runs
from scheduler.runner import Runner
from scheduler.spec import models_for
from scheduler.store import Store
from tests.daemon_helpers import wait_for

T = TypeVar("T")

DEADLINE = 10.0  # a bound only: waits end when the change shows (parallel CI load)
STEP = 0.02


def job(registry: Registry | None = None, **fields: Any) -> dict[str, Any]:
    """A canonical job spec, validated like a job file's; the schedule defaults to hourly."""
    fields.setdefault("schedule", {"interval": "1h"})
    models = models_for(registry if registry is not None else default_registry())
    return models.job.model_validate(fields).canonical()


def command_job(command: list[str] | str, **fields: Any) -> dict[str, Any]:
    run: dict[str, Any] = {"type": "command", "command": command}
    for key in ("env", "cwd", "inherit_env"):
        if key in fields:
            run[key] = fields.pop(key)
    return job(run=run, **fields)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Harness:
    store: Store
    writer: HistoryWriter
    runner: Runner

    def runs(self, job_id: str) -> list[dict[str, Any]]:
        """The job's history rows, oldest first."""
        return list(reversed(list_runs(self.store, job_id, limit=1000)))

    async def idle(self, timeout: float = DEADLINE) -> None:
        """Wait until every run and notifier task has finished, then flush the history."""
        end = time.monotonic() + timeout
        while any(not task.done() for task in self.runner.tasks):
            if time.monotonic() > end:
                raise AssertionError(f"runs still going after {timeout} s")
            await asyncio.sleep(STEP)
        await self.writer.flush()

    async def finished(self, job_id: str, count: int = 1) -> list[dict[str, Any]]:
        """Wait for ``count`` finished rows of the job, then return all its rows."""

        async def probe() -> list[dict[str, Any]] | None:
            await self.writer.flush()
            rows = self.runs(job_id)
            done = [r for r in rows if r["outcome"] != "running"]
            return rows if len(done) >= count else None

        return await wait_for_async(probe, f"{count} finished run(s) of {job_id}")


async def wait_for_async(
    probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = DEADLINE
) -> T:
    end = time.monotonic() + timeout
    while True:
        value = await probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(STEP)


@contextlib.asynccontextmanager
async def harness(
    tmp_path: Path,
    jobs: dict[str, dict[str, Any]],
    *,
    registry: Registry | None = None,
    kill_grace: float = 0.5,
    shutdown_grace: float = 5.0,
    url: str | None = None,
) -> AsyncIterator[Harness]:
    """A runner on a fresh store (SQLite on tmp_path, or ``url``); on exit it shuts down
    (waiting for runs up to ``shutdown_grace``), flushes the history and closes the store."""
    store = Store(url or f"sqlite:///{tmp_path / 's.db'}")
    writer = HistoryWriter(store)
    writer.start()
    runner = Runner(
        store,
        writer,
        registry=registry if registry is not None else default_registry(),
        kill_grace=kill_grace,
    )
    runner.load_specs(jobs)
    try:
        yield Harness(store, writer, runner)
    finally:
        try:
            await runner.shutdown(grace=shutdown_grace)
        finally:
            store.close()


def run_once(
    tmp_path: Path, spec: dict[str, Any], job_id: str = "job", registry: Registry | None = None
) -> list[dict[str, Any]]:
    """Dispatch the job once, wait for it and its notifiers; its rows, oldest first."""

    async def go() -> list[dict[str, Any]]:
        async with harness(tmp_path, {job_id: spec}, registry=registry) as h:
            assert h.runner.dispatch(job_id, now()) is None
            await h.idle()
            return h.runs(job_id)

    return asyncio.run(go())


def seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def duration(row: dict[str, Any]) -> float:
    return seconds(row["finished_at"]) - seconds(row["started_at"])


# -- processes ---------------------------------------------------------------------------
def read_pid(path: Path) -> int:
    return wait_for(lambda: int(path.read_text()) if _has_line(path) else None, f"pid in {path}")


async def read_pid_async(path: Path) -> int:
    async def probe() -> int | None:
        return int(path.read_text()) if _has_line(path) else None

    return await wait_for_async(probe, f"pid in {path}")


def _has_line(path: Path) -> bool:
    return path.exists() and path.read_text().endswith("\n")


def process_state(pid: int) -> str | None:
    """The process's state letter from /proc (``Z`` for a zombie), or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone(pid: int, timeout: float = 10.0) -> bool:
    """True once the pid no longer exists at all (not even as a zombie)."""
    end = time.monotonic() + timeout
    while pid_exists(pid) or process_state(pid) is not None:
        if time.monotonic() > end:
            return False
        time.sleep(STEP)
    return True


# -- a local HTTP server -----------------------------------------------------------------
@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    url: str
    received: list[Received] = field(default_factory=list)


Reply = Callable[[Received], tuple[int, bytes, float]]  # status, body, delay in seconds


@contextlib.contextmanager
def http_server(reply: Reply) -> Iterator[Server]:
    """A real HTTP server on 127.0.0.1 in a thread; ``reply`` decides each response."""
    received: list[Received] = []

    class Handle(http.server.BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Received(
                self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
            )
            received.append(request)
            status, body, delay = reply(request)
            if delay:
                time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        do_GET = do_POST = do_PUT = _any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handle) as url:
        yield Server(url, received)


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on 127.0.0.1 from a thread: yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def json_body(request: Received) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(request.body)
    return value


# -- functions the python handler tests call by reference ---------------------------------
async def async_add(a: int, b: int) -> dict[str, int]:
    await asyncio.sleep(0)
    return {"sum": a + b}


def plain_greet(name: str) -> str:
    return f"hello {name} from thread {threading.current_thread().name}"


def echo_value(value: Any) -> Any:
    return value


def plain_fails(reason: str) -> None:
    raise ValueError(f"deliberate failure: {reason}")


async def async_fails() -> None:
    await asyncio.sleep(0)
    raise RuntimeError("deliberate async failure")


def run_stored_job(db_url: str, job_id: str) -> str:
    """Run a reconciled job of the store once, as its daemon would, and return the outcome
    (``scheduler trigger`` needs a running daemon: this stands in where a test has none)."""

    async def go() -> str:
        store = Store(db_url)
        try:
            writer = HistoryWriter(store)
            writer.start()
            runner = Runner(store, writer, registry=default_registry())
            runner.load_specs({job_id: store.stored_jobs()[job_id].canonical})
            assert runner.dispatch(job_id, now()) is None
            await runner.shutdown(grace=float("inf"))
            return str(list_runs(store, job_id, limit=1)[0]["outcome"])
        finally:
            store.close()

    return asyncio.run(go())
