"""``scheduler run``: the daemon. Owns the store (the writer lock) for its lifetime,
reconciles at start-up, on every change under the jobs dir and on SIGHUP, runs due jobs,
and answers the command line on a local socket. SIGTERM/SIGINT stop it cleanly.

While a file is invalid it keeps running its last good state and logs the problems.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scheduler import control
from scheduler.errors import SchedulerError
from scheduler.reconciler import ReconcileResult, reconcile
from scheduler.render import plan_details
from scheduler.runner import Runner, RunnerExecutor
from scheduler.service import error_reply
from scheduler.settings import Settings
from scheduler.store import Store
from scheduler.watcher import watch

log = logging.getLogger("scheduler.daemon")


class Daemon:
    def __init__(self, settings: Settings, *, allow_empty: bool = False) -> None:
        self.settings = settings
        self.allow_empty = allow_empty
        self.paths = control.runtime_paths(settings.db)
        self.lock = control.WriterLock(self.paths.lock)
        self.stop_event = asyncio.Event()
        self.reconcile_lock = asyncio.Lock()
        self.store: Store | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.runner = Runner()
        self.last_reconcile: dict[str, Any] = {}

    async def run(self) -> None:
        if not self.lock.acquire():
            raise control.StoreBusy(
                f"a scheduler daemon (pid {self.lock.holder()}) already runs for this store: "
                "stop it first, or use `scheduler reconcile` to talk to it"
            )
        try:
            await self._serve()
        finally:
            self.lock.release()

    async def _serve(self) -> None:
        self.store = Store(self.settings.db)
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": self.store.jobstore},
            executors={"default": RunnerExecutor(self.runner)},
            timezone=UTC,
        )
        await self.reconcile("start-up")
        self.scheduler.start()
        server = await control.serve(self.paths.socket, self.handle)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        watcher = asyncio.create_task(
            watch(self.settings.jobs_dir, self._on_files_changed, self.stop_event)
        )
        log.info(
            "scheduler running: jobs dir %s, store %s",
            self.settings.jobs_dir,
            self.store.engine.url.render_as_string(hide_password=True),
        )
        try:
            await self.stop_event.wait()
        finally:
            log.info("stopping")
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            server.close()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            self.scheduler.shutdown(wait=False)
            self.paths.socket.unlink(missing_ok=True)
            self.store.close()
            log.info("stopped")

    def _on_sighup(self) -> None:
        asyncio.get_running_loop().create_task(self.reconcile("SIGHUP"))

    async def _on_files_changed(self, paths: set[str]) -> None:
        await self.reconcile(f"{len(paths)} change(s) under {self.settings.jobs_dir}")

    def _apply_guard(self) -> AbstractContextManager[Any]:
        # APScheduler rewrites a job's row after running it; holding its jobstore lock
        # while we apply keeps it from writing back a stale copy over our change.
        if self.scheduler is not None and self.scheduler.running:
            lock: threading.RLock = self.scheduler._jobstores_lock
            return lock
        return nullcontext()

    def _reconcile_sync(self, allow_empty: bool, dry_run: bool) -> ReconcileResult:
        assert self.store is not None
        with self._apply_guard():
            return reconcile(
                self.store, self.settings.jobs_dir, allow_empty=allow_empty, dry_run=dry_run
            )

    async def reconcile(
        self, why: str, *, allow_empty: bool | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        """Reconcile now; log and return the outcome. Never raises for bad files."""
        allow = self.allow_empty if allow_empty is None else allow_empty
        async with self.reconcile_lock:
            try:
                result = await asyncio.to_thread(self._reconcile_sync, allow, dry_run)
            except SchedulerError as exc:
                reply = error_reply(exc)
                log.error("reconcile (%s) refused, keeping the last good state:\n%s", why, exc)
                self.last_reconcile = {"ok": False, "why": why, "error": str(exc)}
                return reply
            if result.applied and self.scheduler is not None and self.scheduler.running:
                self.scheduler.wakeup()
            details = plan_details(result.plan, applied=result.applied)
            self._log_result(why, result)
            self.last_reconcile = {"ok": True, "why": why, **details}
            return {"ok": True, "result": details}

    def _log_result(self, why: str, result: ReconcileResult) -> None:
        p = result.plan
        log.info(
            "reconcile (%s): %d added, %d updated, %d removed, %d unchanged; "
            "%d file(s) parsed in %.0f ms",
            why,
            len(p.add),
            len(p.update),
            len(p.remove),
            len(p.unchanged),
            result.parsed_files,
            result.seconds * 1000,
        )
        for job in p.add:
            log.info("  + %s (%s)", job.id, job.source)
        for update in p.update:
            log.info("  ~ %s: %s", update.job.id, ", ".join(update.fields))
        for stored in p.remove:
            log.info("  - %s", stored.id)

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "reconcile":
            return await self.reconcile(
                "command line",
                allow_empty=bool(request.get("allow_empty")),
                dry_run=bool(request.get("dry_run")),
            )
        if op == "ping":
            return {"ok": True, "result": {"pid": self.lock.holder()}}
        return {"ok": False, "error": f"unknown request {op!r}", "exit_code": 2}


def run_daemon(settings: Settings, *, allow_empty: bool = False) -> None:
    asyncio.run(Daemon(settings, allow_empty=allow_empty).run())
