"""``scheduler run``: the daemon. Waits to lead the store (``leadership``: the host lock on
SQLite, a lease on PostgreSQL or MySQL/MariaDB), then reconciles at start-up, on every
change under the jobs dir and on SIGHUP, runs due jobs, and answers the command line on a
local socket. A standby serves the API and hands operator requests to the leader
(``handoff``). SIGTERM/SIGINT stop it cleanly.

While a file is invalid it keeps running its last good state and logs the problems.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
import threading
import time
from contextlib import AbstractContextManager, nullcontext, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apscheduler.jobstores.memory import MemoryJobStore
from sqlalchemy.exc import SQLAlchemyError

from scheduler import control, handoff, instance_ops, instance_requests
from scheduler.apply import set_operator_pause
from scheduler.claims import FencedClaims
from scheduler.declared import DeclaredJob, Source
from scheduler.errors import JobNotFound, SchedulerError
from scheduler.firing import STORE_RETRY_SECONDS, ResilientScheduler
from scheduler.freshness import Freshness
from scheduler.heap import release_memory
from scheduler.history import HistoryWriter, RunRecord, mark_lost_runs
from scheduler.leadership import (
    DEFAULT_LEASE,
    Fence,
    HostLeadership,
    LeaseLeadership,
    replicable,
)
from scheduler.leftovers import end_leftovers, run_files_dir
from scheduler.lost_work import end_lost_work
from scheduler.metrics import Metrics
from scheduler.overdue import OverdueWatch
from scheduler.parsepool import ChildLimits
from scheduler.processes import RunFiles, become_subreaper
from scheduler.reconciler import ReconcileResult, reconcile
from scheduler.render import log_reconcile, plan_details
from scheduler.rows import RUNNER_REF
from scheduler.runner import Runner, RunnerExecutor
from scheduler.service import error_reply
from scheduler.settings import Settings
from scheduler.spec import default_models, fingerprint
from scheduler.startup import reconcile_in_child, worth_a_child
from scheduler.store import Store
from scheduler.storefile import StoreFile
from scheduler.triggers import build_trigger
from scheduler.warmup import Warmup
from scheduler.watcher import watch

if TYPE_CHECKING:
    from scheduler.api import ApiServer
    from scheduler.tokens import Access

log = logging.getLogger("scheduler.daemon")

BUILTIN_STORE = "builtin"
BUILTIN_CLEANUP_ID = "scheduler.cleanup"


STORE_WATCH_SECONDS = 0.5  # how often the leader looks for requests and outside changes
HANDOFF_TIMEOUT = 30.0  # how long a standby waits for the leader to answer a request
PARSE_WORKERS = min(4, os.cpu_count() or 1)  # for a start-up or a checkout of many files


class HttpUnavailable(SchedulerError):
    """The --http address could not be bound."""


def builtin_cleanup() -> DeclaredJob:
    spec = default_models().job.model_validate(
        {
            "description": "Prune run history older than 7 days (built in: no cleanup declared)",
            "schedule": {"cron": "0 2 * * *", "timezone": "UTC"},
            "run": {"type": "cleanup", "retention": "7d"},
        }
    )
    canonical = spec.canonical()
    return DeclaredJob(
        BUILTIN_CLEANUP_ID, canonical, fingerprint(canonical), Source("(built in)", 0), spec
    )


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        allow_empty: bool = False,
        shutdown_grace: float = 10.0,
        http: tuple[str, int] | None = None,
        access: Access | None = None,
        lease: float = DEFAULT_LEASE,
        signals: bool = True,
    ) -> None:
        """``signals=False`` leaves SIGTERM/SIGINT/SIGHUP to the host (``embed``): the
        daemon then stops when ``stop_event`` is set."""
        self.settings = settings
        self.http = http
        self.access = access
        self.http_task: asyncio.Task[None] | None = None
        self.metrics = Metrics(self._counts, self.role)
        self.allow_empty = allow_empty
        self.shutdown_grace = shutdown_grace
        self.paths = control.runtime_paths(settings.db)
        self.lock = control.WriterLock(self.paths.lock)
        self.lease = lease
        self.leadership: LeaseLeadership  # built by run()
        self.fence: Fence | None = None
        self.freshness: asyncio.Task[None] | None = None
        self.leftovers: list[RunRecord] = []  # runs of this host's crashed daemon, ended
        self.seen_changes = 0
        self.signals = signals
        self.stop_event = asyncio.Event()
        self.ready = asyncio.Event()  # leading with jobs reconciled, or standing by
        self.reconcile_lock = asyncio.Lock()
        self.store: Store  # opened by run(), once the writer lock is held
        self.scheduler: ResilientScheduler | None = None
        self.runner: Runner | None = None
        self.store_file: StoreFile | None = None
        self.writer: HistoryWriter | None = None
        self.last_reconcile: dict[str, Any] = {}
        self.overdue: OverdueWatch | None = None

    async def run(self) -> None:
        address = f"http://{self.http[0]}:{self.http[1]}" if self.http else None
        if replicable(self.settings.db):
            self.leadership = LeaseLeadership(self.settings.db, lease=self.lease, address=address)
        else:  # one host: the flock decides, and a second daemon is refused before anything
            self.leadership = HostLeadership(self.settings.db, self.lock, address=address)
            self.leadership.hold()
        try:
            self.store = Store(self.settings.db)
            self.store.probe_write()
            if isinstance(self.leadership, HostLeadership):
                await self.leadership.acquire(self.stop_event)
            await self._serve()
        finally:
            await self.leadership.release()

    async def _serve(self) -> None:
        if not become_subreaper():
            log.info("cannot adopt orphaned job processes here (no PR_SET_CHILD_SUBREAPER)")
        run_files = RunFiles(run_files_dir(self.settings.db, self.paths.lock))
        # Before anything fires: a forbid job must not start beside its previous run. They
        # were this host's; the leader notifies them (with the runs of earlier leaders).
        self.leftovers = await end_leftovers(self.store, run_files, self.shutdown_grace)
        self.store_file = StoreFile(self.settings.db)
        writer = self.writer = HistoryWriter(self.store, check=self.store_file.problem)
        writer.start()
        self.runner = Runner(self.store, writer, run_files=run_files)
        if not isinstance(self.leadership, HostLeadership):
            self.runner.claim = FencedClaims(self.store, self.leadership).claim
        self.runner.listeners.append(self.metrics.observe_run)
        self.scheduler = ResilientScheduler(
            jobstores={"default": self.store.jobstore, BUILTIN_STORE: MemoryJobStore()},
            executors={"default": RunnerExecutor(self.runner)},
            timezone=UTC,
            jobstore_retry_interval=STORE_RETRY_SECONDS,
        )
        self.scheduler.may_fire = self.leadership.leading
        loop = asyncio.get_running_loop()
        server: asyncio.AbstractServer | None = None
        http: ApiServer | None = None
        watcher: asyncio.Task[None] | None = None
        file_watch = asyncio.create_task(self.store_file.watch(self.stop_event))
        try:
            # The API first: a port that is taken stops the daemon before it does anything.
            http = await self._start_http()
            self._advertise(http)
            # Watch before the start-up reconcile reads the files, or a file saved while it
            # runs is seen by neither until the next change. awatch sets its inotify watches
            # before its first await, so one pass of the event loop is enough.
            watcher = asyncio.create_task(
                watch(self.settings.jobs_dir, self._on_files_changed, self.stop_event)
            )
            await asyncio.sleep(0)
            # Signals before the start-up reconcile: a SIGTERM during it still stops cleanly.
            if self.signals:
                loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, self.stop_event.set)
            server = await control.serve(self.paths.socket, self.handle)
            await self._lead_until_stopped()
        finally:
            log.info("stopping")
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT) if self.signals else ():
                loop.remove_signal_handler(sig)
            if server is not None:
                server.close()
                self.paths.socket.unlink(missing_ok=True)
            if http is not None:
                http.should_exit = True
                await asyncio.gather(self.http_task or asyncio.sleep(0), return_exceptions=True)
            for task in (watcher, self.freshness, file_watch):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            if self.scheduler.running:
                await self.scheduler.finish_pass()
                self.scheduler.shutdown(wait=False)
            self.fence = None
            if not isinstance(self.leadership, HostLeadership):
                await self.leadership.release()  # a standby leads now, not after our runs
            await self.runner.shutdown(self.shutdown_grace)
            self.store.close()
            log.info("stopped")

    def _advertise(self, http: ApiServer | None) -> None:
        """Where a command line elsewhere reaches this replica's API (in the lease row)."""
        if http is not None and self.http is not None:
            host = self.http[0]
            host = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
            self.leadership.address = f"http://{host}:{http.bound_port()}"

    async def _lead_until_stopped(self) -> None:
        """Stand by until this replica leads, lead until deposed, and again, until stopped."""
        while not self.stop_event.is_set():
            fence = await self._wait_to_lead()
            if fence is None:
                return
            await self._lead(fence)

    async def _wait_to_lead(self) -> Fence | None:
        waiting = asyncio.create_task(self.leadership.acquire(self.stop_event))
        await asyncio.sleep(0.05)  # leads at once, or the first poll shows who does
        if not waiting.done():
            status = self.leadership.status()
            log.info(
                "standing by: %s leads (epoch %s)", status["leader"] or "nobody", status["epoch"]
            )
            self.ready.set()
        return await waiting

    async def _lead(self, fence: Fence) -> None:
        """Lead until stopped or deposed: reconcile, fire, and watch the store."""
        assert self.scheduler is not None and self.runner is not None
        self.fence = fence
        try:
            lost = await asyncio.to_thread(mark_lost_runs, self.store, before_epoch=fence.epoch)
            lost, self.leftovers = self.leftovers + lost, []
        except SQLAlchemyError as exc:
            if isinstance(self.leadership, HostLeadership):
                raise  # a store this daemon cannot write: say so and stop (as before replicas)
            log.warning("runs of earlier leaders not marked interrupted yet: %s", exc)
            lost = []
        if lost:
            log.warning(
                "%d run(s) were left running by a crash or an earlier leader: marked interrupted",
                len(lost),
            )
        first = not self.scheduler.running
        with suppress(Exception):  # housekeeping only: never a reason not to lead
            await asyncio.to_thread(handoff.prune, self.store)
        self.seen_changes = await asyncio.to_thread(handoff.changes, self.store)
        in_child = False
        if first:
            with suppress(Exception):  # the reconcile itself says what is wrong
                in_child = await asyncio.to_thread(
                    worth_a_child, self.store.engine, self.settings.jobs_dir
                )
        await self.reconcile("start-up" if first else "took the lead", in_child=in_child)
        self._reload_specs()
        end_lost_work(self.runner, lost)  # their tasks elsewhere stopped, then notified once
        if first:
            release_memory()
            self.scheduler.start()
        else:
            self.scheduler.resume()
        self._builtin_cleanup()
        if self.freshness is None:  # overdue jobs are the leader's to announce
            self.freshness = asyncio.create_task(self._watch_freshness())
        log.info(
            "scheduler running: jobs dir %s, store %s (leader, epoch %d)",
            self.settings.jobs_dir,
            self.store.engine.url.render_as_string(hide_password=True),
            fence.epoch,
        )
        self.ready.set()
        watch = asyncio.create_task(self._watch_store())
        warm = asyncio.create_task(Warmup(self.store, self.runner).run())
        stop = asyncio.create_task(self.stop_event.wait())
        deposed = asyncio.create_task(self.leadership.lost.wait())
        try:
            await asyncio.wait({stop, deposed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch, warm, stop, deposed):
                task.cancel()
            await asyncio.gather(watch, warm, stop, deposed, return_exceptions=True)
        if not self.stop_event.is_set():
            self.scheduler.pause()  # the claim refuses anything already on its way
            self.fence = None
            log.error("stopped firing: this replica is now a standby")

    def _reload_specs(self) -> None:
        assert self.runner is not None
        self.runner.load_specs({j.id: j.spec for j in self.store.stored_jobs().values()})

    async def _watch_store(self) -> None:
        """The leader's eye on the store: requests from standbys and command lines, and
        changes written behind its back (a pause from another host)."""
        while True:
            await asyncio.sleep(STORE_WATCH_SECONDS)
            try:
                count, requests = await asyncio.to_thread(handoff.look, self.store)
                for request in requests:
                    reply = await self.handle(request)
                    await asyncio.to_thread(handoff.answer, self.store, request["id"], reply)
            except Exception as exc:  # the store is away: the lease decides what happens
                log.warning("store not watched this pass: %s", exc)
                continue
            if count != self.seen_changes:
                self.seen_changes = count
                await asyncio.to_thread(self._reload_specs)
                if self.scheduler is not None and self.scheduler.running:
                    self._builtin_cleanup()
                    self.scheduler.wakeup()
                log.info("the store changed from outside: reloaded")

    async def _start_http(self) -> ApiServer | None:
        if self.http is None:
            return None
        from scheduler.api import ApiServer, create_app  # FastAPI and uvicorn: only if asked

        host, port = self.http
        server = ApiServer(create_app(self, access=self.access), host, port)
        # Bind here, not in uvicorn: it answers a taken port with sys.exit() from inside the
        # event loop, which would skip this daemon's clean shutdown and its error message.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are
        # TCP, and without it every keep-alive request waited ~40 ms for a delayed ACK.
        listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((host, port))
        except OSError as exc:
            listener.close()
            raise HttpUnavailable(
                f"cannot serve the HTTP API on {host}:{port}: {exc.strerror or exc}: "
                "pick another --http address"
            ) from None
        listener.listen(128)
        self.http_task = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            if self.http_task.done():
                await self.http_task
                raise HttpUnavailable(f"the HTTP API on {host}:{port} did not start")
            await asyncio.sleep(0.01)
        log.info("HTTP API on http://%s:%d", host, server.bound_port())
        return server

    def role(self) -> dict[str, Any]:
        """Leader or standby, its epoch, the lease's age and who leads: /healthz, /metrics."""
        leadership = getattr(self, "leadership", None)
        if leadership is None or isinstance(leadership, HostLeadership):
            return {}  # one daemon per store: nothing to tell
        status: dict[str, Any] = leadership.status()
        return status

    async def _watch_freshness(self) -> None:
        self.overdue = OverdueWatch(self.store, self._on_overdue)
        self.metrics.watch_freshness(self.overdue.samples)
        await self.overdue.run(self.stop_event)

    def _on_overdue(self, job_id: str, state: Freshness, now: float) -> None:
        if self.runner is None or self.fence is None:  # only the leader notifies
            return
        since = datetime.fromtimestamp(state.since, UTC).isoformat(timespec="seconds")
        last = f"last success {since}" if state.last_success else f"none since {since}"
        self.runner.notify_overdue(
            job_id, f"overdue: no success within {state.window:g}s ({last})", now
        )

    def unhealthy(self) -> str | None:
        if self.fence is None and self.leadership.error:
            return f"standby, cannot reach the lease: {self.leadership.error}"
        if self.fence is not None and not self.leadership.leading():
            return f"not leading any more: {self.leadership.error or 'lease lost'}"
        if self.fence is not None and (self.scheduler is None or not self.scheduler.running):
            return "the scheduler is not running"
        if self.stop_event.is_set():
            return "the scheduler is stopping"
        if self.store_file is not None and (gone := self.store_file.problem()):
            return gone
        if self.writer is not None and (unwritten := self.writer.unhealthy()):
            return unwritten
        problem: str | None = getattr(self.scheduler, "problem", None)  # set when it starts
        return problem

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

    def _reconcile_sync(
        self, allow_empty: bool, dry_run: bool, allow_orphan_delete: bool = False
    ) -> ReconcileResult:
        return reconcile(
            self.store,
            self.settings.jobs_dir,
            allow_empty=allow_empty,
            dry_run=dry_run,
            allow_orphan_delete=allow_orphan_delete,
            workers=PARSE_WORKERS,
            start="forkserver",
            limits=ChildLimits.from_env(),  # a hostile file can stop its child, not us
            guard=self._apply_guard,
        )

    async def reconcile(
        self,
        why: str,
        *,
        allow_empty: bool | None = None,
        dry_run: bool = False,
        allow_orphan_delete: bool = False,
        in_child: bool = False,
    ) -> dict[str, Any]:
        """Reconcile now (or only plan); log and return the outcome. Never raises.
        ``in_child``: a first start's large reconcile (``startup``); the specs it wrote are
        then read from the store afterwards."""
        allow = self.allow_empty if allow_empty is None else allow_empty
        if not dry_run and self.fence is None:  # file changes, SIGHUP: the leader's job
            log.info("reconcile (%s) left to the leader: this replica stands by", why)
            return {"ok": False, "error": "this replica stands by: the leader reconciles"}
        async with self.reconcile_lock:
            try:
                if in_child:
                    log.info("start-up reconcile of large job files: in a child process")
                    outcome = await asyncio.to_thread(
                        reconcile_in_child,
                        self.store.url,
                        self.settings.jobs_dir,
                        allow,
                        PARSE_WORKERS,
                        ChildLimits.from_env(),
                    )
                    details = outcome.details
                    log_reconcile(log, why, details, outcome.parsed_files, outcome.seconds)
                    self._reconciled({"ok": True, "why": why, **details})
                    return {"ok": True, "result": details}
                sync = functools.partial(self._reconcile_sync, allow, dry_run, allow_orphan_delete)
                result = await asyncio.to_thread(sync)
            except Exception as exc:  # bad files, or a bug: either way keep running
                if isinstance(exc, SchedulerError):
                    log.error("reconcile (%s) refused, keeping the last good state:\n%s", why, exc)
                else:
                    log.exception("reconcile (%s) failed, keeping the last good state", why)
                if not dry_run:
                    self._reconciled({"ok": False, "why": why, "error": str(exc) or repr(exc)})
                return error_reply(exc)
            details = plan_details(result.plan, result.applied, result.instance_lines)
            if dry_run:
                return {"ok": True, "result": details}
            if self.runner is not None:
                p, moved = result.plan, result.instances
                self.runner.set_specs(
                    [(j.id, j.canonical) for j in p.add]
                    + [(u.job.id, u.job.canonical) for u in p.update]
                    + [(u.job.id, u.job.canonical) for u in (moved.update if moved else [])],
                    [s.id for s in p.remove] + (moved.orphan_ids if moved else []),
                )
            if result.applied and self.scheduler is not None and self.scheduler.running:
                self._builtin_cleanup()
                self.scheduler.wakeup()
            log_reconcile(log, why, details, result.parsed_files, result.seconds)
            self._reconciled({"ok": True, "why": why, **details})
            return {"ok": True, "result": details}

    def _reconciled(self, outcome: dict[str, Any]) -> None:
        """Keep what the status page shows: counts and errors, not 10,000 job entries."""
        now = time.time()
        self.last_reconcile = {
            key: len(value) if isinstance(value, list) else value for key, value in outcome.items()
        }
        self.last_reconcile["at"] = datetime.fromtimestamp(now, UTC).isoformat()
        self.metrics.observe_reconcile(outcome["ok"], now)

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        handed = op in ("pause", "resume", "trigger", *instance_ops.OPS) or (
            op == "reconcile" and not request.get("dry_run")
        )
        if handed and self.fence is None:  # a standby: the leader acts, through the store
            reply = await handoff.ask(self.store, request, HANDOFF_TIMEOUT)
            if reply is None:
                return {
                    "ok": False,
                    "error": f"no leader took the request within {HANDOFF_TIMEOUT:g}s: "
                    "check that a scheduler daemon leads this store (`/healthz`)",
                    "exit_code": 1,
                }
            return reply
        if op == "reconcile":
            return await self.reconcile(
                "command line",
                allow_empty=bool(request.get("allow_empty")),
                dry_run=bool(request.get("dry_run")),
                allow_orphan_delete=bool(request.get("allow_orphan_delete")),
            )
        if op in instance_ops.OPS:
            return await self._instance_op(request)
        if op == "ping":
            jobs_dir = str(self.settings.jobs_dir.resolve())
            return {"ok": True, "result": {"pid": os.getpid(), "jobs_dir": jobs_dir}}
        if op in ("pause", "resume"):
            return await self._pause(str(request.get("job_id")), op == "pause")
        if op == "trigger":
            return self._trigger(str(request.get("job_id")))
        return {"ok": False, "error": f"unknown request {op!r}", "exit_code": 2}

    def _builtin_cleanup(self) -> None:
        """Housekeeping when the files declare none: a daily 02:00 UTC history cleanup,
        kept in memory (not in the store, so reconciles never see or remove it)."""
        assert self.scheduler is not None and self.runner is not None
        declared = any(info["handler"] == "cleanup" for _, info in self.store.summaries())
        present = self.scheduler.get_job(BUILTIN_CLEANUP_ID, BUILTIN_STORE) is not None
        if declared and present:
            self.scheduler.remove_job(BUILTIN_CLEANUP_ID, BUILTIN_STORE)
            self.runner.set_specs([], [BUILTIN_CLEANUP_ID])
        elif not declared and not present:
            job = builtin_cleanup()
            self.runner.set_specs([(BUILTIN_CLEANUP_ID, job.canonical)], [])
            self.scheduler.add_job(
                RUNNER_REF,
                build_trigger(job.spec.schedule),
                args=(BUILTIN_CLEANUP_ID,),
                id=BUILTIN_CLEANUP_ID,
                jobstore=BUILTIN_STORE,
                misfire_grace_time=3600,
            )
            log.info("no cleanup job declared: running the built-in one daily at 02:00 UTC")

    async def _pause(self, job_id: str, paused: bool) -> dict[str, Any]:
        def apply() -> bool:
            with self._apply_guard():
                return set_operator_pause(self.store, job_id, paused, datetime.now(UTC))

        try:
            changed = await asyncio.to_thread(apply)
        except SchedulerError as exc:
            return error_reply(exc)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.wakeup()
        log.info("job %s %s by an operator", job_id, "paused" if paused else "resumed")
        return {"ok": True, "result": {"id": job_id, "paused": paused, "changed": changed}}

    async def _instance_op(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.runner is not None and self.scheduler is not None
        scheduler = self.scheduler

        def wakeup(when: datetime | None) -> None:
            if scheduler.running and when is not None:
                scheduler.wake_by(when)

        return await instance_requests.serve(
            self.store, self.runner, wakeup, self._apply_guard, request
        )

    def _trigger(self, job_id: str) -> dict[str, Any]:
        assert self.runner is not None
        if self.runner.spec(job_id) is None:
            return error_reply(JobNotFound(job_id))
        refused = self.runner.dispatch(job_id, datetime.now(UTC))
        log.info("job %s triggered by an operator%s", job_id, f": {refused}" if refused else "")
        return {"ok": True, "result": {"id": job_id, "started": refused is None, "reason": refused}}

    def _counts(self) -> tuple[int, int]:
        """(jobs stored, jobs paused) for the metrics, read when Prometheus scrapes."""
        summaries = self.store.summaries()
        paused = sum(1 for by_operator, info in summaries if by_operator or info["paused"])
        return len(summaries), paused
