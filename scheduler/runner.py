"""Runs due jobs with their declared policies: misfire grace, concurrency (allow / forbid /
replace), timeout, retries with exponential back-off, notifications, and one history row
per try.

APScheduler's pickled jobs point at ``run_job`` (so no stored row depends on user code),
but the daemon never calls it: ``RunnerExecutor`` hands due jobs to ``Runner.submit``.
Callers: the daemon (scheduled runs, ``trigger``) and ``scheduler trigger`` without one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.base import BaseExecutor

from scheduler.durations import format_duration
from scheduler.handlers import Registry, default_registry
from scheduler.handlers.base import Result, RunContext
from scheduler.handlers.variables import mask
from scheduler.history import HistoryWriter, RunRecord, storable
from scheduler.processes import RunFiles
from scheduler.spec import JobSpec, SpecModels, default_models, models_for
from scheduler.store import Store

log = logging.getLogger(__name__)

NOTIFIER_TIMEOUT = 60.0
ERROR_LIMIT = 16 * 1024  # characters of error text kept with a run
_RUN_PREFIX = secrets.token_hex(8)  # per process; with a counter, unique without a syscall
_RUN_COUNTER = itertools.count(int.from_bytes(secrets.token_bytes(4)))


def new_run_id() -> str:
    """32 hex digits, like a UUID: a random per-process half and a counter."""
    return f"{_RUN_PREFIX}{next(_RUN_COUNTER) & 0xFFFFFFFFFFFFFFFF:016x}"


RECENT_LIMIT = 50_000
SUCCEEDED = ("success", "sent")  # ``sent``: handed over, no outcome to wait for; not retried


class NotClaimed(Exception):
    """The try's claim was refused (claimed elsewhere, or this replica no longer leads)."""


@dataclass
class Active:
    """One running job instance (a try, or the back-off between tries)."""

    job_id: str
    task: asyncio.Task[None] | None = None
    stop_reason: str | None = None


@dataclass
class _Spec:
    # The stored JSON text until the job first runs: 10,000 decoded dicts cost ~40 MB.
    canonical: dict[str, Any] | str
    parsed: JobSpec | None = None


@dataclass
class Runner:
    store: Store
    writer: HistoryWriter
    registry: Registry = field(default_factory=default_registry)
    kill_grace: float = 5.0
    clock: Callable[[], float] = time.time
    specs: dict[str, _Spec] = field(default_factory=dict)
    active: dict[str, list[Active]] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    recent: OrderedDict[tuple[str, float], None] = field(default_factory=OrderedDict)
    # Called with every finished try, skipped or missed run (the daemon's metrics).
    listeners: list[Callable[[RunRecord], None]] = field(default_factory=list)
    models: SpecModels | None = field(default=None, repr=False)  # of ``registry``, built once
    run_files: RunFiles | None = None  # the daemon's record of running processes
    # With replicas: writes the try's ``running`` row as a fenced claim (``claims``); a
    # refused claim means the try does not start. None: the batched writer records it.
    claim: Callable[[RunRecord], Awaitable[bool]] | None = None

    # -- the jobs it knows -------------------------------------------------------------
    def load_specs(self, canonical: Mapping[str, dict[str, Any] | str]) -> None:
        self.specs = {job_id: _Spec(spec) for job_id, spec in canonical.items()}

    def set_specs(
        self, changed: Iterable[tuple[str, dict[str, Any] | str]], removed: Iterable[str]
    ) -> None:
        for job_id, canonical in changed:
            self.specs[job_id] = _Spec(canonical)
        for job_id in removed:
            self.specs.pop(job_id, None)

    def spec(self, job_id: str) -> JobSpec | None:
        entry = self.specs.get(job_id)
        if entry is None:
            return None
        if entry.parsed is None:
            raw, model = entry.canonical, self._models().job
            # Straight from the stored JSON text: half the cost of json.loads + validate.
            if isinstance(raw, str):
                entry.parsed = model.model_validate_json(raw)
            else:
                entry.parsed = model.model_validate(raw)
        return entry.parsed

    def is_parsed(self, job_id: str) -> bool | None:
        """Whether the job's spec was parsed already; None for a job it does not know."""
        entry = self.specs.get(job_id)
        return None if entry is None else entry.parsed is not None

    def spec_of(self, canonical: dict[str, Any]) -> JobSpec:
        """A spec given whole (a one-off run's own), validated like a stored one."""
        return self._models().job.model_validate(canonical)

    def _models(self) -> SpecModels:
        # Validate with this runner's registry: a plugin type missing from the default
        # registry (a runner built with ``make_registry``) must still parse.
        if self.models is None:
            default = self.registry is default_registry()
            self.models = default_models() if default else models_for(self.registry)
        return self.models

    # -- due runs ----------------------------------------------------------------------
    def submit(
        self,
        job_id: str,
        run_times: list[datetime],
        grace: float | None,
        canonical: dict[str, Any] | None = None,
    ) -> None:
        """Called by the executor (on the loop) with the due times APScheduler computed:
        all of them, or only the last when the job coalesces. ``canonical``: a one-off run's
        own spec (an instance run with other params), instead of the job's."""
        now = self.clock()
        due: list[datetime] = []
        for run_time in run_times:
            key = (job_id, run_time.timestamp())
            if key in self.recent:  # APScheduler retrying after a failed store write
                continue
            self.recent[key] = None
            if len(self.recent) > RECENT_LIMIT:
                self.recent.popitem(last=False)
            late = now - run_time.timestamp()
            if grace is not None and late > grace:
                self._record_no_try(
                    job_id,
                    run_time,
                    "missed",
                    f"started {late:.1f}s late, past its misfire grace of {grace:g}s",
                )
                continue
            due.append(run_time)
        if due:
            override = None if canonical is None else self.spec_of(canonical)
            self.dispatch(job_id, *due, spec=override)

    def dispatch(
        self, job_id: str, scheduled: datetime, *later: datetime, spec: JobSpec | None = None
    ) -> str | None:
        """Start a run now, applying the job's concurrency policy. Returns why it did not
        start, or None. Several due times (missed runs of a job that does not coalesce)
        run one after another, as one instance. ``spec``: this run's own (see ``submit``)."""
        spec = spec or self.spec(job_id)
        if spec is None:
            log.warning("job %s is due but no longer declared: not run", job_id)
            return "not declared"
        running = self.active.setdefault(job_id, [])
        if running and spec.concurrency == "forbid":
            return self._record_no_try(
                job_id,
                scheduled,
                "skipped",
                "the previous run is still running (concurrency: forbid)",
            )
        if spec.concurrency == "allow" and len(running) >= spec.max_instances:
            return self._record_no_try(
                job_id, scheduled, "skipped", f"{len(running)} run(s) still running (max_instances)"
            )
        if spec.concurrency == "replace":
            for old in running:
                if old.task is not None and old.stop_reason is None:
                    old.stop_reason = "replaced by a newer run (concurrency: replace)"
                    old.task.cancel()
        active = Active(job_id)
        running.append(active)
        active.task = self.spawn(self._run(active, spec, [scheduled, *later]))
        return None

    def _record_no_try(self, job_id: str, scheduled: datetime, outcome: str, error: str) -> str:
        """A due run that never started (missed, skipped): recorded, and its job's failure
        notifiers told."""
        now = self.clock()
        record = RunRecord(
            new_run_id(),
            job_id,
            scheduled.timestamp(),
            now,
            outcome=outcome,
            finished_at=now,
            error=error,
        )
        self.writer.record(record)
        self._tell(record)
        log.warning(
            "job %s %s: %s",
            job_id,
            outcome,
            error,
            extra={"event": "run", "job_id": job_id, "run_id": record.run_id, "outcome": outcome},
        )
        self._notify_final(self.spec(job_id), record)
        return error

    def notify_lost(self, records: Iterable[RunRecord]) -> None:
        """Runs a crashed daemon left running, now recorded ``interrupted``: told once, by
        the daemon that marked them (a later start finds them finished)."""
        for record in records:
            self._notify_final(self.spec(record.job_id), record)

    def _tell(self, record: RunRecord) -> None:
        for listener in self.listeners:
            try:
                listener(record)
            except Exception:  # metrics must never break a run
                log.exception("run listener failed")

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _run(self, active: Active, spec: JobSpec, times: list[datetime]) -> None:
        try:
            for scheduled in times:
                await self._run_once(active, spec, scheduled)
        except asyncio.CancelledError:
            pass  # stopped (replace / shutdown); the try that ran was recorded as such
        except NotClaimed:
            pass  # another replica runs it, or none may: logged by the claim
        finally:
            self.active[active.job_id].remove(active)

    async def _run_once(self, active: Active, spec: JobSpec, scheduled: datetime) -> None:
        """One due time: the first try and its retries."""
        tries = spec.retries.attempts + 1
        for attempt in range(1, tries + 1):
            record = await self._try(active, spec, scheduled, attempt)
            if record.outcome in SUCCEEDED:
                return
            if attempt == tries:
                self._notify(spec.on_permanent_failure, "on_permanent_failure", record)
                return
            backoff = spec.retries.backoff.total_seconds() * 2 ** (attempt - 1)
            log.info(
                "job %s: try %d %s, retrying in %gs",
                active.job_id,
                attempt,
                record.outcome,
                backoff,
            )
            await asyncio.sleep(backoff)

    async def _try(
        self, active: Active, spec: JobSpec, scheduled: datetime, attempt: int
    ) -> RunRecord:
        record = RunRecord(
            new_run_id(), active.job_id, scheduled.timestamp(), self.clock(), attempt=attempt
        )
        if self.claim is None:
            self.writer.started(record)
        elif not await self.claim(record):
            raise NotClaimed(record.run_id)
        handler = self.registry[spec.run.type]
        timeout = spec.timeout.total_seconds() if spec.timeout else None
        ctx = RunContext(
            active.job_id,
            record.run_id,
            attempt,
            scheduled,
            self.store,
            kill_grace=self.kill_grace,
            timeout=timeout,
            run_files=self.run_files,
        )
        ctx.announce = lambda: self._announce(record, ctx)
        deadline = asyncio.timeout(timeout)
        try:
            assert handler.run is not None
            async with deadline:
                result = await handler.run(ctx, spec.run)
        except TimeoutError as exc:
            if deadline.expired() and spec.timeout is not None:
                error = f"timed out after {format_duration(spec.timeout)}"
                result = Result("failure", error=_noted(error, ctx))
                record.outcome = "timeout"
            else:  # the handler's own TimeoutError, not the job's timeout
                result = Result("failure", error="".join(traceback.format_exception(exc)))
        except asyncio.CancelledError:
            record.outcome = "interrupted"
            result = Result("failure", error=_noted(active.stop_reason or "cancelled", ctx))
            self._finish(record, result, ctx)
            self._notify_final(spec, record)
            raise
        except Exception as exc:  # a handler bug must not take the scheduler down
            result = Result("failure", error="".join(traceback.format_exception(exc)))
        self._finish(record, result, ctx)
        succeeded = record.outcome in SUCCEEDED
        notifiers = spec.on_success if succeeded else spec.on_failure
        self._notify(notifiers, "on_success" if succeeded else "on_failure", record)
        return record

    def _announce(self, record: RunRecord, ctx: RunContext) -> None:
        """The handler learnt where its work runs (a Celery task id, a worker): show it on
        the running row."""
        record.task_id, record.worker = ctx.task_id, ctx.worker
        if record.outcome == "running":
            self.writer.finished(record)

    def _finish(self, record: RunRecord, result: Result, ctx: RunContext | None = None) -> None:
        if ctx is not None:
            record.task_id, record.worker = ctx.task_id, ctx.worker
        if record.outcome == "running":
            record.outcome = result.outcome
        record.finished_at = self.clock()
        record.exit_code = result.exit_code
        # A value resolved from ${VAR} is a secret as far as anyone reading history knows.
        record.output_tail = mask(result.output, result.masked)
        record.error = cap_error(mask(result.error, result.masked))
        self.writer.finished(record)
        self._tell(record)
        duration = record.finished_at - record.started_at
        log.info(
            "job %s run %s try %d: %s in %.3fs",
            record.job_id,
            record.run_id,
            record.attempt,
            record.outcome,
            duration,
            extra={
                "event": "run",
                "job_id": record.job_id,
                "run_id": record.run_id,
                "attempt": record.attempt,
                "outcome": record.outcome,
                "duration": round(duration, 6),
                "exit_code": record.exit_code,
            },
        )

    # -- notifications -----------------------------------------------------------------
    def notify_overdue(self, job_id: str, error: str, now: float) -> bool:
        """Run the job's ``on_overdue`` list (the daemon's freshness watch calls this once
        per lapse). The notifiers see outcome ``overdue`` and the reason as the error."""
        spec = self.spec(job_id)
        if spec is None or not spec.on_overdue:
            return False
        record = RunRecord(new_run_id(), job_id, None, now, 0, "overdue", now, None, None, error)
        self._notify(spec.on_overdue, "on_overdue", record)
        return True

    def _notify_final(self, spec: JobSpec | None, record: RunRecord) -> None:
        """A run that did not run (missed, skipped) or did not finish (interrupted): a
        failure no retry follows, so both failure lists hear of it (README: Notifications)."""
        if spec is not None:
            self._notify(spec.on_failure, "on_failure", record)
            self._notify(spec.on_permanent_failure, "on_permanent_failure", record)

    def _notify(self, notifiers: list[Any], kind: str, record: RunRecord) -> None:
        if notifiers:
            self.spawn(self._send(notifiers, kind, record))

    async def _send(self, notifiers: list[Any], kind: str, record: RunRecord) -> None:
        payload = {
            "event": kind,
            "job_id": record.job_id,
            "run_id": record.run_id,
            "outcome": record.outcome,
            "exit_code": record.exit_code,
            "attempt": record.attempt,
            "error": record.error,
            "scheduled_time": _iso(record.scheduled_time),
            "started_at": _iso(record.started_at),
            "finished_at": _iso(record.finished_at),
            "output_tail": record.output_tail,
            "task_id": record.task_id,
            "worker": record.worker,
        }
        env = {
            "SCHEDULER_EVENT": kind,
            "SCHEDULER_OUTCOME": record.outcome,
            "SCHEDULER_EXIT_CODE": "" if record.exit_code is None else str(record.exit_code),
            # A NUL byte cannot be passed in an environment: without this, one in a job's
            # output made every command notifier fail ("embedded null byte").
            "SCHEDULER_OUTPUT_TAIL": storable((record.output_tail or "")[-4096:]),
        }
        failures = []
        for index, notifier in enumerate(notifiers):
            ctx = RunContext(
                record.job_id,
                record.run_id,
                record.attempt,
                None,
                self.store,
                env=env,
                payload=payload,
                kill_grace=self.kill_grace,
            )
            handler = self.registry[notifier.type]
            try:
                assert handler.run is not None
                async with asyncio.timeout(NOTIFIER_TIMEOUT):
                    result = await handler.run(ctx, notifier)
                error = mask(result.error, result.masked) if result.outcome != "success" else None
            except Exception as exc:  # includes the timeout: never retried, never blocking
                error = f"{type(exc).__name__}: {exc}"
            if error:
                failures.append(f"{kind}[{index}] ({notifier.type}) failed: {error}")
                log.error("job %s: notifier %s[%d] failed: %s", record.job_id, kind, index, error)
        if failures:
            record.error = cap_error("\n".join(filter(None, [record.error, *failures])))
            self.writer.finished(record)

    # -- shutdown ----------------------------------------------------------------------
    async def shutdown(self, grace: float) -> None:
        """Let running jobs finish for up to ``grace`` seconds, then stop them (as for a
        timeout) and record them as interrupted."""
        pending = [t for t in self.tasks if not t.done()]
        if pending:
            log.info("waiting up to %gs for %d running job(s)", grace, len(pending))
            _, still = await asyncio.wait(pending, timeout=grace)
            for runs in self.active.values():
                for active in runs:
                    task = active.task
                    if task is not None and not task.done() and not task.cancelling():
                        active.stop_reason = "stopped: the scheduler shut down"
                        task.cancel()
            for other in still:  # notifiers too: nothing is left running
                if not other.cancelling():  # a second cancel would cut a run's stop short
                    other.cancel()
            if still:
                await asyncio.wait(still, timeout=self.kill_grace + 10)
        notifying = [t for t in self.tasks if not t.done()]  # told of the runs just stopped
        if notifying:
            await asyncio.wait(notifying, timeout=self.kill_grace + 10)
        await self.writer.close()


def cap_error(text: str | None, limit: int = ERROR_LIMIT) -> str | None:
    """Keep the end of a long error (a traceback's last lines say most), like output."""
    if text is None or len(text) <= limit:
        return text
    return f"[{len(text) - limit} characters cut]\n{text[-limit:]}"


def _noted(error: str, ctx: RunContext) -> str:
    return f"{error}; {ctx.stop_note}" if ctx.stop_note else error


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


class RunnerExecutor(BaseExecutor):  # type: ignore[misc]
    """An APScheduler executor that passes due jobs to our runner instead of calling
    ``job.func``: the runner applies the job's concurrency and misfire policy itself."""

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner
        self.due: list[tuple[str, list[datetime], float | None, dict[str, Any] | None]] = []
        self.lock = threading.Lock()

    def submit_job(self, job: Any, run_times: list[datetime]) -> None:
        # Called in the scheduler's pass, off the loop (see ``firing.ResilientScheduler``).
        # One wake-up of the loop takes every job due so far: a wake-up per job (1,000 due
        # at once) had the pass and the loop take turns for the interpreter lock.
        # A one-off run (``instances.ONE_OFF``) names its job, and maybe its own spec, in args.
        job_id = job.args[0] if job.args else job.id
        canonical = job.args[1] if len(job.args) > 1 else None
        with self.lock:
            first = not self.due
            self.due.append((job_id, run_times, job.misfire_grace_time, canonical))
        if first:
            self._scheduler._eventloop.call_soon_threadsafe(self._hand_over)

    def _hand_over(self) -> None:
        with self.lock:
            due, self.due = self.due, []
        for job_id, run_times, grace, canonical in due:
            self.runner.submit(job_id, run_times, grace, canonical)

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:  # pragma: no cover
        raise NotImplementedError("submit_job hands jobs to the runner")


async def run_job(job_id: str, canonical: dict[str, Any] | None = None) -> None:
    """The callable every stored job names. The daemon never calls it (``RunnerExecutor``
    does the work); it exists so APScheduler can restore the pickled job. ``canonical``: a
    one-off run's own spec."""
    raise RuntimeError(f"job {job_id} must be run by the scheduler daemon's runner")
