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
Caller: applications; nothing in the package imports this module.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

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


class NotStarted(SchedulerError):
    """The scheduler was used before ``start()`` (or ``async with``) or after ``stop()``."""


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
        return await asyncio.to_thread(job_detail, self._running().store, job_id, fires)

    async def history(self, job_id: str | None = None, *, limit: int = 20) -> list[dict[str, Any]]:
        """Runs (one entry per try), newest first; one job's, or every job's."""
        store = self._running().store
        if job_id is not None:
            await self.get(job_id, fires=0)  # an unknown id is an error, not "no runs"
        return await asyncio.to_thread(list_runs, store, job_id, limit)

    # -- acting -----------------------------------------------------------------------

    async def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        reply = await self._running().handle(request)
        if reply.get("kind") == "JobNotFound" and "job_id" in request:
            raise JobNotFound(str(request["job_id"]))
        return unwrap(reply)

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
