"""What a handler type is: a name, the pydantic model of its ``run:`` arguments, and later
the coroutine that runs it. Built-ins and plugins (entry-point group ``scheduler.handlers``)
are described the same way; ``scheduler.handlers.registry`` collects them for ``spec``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from scheduler.processes import RunFiles

NAME_PATTERN = r"^[a-z][a-z0-9_-]*$"


class HandlerArgs(BaseModel):
    """Base for the arguments of a ``run:`` block. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@dataclass(frozen=True)
class HandlerType:
    """A kind of work a job can run, as registered by the scheduler or a plugin.

    ``args`` is the model of the ``run:`` block without its ``type`` key; ``run`` is the
    coroutine function the runner awaits (``None`` for types that only validate).
    """

    name: str
    args: type[BaseModel]
    run: Callable[[RunContext, Any], Awaitable[Result]] | None = None
    description: str = ""
    # Optional, for types that hand work to another system. ``prepare(args)`` is called off
    # the event loop shortly before a run is due, so the run starts as fast as any later
    # one (a Celery client imports Celery and connects); best effort, it never raises.
    # ``stop_lost(args, task_id)`` stops the work of a run a dead daemon left behind and
    # returns what to add to the run's error (``lost``).
    prepare: Callable[[Any], None] | None = None
    stop_lost: Callable[[Any, str], Awaitable[str]] | None = None


OUTPUT_TAIL_BYTES = 64 * 1024


@dataclass
class RunContext:
    """What a handler knows about the run it performs."""

    job_id: str
    run_id: str
    attempt: int = 1
    scheduled_time: datetime | None = None
    store: Any = None  # scheduler.store.Store, for the scheduler's own housekeeping
    env: dict[str, str] = field(default_factory=dict)  # extra variables (notifications)
    payload: dict[str, Any] | None = None  # the finished run, for notifiers
    kill_grace: float = 5.0  # SIGTERM -> SIGKILL delay when a run is stopped
    timeout: float | None = None  # the job's timeout, which the runner enforces
    run_files: RunFiles | None = None  # where a run's processes are recorded (the daemon)
    # Work handed to another system (a Celery task): its id there and who ran it, kept with
    # the run; ``announce()`` writes them to the running row; ``stop_note`` is added to the
    # error when the runner stops the run (timeout, replace, shutdown).
    task_id: str | None = None
    worker: str | None = None
    stop_note: str | None = None
    announce: Callable[[], None] | None = None


@dataclass
class Result:
    """How one try went. ``output`` is the tail kept with the run. ``sent``: handed to a
    system that reports no outcome back (a Celery task without a result backend)."""

    outcome: Literal["success", "failure", "sent"]
    exit_code: int | None = None
    output: str = ""
    error: str | None = None
    masked: tuple[str, ...] = ()  # values resolved from ${VAR}: shown as *** wherever kept


class Tail:
    """Keeps the last ``limit`` bytes written to it."""

    def __init__(self, limit: int = OUTPUT_TAIL_BYTES) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def write(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > 2 * self.limit:
            self.dropped += len(self.data) - self.limit
            del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        data = bytes(self.data[-self.limit :])
        return data.decode("utf-8", errors="replace")


Handler = Callable[[RunContext, Any], Awaitable[Result]]
