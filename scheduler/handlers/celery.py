"""The ``celery`` handler: send a task with Celery's own client and bring its outcome back
into run history. The scheduler decides when; Celery workers do the work.

Celery is imported only when a job of this type runs (``pip install
'declarative-scheduler[celery]'``), so job files validate without it. Every call into
Celery blocks, so each runs on a small thread pool of its own, under a deadline; results are
polled for all pending runs at once by one ``ResultWatch`` per result backend (one batched
read per tick, no thread per pending result): both in ``celery_results``. Callers: the
runner, through the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import re
import string
import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from scheduler.durations import Duration
from scheduler.handlers.base import HandlerArgs, HandlerType, Result, RunContext
from scheduler.handlers.celery_results import (
    CLIENT_THREADS,
    REPR_LIMIT,
    call,
    executor,
    outcome_of,
    watch,
    worker_of,
)

INSTALL_HINT = "pip install 'declarative-scheduler[celery]'"
SEND_TIMEOUT = 10.0  # seconds for the broker to take a task (or a revoke) before we give up
SEND_BATCHES = 2  # batches of sends in flight at once, each on a client thread
BATCH_LIMIT = 100

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


class CeleryMissing(Exception):
    pass


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
    """One client per broker (and backend), kept for the daemon's life (its connection
    pool is reused). The sender has no backend: Redis' would subscribe to every task.
    Built on a client thread or the warm-up's, never on the loop (importing Celery and its
    transport takes a tenth of a second)."""
    with _apps_lock:
        app = _apps.get((broker, backend))
        if app is None:
            app = _apps[broker, backend] = _new_app(broker, backend)
        return app


def _new_app(broker: str, backend: str | None) -> Any:
    try:
        from celery import Celery
    except ImportError as exc:
        raise CeleryMissing(
            f"the celery run type needs Celery, which is not installed ({exc}): {INSTALL_HINT}"
        ) from None
    app = Celery("declarative-scheduler", broker=broker, backend=backend, set_as_current=False)
    app.conf.update(
        broker_connection_timeout=4,
        broker_connection_retry=False,
        broker_pool_limit=CLIENT_THREADS * 2,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        broker_transport_options={"socket_timeout": 5, "socket_connect_timeout": 4},
        redis_socket_timeout=5,
        redis_socket_connect_timeout=4,
        result_backend_transport_options={"retry_policy": {"timeout": 5.0}},
    )
    return app


@dataclass
class _Outgoing:
    message: dict[str, Any]
    future: asyncio.Future[None]


@dataclass
class Sender:
    """Tasks to send, in batches: each batch on a client thread over one producer (taking a
    producer from the pool per task cost more than the send), ``SEND_BATCHES`` at once."""

    app: Any
    queue: deque[_Outgoing] = field(default_factory=deque)
    drains: set[asyncio.Task[None]] = field(default_factory=set)

    async def send(self, **message: Any) -> None:
        loop = asyncio.get_running_loop()
        outgoing = _Outgoing(message, loop.create_future())
        self.queue.append(outgoing)
        if len(self.drains) < SEND_BATCHES:
            drain = loop.create_task(self._drain())
            self.drains.add(drain)
            drain.add_done_callback(self.drains.discard)
        await asyncio.wait_for(outgoing.future, SEND_TIMEOUT)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.queue:
            batch = [self.queue.popleft() for _ in range(min(BATCH_LIMIT, len(self.queue)))]
            try:
                errors = await loop.run_in_executor(executor(), self._publish, batch)
            except Exception as exc:  # pragma: no cover  (_publish catches what sending raises)
                errors = [exc] * len(batch)
            for outgoing, error in zip(batch, errors, strict=True):
                if outgoing.future.done():  # its run gave up waiting (timeout, stopped)
                    continue
                if error is None:
                    outgoing.future.set_result(None)
                else:
                    outgoing.future.set_exception(error)

    def _publish(self, batch: list[_Outgoing]) -> list[Exception | None]:
        """On a client thread. A task whose run gave up waiting is not sent; when a send
        fails the whole batch fails with it (the broker is gone, and each would wait as long
        to find out; a pipelined batch is written or not as one)."""
        try:
            with self.app.producer_or_acquire() as producer:
                # Each queue is declared once per batch (kombu remembers it per connection)
                # rather than by every send: that check was a third of a send's cost.
                declare(self.app, producer, {o.message["queue"] for o in batch})
                # Kombu 5.7+ pipelines a batch to Redis: one round trip, not one per task.
                batching = getattr(producer, "batch", None)
                with batching(4 * BATCH_LIMIT) if batching else contextlib.nullcontext():
                    for outgoing in batch:
                        if not outgoing.future.done():
                            self.app.send_task(
                                producer=producer,
                                declare=[],
                                add_to_parent=False,  # no task of ours is its parent
                                **outgoing.message,
                            )
        except Exception as exc:
            return [exc] * len(batch)
        return [None] * len(batch)


def declare(app: Any, producer: Any, queues: set[str | None]) -> None:
    """Declare the queues as ``send_task`` would (the named queue, or Celery's default)."""
    for name in queues:
        producer.maybe_declare(app.amqp.queues[name or app.conf.task_default_queue])


_senders: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, asyncio.Future[Sender]]
] = weakref.WeakKeyDictionary()


async def _sender(broker: str) -> Sender:
    # Per event loop, as its drains are tasks of one loop (``scheduler trigger`` and tests
    # run several loops in one process). The first run of a broker builds its client on a
    # thread; the runs due with it wait for that one build.
    per_loop = _senders.setdefault(asyncio.get_running_loop(), {})
    future = per_loop.get(broker)
    if future is None:
        future = per_loop[broker] = asyncio.ensure_future(_new_sender(broker))
    try:
        return await asyncio.shield(future)
    except Exception:
        if per_loop.get(broker) is future:
            del per_loop[broker]  # the next run tries again
        raise


async def _new_sender(broker: str) -> Sender:
    return Sender(await _client(broker, None))


async def _client(broker: str, backend: str | None) -> Any:
    """``_app``, from the loop: built on a thread unless ``prepare`` built it already."""
    app = _apps.get((broker, backend))
    if app is None:
        app = await call(functools.partial(_app, broker, backend), SEND_TIMEOUT)
    return app


_prepared: set[tuple[str, str | None, str | None]] = set()
_unprepared: dict[tuple[str, str | None, str | None], str] = {}


def prepare(args: CeleryArgs) -> None:
    """Before a celery run is due, off the loop: import Celery, build the client, connect
    the producers a burst sends on and declare the queue, so that the first sends of 1,000
    runs due together do not wait a fifth of a second for all that. Best effort: a broker
    down now is the run's own failure when it is due."""
    try:
        broker = _expand(args.broker, "broker")
        backend = None if args.backend is None else _expand(args.backend, "backend")
    except UnsetVariable:
        return  # the run says so when it is due
    key = (broker, backend, args.queue)
    if key in _prepared:
        return
    try:
        app = _app(broker, None)
        with contextlib.ExitStack() as stack:
            for _ in range(SEND_BATCHES):
                declare(app, stack.enter_context(app.producer_or_acquire()), {args.queue})
        if backend is not None:
            _app(broker, backend).backend  # noqa: B018  (builds the result client)
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}"
        if _unprepared.get(key) != why:  # once per cause, not every look ahead
            log.info("celery client not ready ahead of a run (%s)", why)
        _unprepared[key] = why
        return
    _unprepared.pop(key, None)
    _prepared.add(key)


async def _revoke(app: Any, task_id: str) -> str:
    try:
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
    except Exception as exc:
        return f"could not send the task: {type(exc).__name__}: {exc}"
    return ""


async def run_celery(ctx: RunContext, args: CeleryArgs) -> Result:
    """Send the task with the run id as its task id, then wait for its result (the runner's
    timeout bounds the wait; on a timeout or a stop the task is revoked)."""
    try:
        broker = _expand(args.broker, "broker")
        backend = None if args.backend is None else _expand(args.backend, "backend")
        sender = await _sender(broker)
    except (CeleryMissing, UnsetVariable) as exc:
        return Result("failure", error=str(exc))
    except TimeoutError:
        return Result("failure", error=f"the Celery client did not start in {SEND_TIMEOUT:g}s")
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
        ctx.stop_note = await _revoke(sender.app, task_id)
        raise
    if worker := worker_of(meta):
        ctx.worker = worker
    return outcome_of(meta)


async def stop_lost(args: CeleryArgs, task_id: str) -> str:
    """A run a dead daemon left with its task queued or running: revoke the task."""
    try:
        broker = _expand(args.broker, "broker")
        app = await _client(broker, None)
    except Exception as exc:
        return f"celery task {task_id} could not be revoked ({type(exc).__name__}: {exc})"
    return await _revoke(app, task_id)


HANDLER = HandlerType(
    "celery",
    CeleryArgs,
    run_celery,
    CeleryArgs.__doc__ or "",
    prepare=prepare,
    stop_lost=stop_lost,
)
