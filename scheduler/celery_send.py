"""Celery's client, and the process of its own that the ``celery`` handler's sends are made
from. A burst of 1,000 runs due together costs Celery's ``send_task`` about 0.1 s of CPU;
made in the daemon, it waited for the interpreter lock behind the event loop that was
starting those same runs, and the last task left 250 ms after its due time. In a child the
sends take the other core. Callers: ``handlers.celery`` (the parent side) and the child,
which imports this module and Celery only, so it starts light.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Any

INSTALL_HINT = "pip install 'declarative-scheduler[celery]'"
PARENT_CHECK_SECONDS = 1.0


class CeleryMissing(Exception):
    pass


def new_app(broker: str, backend: str | None, pool_limit: int) -> Any:
    """A Celery client for ``broker`` (and ``backend``) that gives up within seconds when
    either is away, rather than retrying for ever."""
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
        broker_pool_limit=pool_limit,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        broker_transport_options={"socket_timeout": 5, "socket_connect_timeout": 4},
        redis_socket_timeout=5,
        redis_socket_connect_timeout=4,
        result_backend_transport_options={"retry_policy": {"timeout": 5.0}},
    )
    return app


def declare(app: Any, producer: Any, queues: set[str | None]) -> None:
    """Declare the queues as ``send_task`` would (the named queue, or Celery's default)."""
    for name in queues:
        producer.maybe_declare(app.amqp.queues[name or app.conf.task_default_queue])


# -- in the sender process --------------------------------------------------------------
_apps: dict[str, Any] = {}


def init(parent: int) -> None:
    """The child's start: it exits when the daemon is gone, and a Ctrl-C at the daemon's
    terminal (sent to the whole process group) is the daemon's to handle: it still has
    sends to make while it stops. Not the kernel's parent-death signal (``children``):
    that follows the thread that started the child, and the warm-up's thread ends."""
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def _app(broker: str) -> Any:
    app = _apps.get(broker)
    if app is None:
        app = _apps[broker] = new_app(broker, None, pool_limit=2)
    return app


def warm(broker: str, queues: list[str | None]) -> tuple[int, str | None]:
    """Import Celery, connect to the broker and declare the queues before runs are due.
    Returns this process's id and why it failed, or None."""
    try:
        app = _app(broker)
        with app.producer_or_acquire() as producer:
            declare(app, producer, set(queues))
    except Exception as exc:
        return os.getpid(), f"{type(exc).__name__}: {exc}"
    return os.getpid(), None


def publish(broker: str, messages: list[dict[str, Any]], deadline: float) -> tuple[int, str | None]:
    """Send a batch over one producer (taking one from the pool per task cost more than the
    send), unless ``deadline`` (a time) has passed: its runs no longer wait for it. Returns
    this process's id and why the batch failed, or None: when a send fails the whole batch
    fails with it (the broker is gone, and each would wait as long to find out; a
    pipelined batch is written or not as one)."""
    if time.time() > deadline:
        return os.getpid(), "Expired: not sent, its runs stopped waiting (earlier sends hung)"
    try:
        app = _app(broker)
        with app.producer_or_acquire() as producer:
            # Each queue is declared once per batch (kombu remembers it per connection)
            # rather than by every send: that check was a third of a send's cost.
            declare(app, producer, {m["queue"] for m in messages})
            # Kombu 5.7+ pipelines a batch to Redis: one round trip, not one per task.
            batching = getattr(producer, "batch", None)
            with batching(4 * len(messages)) if batching else contextlib.nullcontext():
                for message in messages:
                    app.send_task(
                        producer=producer,
                        declare=[],
                        add_to_parent=False,  # no task of ours is its parent
                        **message,
                    )
    except Exception as exc:
        return os.getpid(), f"{type(exc).__name__}: {exc}"
    return os.getpid(), None
