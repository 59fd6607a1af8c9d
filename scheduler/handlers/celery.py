"""The ``celery`` handler: send a task with Celery's own client and bring its outcome back
into run history. The scheduler decides when; Celery workers do the work.

Celery is imported only when a job of this type runs (``pip install
'declarative-scheduler[celery]'``), so job files validate without it. Tasks are sent in
batches by a process of its own per broker (``celery_send``), off the loop and off the
daemon's interpreter lock. Every other call into Celery blocks, so each runs on a small
thread pool of its own, under a deadline; results are polled for all pending runs at once
by one ``ResultWatch`` per result backend (one batched read per tick, no thread per pending
result): both in ``celery_results``. Callers: the runner, through the registry.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import logging
import math
import os
import re
import string
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from scheduler import celery_send
from scheduler.celery_send import INSTALL_HINT, CeleryMissing, new_app
from scheduler.durations import Duration
from scheduler.handlers.base import HandlerArgs, HandlerType, Result, RunContext
from scheduler.handlers.celery_results import (
    CLIENT_THREADS,
    REPR_LIMIT,
    call,
    outcome_of,
    watch,
    worker_of,
)

SEND_TIMEOUT = 10.0  # seconds for the broker to take a task (or a revoke) before we give up
BATCH_LIMIT = 100  # tasks handed to the sender process at once

_VAR = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
BROKER_SCHEMES = {
    "amqp", "amqps", "pyamqp", "librabbitmq", "redis", "rediss", "sentinel", "sqs",
    "memory", "filesystem", "qpid", "zookeeper", "mongodb", "sqla", "confluentkafka",
    "gcpubsub", "azurestoragequeues", "azureservicebus", "consul", "etcd",
}  # fmt: skip
BACKEND_SCHEMES = {
    "redis", "rediss", "sentinel", "db", "mongodb", "cache", "cassandra", "elasticsearch",
    "couchdb", "couchbase", "arangodb", "dynamodb", "azureblockblob", "s3", "gs", "file",
    "consul", "cosmosdbsql",
}  # fmt: skip

if TYPE_CHECKING:  # processes are started only by a celery run: not imported by `validate`
    import asyncio
    from concurrent.futures import Future, ProcessPoolExecutor

T = TypeVar("T")
log = logging.getLogger(__name__)


def _check_url(value: str, what: str, schemes: set[str], example: str) -> str:
    """A URL is checked as far as it is known: ``${VAR}`` parts are filled at run time."""
    if _VAR.fullmatch(value.strip()):
        return value
    for url in _VAR.sub("x", value).split(";"):  # Celery takes fail-over brokers as a;b
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme == "rpc" and what == "backend":
            raise ValueError(
                "rpc:// results go to the sending process's own reply queue, which the "
                "scheduler does not read: use a redis:// or db+ backend, or leave backend out"
            )
        if scheme.split("+", 1)[0] not in schemes:
            raise ValueError(f"'{url}' is not a Celery {what} URL (like {example})")
        try:
            urlsplit(url).port  # noqa: B018  (raises on a port that is not a number)
        except ValueError as exc:
            raise ValueError(f"'{url}' is not a valid {what} URL: {exc}") from None
    return value


def _json_problem(value: Any, path: str) -> str | None:
    """Where a YAML value stops being JSON (a date, binary, a set, a non-text key, NaN)."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value}, which JSON cannot carry"
    if isinstance(value, list):
        for index, item in enumerate(value):
            if problem := _json_problem(item, f"{path}[{index}]"):
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} has the key {key!r}, which is not text: quote it"
            if problem := _json_problem(item, f"{path}.{key}"):
                return problem
        return None
    kind = type(value).__name__
    hint = f" (quote it to send the text '{value}')" if kind in ("date", "datetime") else ""
    return f"{path} is a {kind}, which JSON cannot carry{hint}"


class CeleryArgs(HandlerArgs):
    """Send a Celery task (send_task) and record its outcome: the result, the remote error,
    or `sent` when there is no result backend to read it from."""

    task: str = Field(
        min_length=1,
        pattern=r"^\S+$",
        description="a task name the workers know, e.g. research.tasks.search",
    )
    args: list[Any] = Field(default_factory=list, description="positional arguments (JSON)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments (JSON)")
    queue: str | None = Field(default=None, min_length=1, description="default: Celery's")
    broker: str = Field(
        default="${CELERY_BROKER_URL}",
        description="broker URL (redis://, amqp://, ...); ${VAR} is read from the daemon's "
        "environment when the job runs and never stored",
    )
    backend: str | None = Field(
        default=None,
        description="result backend URL; without one the run is recorded 'sent' once the "
        "broker has the task",
    )
    expires: Duration | None = Field(
        default=None,
        description="drop the task if no worker has started it by then "
        "(default: the job's timeout)",
    )

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        return _check_url(value, "broker", BROKER_SCHEMES, "redis://host:6379/0 or amqp://host//")

    @field_validator("backend")
    @classmethod
    def _backend_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _check_url(value, "backend", BACKEND_SCHEMES, "redis://host:6379/1")

    @field_validator("args", "kwargs", mode="before")
    @classmethod
    def _json_only(cls, value: Any, info: Any) -> Any:
        if problem := _json_problem(value, info.field_name):
            raise ValueError(problem)
        return value


class CeleryDefaults(HandlerArgs):
    """``defaults: {celery: ...}``: merged under every celery run of the file; a run's own
    keys win."""

    broker: str | None = None
    backend: str | None = None
    queue: str | None = Field(default=None, min_length=1)

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        return None if value is None else CeleryArgs._broker_url(value)

    @field_validator("backend")
    @classmethod
    def _backend_url(cls, value: str | None) -> str | None:
        return CeleryArgs._backend_url(value)


class UnsetVariable(Exception):
    pass


def _expand(value: str, what: str) -> str:
    if "$" not in value:
        return value
    try:
        return string.Template(value).substitute(os.environ)
    except KeyError as exc:
        raise UnsetVariable(
            f"{what} uses ${{{exc.args[0]}}}, which is not set in the scheduler's "
            "environment: set it where the daemon starts"
        ) from None
    except ValueError as exc:
        raise UnsetVariable(f"{what}: {exc} (write $$ for a literal $)") from None


_apps: dict[tuple[str, str | None], Any] = {}
_apps_lock = threading.Lock()


def _app(broker: str, backend: str | None) -> Any:
    """The daemon's own client per broker (and backend), kept for the daemon's life: it
    reads results and revokes tasks (sends are the sender process's). Built on a client
    thread or the warm-up's, never on the loop (importing Celery and its transport takes a
    tenth of a second)."""
    with _apps_lock:
        app = _apps.get((broker, backend))
        if app is None:
            app = _apps[broker, backend] = new_app(broker, backend, CLIENT_THREADS * 2)
        return app


class SendFailed(Exception):
    """The sender process could not send a batch: why, as ``Type: message``."""


@dataclass
class _Outgoing:
    message: dict[str, Any]
    future: asyncio.Future[None]


_processes: dict[str, ProcessPoolExecutor] = {}
_process_ids: dict[str, int] = {}
_processes_lock = threading.Lock()


def _in_sender(broker: str, fn: Callable[..., T], *args: Any) -> Future[T]:
    """Call ``fn`` in the sender process of ``broker`` (one per broker, so a broker that
    hangs holds up only its own sends), started on first use and again after it died."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from scheduler.children import host_main_left_behind

    with _processes_lock:
        for _ in range(2):
            pool = _processes.get(broker)
            if pool is None:
                if not _processes:
                    atexit.register(_stop_senders)
                context = multiprocessing.get_context("spawn")  # the daemon has threads
                pool = ProcessPoolExecutor(
                    1, mp_context=context, initializer=celery_send.init, initargs=(os.getpid(),)
                )
                _processes[broker] = pool
            try:
                with host_main_left_behind():  # the child starts on the first submit
                    return pool.submit(fn, *args)
            except BrokenProcessPool:  # it died since its last batch: start another
                del _processes[broker]
                pool.shutdown(wait=False, cancel_futures=True)
        raise BrokenProcessPool("the Celery sender process could not be started")


def _stop_senders() -> None:
    """At exit, while the modules they use are still there (their finalizers failed in the
    interpreter's teardown): the senders have nothing left to send."""
    with _processes_lock:
        pools = list(_processes.values())
        _processes.clear()
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=True)


def _sent_from(broker: str, outcome: tuple[int, str | None]) -> str | None:
    """The sender's answer: why it failed, or None. Logs each new sender process."""
    pid, error = outcome
    if _process_ids.get(broker) != pid:
        _process_ids[broker] = pid
        log.info("celery tasks for %s are sent by process %d", _hidden(broker), pid)
    return error


def _sender_died(exc: BaseException) -> str:
    why = f"the Celery sender process stopped ({type(exc).__name__}: {exc})"
    log.warning("%s; the next send starts a new one", why)
    return f"SenderStopped: {why}"


_PASSWORD = re.compile(r"(://[^:/@;]*):[^/;]*@")


def _hidden(url: str) -> str:
    """The broker URL as logs may show it: every password (fail-over URLs are ``a;b``)
    replaced, as written (percent-encoded or not)."""
    return _PASSWORD.sub(r"\1:***@", url)


@dataclass
class Sender:
    """Tasks to send to one broker, handed to its sender process in batches: a batch goes
    as soon as it is full, or when the loop has run what was ready (so the sender starts on
    the first hundred runs of a burst while the loop is still starting the rest)."""

    broker: str
    pending: list[_Outgoing] = field(default_factory=list)
    flush_soon: asyncio.Handle | None = None

    async def send(self, **message: Any) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        outgoing = _Outgoing(message, loop.create_future())
        self.pending.append(outgoing)
        if len(self.pending) >= BATCH_LIMIT:
            self._flush()
        elif self.flush_soon is None:
            self.flush_soon = loop.call_soon(self._flush)
        await asyncio.wait_for(outgoing.future, SEND_TIMEOUT)

    def _flush(self) -> None:
        import asyncio

        if self.flush_soon is not None:
            self.flush_soon.cancel()
            self.flush_soon = None
        # A task whose run gave up waiting (timeout, stopped) is not sent.
        batch = [o for o in self.pending if not o.future.done()]
        self.pending = []
        if not batch:
            return
        # Nor is a batch the sender reaches after its runs gave up (a hung broker).
        deadline = time.time() + SEND_TIMEOUT
        messages = [o.message for o in batch]
        try:
            future = _in_sender(self.broker, celery_send.publish, self.broker, messages, deadline)
        except Exception as exc:  # never leave the batch's runs waiting for the send bound
            self._settle(batch, _failure(exc))
            return
        asyncio.wrap_future(future).add_done_callback(functools.partial(self._answered, batch))

    def _answered(
        self, batch: list[_Outgoing], future: asyncio.Future[tuple[int, str | None]]
    ) -> None:
        try:
            error = _sent_from(self.broker, future.result())
        except BaseException as exc:
            error = _failure(exc)
        self._settle(batch, error)

    def _settle(self, batch: list[_Outgoing], error: str | None) -> None:
        """The batch was sent (``error`` None), or why not."""
        for outgoing in batch:
            if outgoing.future.done():
                continue
            if error is None:
                outgoing.future.set_result(None)
            else:
                outgoing.future.set_exception(SendFailed(error))


def _failure(exc: BaseException) -> str:
    from concurrent.futures.process import BrokenProcessPool

    if isinstance(exc, BrokenProcessPool):
        return _sender_died(exc)
    return f"{type(exc).__name__}: {exc}"


_senders: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Sender]] = (
    weakref.WeakKeyDictionary()
)


def _sender(broker: str) -> Sender:
    """Per event loop, as its futures are of one loop (``scheduler trigger`` and tests run
    several loops in one process)."""
    import asyncio

    per_loop = _senders.setdefault(asyncio.get_running_loop(), {})
    sender = per_loop.get(broker)
    if sender is None:
        if importlib.util.find_spec("celery") is None:  # say so here, not from the child
            raise CeleryMissing(f"the celery run type needs Celery, which is not installed: "
                                f"{INSTALL_HINT}")  # fmt: skip
        sender = per_loop[broker] = Sender(broker)
    return sender


async def _client(broker: str, backend: str | None) -> Any:
    """``_app``, from the loop: built on a thread unless ``prepare`` built it already."""
    app = _apps.get((broker, backend))
    if app is None:
        app = await call(functools.partial(_app, broker, backend), SEND_TIMEOUT)
    return app


_prepared: set[tuple[str, str | None, str | None]] = set()
_unprepared: dict[tuple[str, str | None, str | None], str] = {}


def prepare(args: CeleryArgs) -> None:
    """Before a celery run is due, off the loop: start the broker's sender process (it
    imports Celery, connects and declares the queue) and build the result client, so that
    the first sends of 1,000 runs due together do not wait a second for all that. Best
    effort: a broker down now is the run's own failure when it is due."""
    try:
        broker = _expand(args.broker, "broker")
        backend = None if args.backend is None else _expand(args.backend, "backend")
    except UnsetVariable:
        return  # the run says so when it is due
    key = (broker, backend, args.queue)
    if key in _prepared:
        return
    from concurrent.futures.process import BrokenProcessPool as ProcessError

    try:
        outcome = _in_sender(broker, celery_send.warm, broker, [args.queue])
        if error := _sent_from(broker, outcome.result(SEND_TIMEOUT)):
            raise SendFailed(error)
        if backend is not None:
            _app(broker, backend).backend  # noqa: B018  (builds the result client)
    except Exception as exc:
        if isinstance(exc, ProcessError):  # the sender died: the next send starts another
            _failure(exc)
            return
        why = f"{type(exc).__name__}: {exc}"
        if _unprepared.get(key) != why:  # once per cause, not every look ahead
            log.info("celery client not ready ahead of a run (%s)", why)
        _unprepared[key] = why
        return
    _unprepared.pop(key, None)
    _prepared.add(key)


async def _revoke(broker: str, task_id: str) -> str:
    import asyncio

    try:
        app = await _client(broker, None)
        await asyncio.shield(
            call(lambda: app.control.revoke(task_id, terminate=True), SEND_TIMEOUT)
        )
    except Exception as exc:
        return f"celery task {task_id} could not be revoked ({type(exc).__name__}: {exc})"
    return f"celery task {task_id} revoked (terminate=True)"


async def _send(sender: Sender, args: CeleryArgs, task_id: str, expires: float | None) -> str:
    """Why the task could not be sent, or ''."""
    try:
        await sender.send(
            name=args.task,
            args=args.args,
            kwargs=args.kwargs,
            task_id=task_id,
            queue=args.queue,
            expires=expires,
            # What monitors (Flower) show; given, Celery skips its safe repr of each message,
            # a third of the cost of building one.
            argsrepr=repr(args.args)[:REPR_LIMIT],
            kwargsrepr=repr(args.kwargs)[:REPR_LIMIT],
        )
    except TimeoutError:
        return f"the broker did not take the task in {SEND_TIMEOUT:g}s"
    except SendFailed as exc:
        return f"could not send the task: {exc}"
    return ""


async def run_celery(ctx: RunContext, args: CeleryArgs) -> Result:
    """Send the task with the run id as its task id, then wait for its result (the runner's
    timeout bounds the wait; on a timeout or a stop the task is revoked)."""
    import asyncio

    try:
        broker = _expand(args.broker, "broker")
        backend = None if args.backend is None else _expand(args.backend, "backend")
        sender = _sender(broker)
    except (CeleryMissing, UnsetVariable) as exc:
        return Result("failure", error=str(exc))
    expires = args.expires.total_seconds() if args.expires else ctx.timeout
    task_id = ctx.run_id

    def announce(worker: str | None = None) -> None:
        """Show the task id, and the worker once one has it, on the running row."""
        if worker is not None:
            if worker == ctx.worker:
                return
            ctx.worker = worker
        if ctx.announce is not None:
            ctx.announce()

    try:
        if failed := await _send(sender, args, task_id, expires):
            return Result("failure", error=failed)
        ctx.task_id = task_id
        announce()
        if backend is None:
            return Result("sent", output=f"celery task {task_id} sent to {args.queue or 'celery'}")
        meta = await watch(await _client(broker, backend), backend).wait(task_id, announce)
    except asyncio.CancelledError:
        # Stopped (timeout, replace, shutdown) while sending or waiting: the task may be
        # queued or running by now. Revoking an id no worker has seen is harmless (workers
        # remember it and drop the task if it arrives).
        ctx.stop_note = await _revoke(broker, task_id)
        raise
    if worker := worker_of(meta):
        ctx.worker = worker
    return outcome_of(meta)


async def stop_lost(args: CeleryArgs, task_id: str) -> str:
    """A run a dead daemon left with its task queued or running: revoke the task."""
    try:
        broker = _expand(args.broker, "broker")
    except UnsetVariable as exc:
        return f"celery task {task_id} could not be revoked ({exc})"
    return await _revoke(broker, task_id)


HANDLER = HandlerType(
    "celery",
    CeleryArgs,
    run_celery,
    CeleryArgs.__doc__ or "",
    prepare=prepare,
    stop_lost=stop_lost,
)
