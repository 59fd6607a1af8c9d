"""The scheduler inside an application: the daemon of ``scheduler run`` (reconcile at start
and on every file change, the runner, leadership, run history) on the host's event loop,
with a Python API and the HTTP API as a router the host mounts.

```python
sched = Scheduler(jobs_dir="jobs.d", db="sqlite:///app.db")

@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with sched:            # reconciled and firing when the app starts serving
        yield

app = FastAPI(lifespan=lifespan)
app.include_router(sched.router, prefix="/scheduler")
```

The host keeps its signals (SIGTERM stops the app, whose lifespan stops the scheduler).
Callers: applications (``from scheduler import Scheduler`` loads it on first use).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from scheduler import instances
from scheduler.daemon import Daemon
from scheduler.errors import JobNotFound, SchedulerError
from scheduler.history import list_runs
from scheduler.leadership import DEFAULT_LEASE
from scheduler.lookup import job_detail
from scheduler.service import list_jobs, unwrap
from scheduler.settings import Settings
from scheduler.tokens import Access

if TYPE_CHECKING:
    from fastapi import APIRouter

log = logging.getLogger("scheduler.embed")
# What the HTTP API answers for each refusal (an app passes them on as the same status).
STATUS = {**instances.STATUS, "JobNotFound": 404, "InvalidJobFiles": 422, "EmptyJobsDir": 409}


class NotStarted(SchedulerError):
    """The scheduler was used before ``start()`` (or ``async with``) or after ``stop()``."""


class Refused(SchedulerError):
    """The scheduler refused a request: ``kind`` names why (``InvalidInstance``,
    ``TemplateNotFound``, ``JobExists``, ``TooManyInstances``, ``DeclaredInFile``, ...) and
    ``status`` is the HTTP status its API answers with (422, 404, 409, ...), for an app
    that passes the refusal on."""

    def __init__(self, message: str, kind: str, status: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class Scheduler:
    """A scheduler daemon inside an application. Use it as ``async with Scheduler(...)``
    (or ``await start()`` / ``await stop()``) on the application's event loop.

    - ``jobs_dir``: the job files (and templates) it reconciles, as ``--jobs-dir``.
    - ``db``: the store's SQLAlchemy URL, as ``--db`` (default ``sqlite:///scheduler.db``).
      Several app processes on one store need PostgreSQL: one leads, the others stand by.
    - ``token`` / ``tokens_file``: what the mounted router accepts, as
      ``SCHEDULER_API_TOKEN`` (one admin token) and ``SCHEDULER_API_TOKENS`` (a file of
      ``TOKEN ROLE [NAME]`` lines). Without either, the router answers only local,
      same-origin requests, as the daemon's API does, unless ``local_only=False``: say so
      when the app's own authentication guards the router (``include_router(...,
      dependencies=[Depends(your_auth)])``).

    Every method returns what the HTTP API returns (plain dicts) and raises
    ``SchedulerError`` (``JobNotFound`` for an unknown id) with a complete sentence.
    """

    def __init__(
        self,
        jobs_dir: str | Path = "jobs.d",
        db: str | None = None,
        *,
        token: str | None = None,
        tokens_file: str | Path | None = None,
        local_only: bool | None = None,
        allow_empty: bool = False,
        shutdown_grace: float = 10.0,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        self.settings = Settings(jobs_dir=Path(jobs_dir), db_url=db)
        self.access = Access.load(token=token, tokens_file=tokens_file)
        self.local_only = self.access is None if local_only is None else local_only
        self.daemon = Daemon(
            self.settings,
            allow_empty=allow_empty,
            shutdown_grace=shutdown_grace,
            access=self.access,
            lease=lease,
            signals=False,
        )
        self._task: asyncio.Task[None] | None = None
        self._router: APIRouter | None = None

    def __repr__(self) -> str:
        return f"Scheduler(jobs_dir={str(self.settings.jobs_dir)!r}, db=...)"

    @property
    def router(self) -> APIRouter:
        """The HTTP API (``GET /jobs``, ``/runs``, the status page at ``/``, ...) for
        ``app.include_router(sched.router, prefix="/scheduler")``."""
        if self._router is None:
            from scheduler.api import bound_router  # FastAPI: only for apps that mount it

            self._router = bound_router(self.daemon, self.access, local_only=self.local_only)
        return self._router

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, wait to lead, reconcile the files and start firing; returns once
        this process leads (or stands by behind another one). Start-up errors (a store
        another daemon holds, a database that does not answer) are raised here."""
        if self._task is not None:
            raise SchedulerError("this Scheduler is already started: start it once")
        self._task = asyncio.create_task(self.daemon.run(), name="scheduler")
        ready = asyncio.create_task(self.daemon.ready.wait())
        try:
            await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if self._task.done():
            task, self._task = self._task, None
            task.result()  # raises why it stopped
            raise SchedulerError("the scheduler stopped while starting: see the log")

    async def stop(self) -> None:
        """Stop firing, give running jobs ``shutdown_grace`` seconds, close the store."""
        task, self._task = self._task, None
        if task is None:
            return
        self.daemon.stop_event.set()
        await task

    async def __aenter__(self) -> Scheduler:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- reading ----------------------------------------------------------------------

    def _running(self) -> Daemon:
        if self._task is None:
            raise NotStarted("start the scheduler first: `async with Scheduler(...)` or start()")
        if self._task.done():
            raise NotStarted("the scheduler has stopped: see the log for why")
        return self.daemon

    async def jobs(self) -> list[dict[str, Any]]:
        """Every stored job, as ``GET /jobs`` lists them."""
        return await asyncio.to_thread(list_jobs, self._running().store)

    async def get(self, job_id: str, *, fires: int = 5) -> dict[str, Any]:
        """One job with its spec and next ``fires`` fire times, as ``GET /jobs/{id}``."""
        return await self._read(job_detail, job_id, fires)

    async def _read(self, read: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        """A read of the store, its refusal (an unknown name) raised as ``Refused``."""
        store = self._running().store
        try:
            return await asyncio.to_thread(read, store, *args)
        except JobNotFound:
            raise
        except SchedulerError as exc:
            kind = type(exc).__name__
            if kind not in STATUS:
                raise
            raise Refused(str(exc), kind, STATUS[kind]) from None

    async def history(self, job_id: str | None = None, *, limit: int = 20) -> list[dict[str, Any]]:
        """Runs (one entry per try), newest first; one job's, or every job's."""
        store = self._running().store
        if job_id is not None:
            await self.get(job_id, fires=0)  # an unknown id is an error, not "no runs"
        return await asyncio.to_thread(list_runs, store, job_id, limit)

    # -- acting -----------------------------------------------------------------------

    async def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        reply = await self._running().handle(request)
        if reply.get("ok"):
            return unwrap(reply)
        kind = str(reply.get("kind", ""))
        if kind == "JobNotFound" and "job_id" in request:
            raise JobNotFound(str(request["job_id"]))
        if kind in STATUS:
            raise Refused(str(reply.get("error")), kind, STATUS[kind])
        return unwrap(reply)  # raises it as a SchedulerError (InvalidJobFiles for problems)

    async def pause(self, job_id: str) -> dict[str, Any]:
        """Pause until resumed (kept across reconciles and restarts)."""
        return await self._ask({"op": "pause", "job_id": job_id})

    async def resume(self, job_id: str) -> dict[str, Any]:
        return await self._ask({"op": "resume", "job_id": job_id})

    async def trigger(self, job_id: str) -> dict[str, Any]:
        """Run the job now (its concurrency policy applies), as ``POST /jobs/{id}/trigger``."""
        return await self._ask({"op": "trigger", "job_id": job_id})

    async def reconcile(self, *, dry_run: bool = False) -> dict[str, Any]:
        """Reconcile now (the files are watched anyway); ``dry_run`` only plans."""
        return await self._ask({"op": "reconcile", "dry_run": dry_run})

    # -- instances of templates -------------------------------------------------------

    async def templates(self) -> list[dict[str, Any]]:
        """Every template the files declare, with its parameters' JSON Schema and limits."""
        return await asyncio.to_thread(instances.templates, self._running().store)

    async def template(self, name: str) -> dict[str, Any]:
        return await self._read(instances.template, name)

    async def create(
        self,
        template: str,
        params: Mapping[str, Any] | None = None,
        schedule: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A new instance of ``template``, as ``POST /templates/{name}/jobs``: ``schedule``
        is ``{"cron": ...}``, ``{"interval": "6h"}``, ``{"at": ISO}`` or ``{"in": "5m"}``
        (None: the template's default); ``id`` is generated when left out. Returns the job
        as ``get(id)`` shows it; raises ``Refused`` (bad params or schedule, a limit, an id
        taken)."""
        request: dict[str, Any] = {"op": "create", "template": template}
        request["params"] = dict(params or {})
        request["schedule"] = dict(schedule) if schedule is not None else None
        request["job_id"] = id
        request["description"] = description
        return await self._ask(request)

    async def modify(
        self,
        job_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        schedule: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Change an instance, as ``PATCH /jobs/{id}``: ``params`` are merged into its own
        (None drops one); its next run is kept unless the schedule changes."""
        return await self._ask(
            {
                "op": "modify",
                "job_id": job_id,
                "params": dict(params) if params is not None else None,
                "schedule": dict(schedule) if schedule is not None else None,
                "description": description,
            }
        )

    async def remove(self, job_id: str) -> None:
        """Remove an instance (a file's job is refused: edit its file)."""
        await self._ask({"op": "remove", "job_id": job_id})

    async def run_once(
        self,
        job_id: str,
        *,
        in_: str | None = None,
        at: datetime | str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A one-off run of any job, now or ``in_`` (``"5m"``) or ``at``, recorded in its
        history like any run; ``params`` (an instance's) apply to this run only."""
        when = at.isoformat() if isinstance(at, datetime) else at
        request: dict[str, Any] = {"op": "run", "job_id": job_id, "in": in_, "at": when}
        if params is not None:
            request["params"] = dict(params)
        return await self._ask(request)
