"""Which jobs with ``expect:`` have stopped succeeding, read from the store: the last
success comes from run history and the start of a never-kept promise from the job's row,
so the answer survives restarts. ``OverdueWatch`` is the daemon's side: it checks every
``CHECK_SECONDS``, logs a WARNING and fires ``on_overdue`` once per lapse, and feeds the
per-job gauges. Each announcement is recorded in run history (outcome ``overdue``), so a
restarted daemon does not announce the same lapse again.
Callers: ``daemon``, ``service.list_jobs``, ``metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from scheduler.freshness import Freshness, evaluate
from scheduler.history import RunRecord
from scheduler.store import Store

log = logging.getLogger("scheduler.overdue")

CHECK_SECONDS = 30.0  # windows are at least a minute long
OVERDUE = "overdue"
IN_LIST_LIMIT = 500  # more ids than this: read every job's last success instead


@dataclass(frozen=True)
class Promise:
    """A job's ``expect``: its window in seconds and when the job row was last written."""

    job_id: str
    window: float
    declared_at: float


def promises(store: Store, job_id: str | None = None) -> list[Promise]:
    """The jobs that declare ``expect`` (from the summary written with each spec)."""
    jobs = store.jobs
    query = select(jobs.c.id, jobs.c.summary, jobs.c.updated_at)
    if job_id is not None:
        query = query.where(jobs.c.id == job_id)
    with store.engine.connect() as conn:
        rows = list(conn.execute(query))
    found = []
    for row in rows:
        window = json.loads(row.summary).get("expect")
        if window is not None:
            found.append(Promise(row.id, float(window), float(row.updated_at)))
    return found


def last_successes(store: Store, job_ids: list[str] | None = None) -> dict[str, float]:
    """Each job's latest successful finish, from run history."""
    runs = store.runs
    query = (
        select(runs.c.job_id, func.max(runs.c.finished_at).label("at"))
        .where(runs.c.outcome == "success")
        .group_by(runs.c.job_id)
    )
    if job_ids is not None:
        query = query.where(runs.c.job_id.in_(job_ids))
    with store.engine.connect() as conn:
        return {row.job_id: float(row.at) for row in conn.execute(query) if row.at is not None}


def freshness(store: Store, now: float, job_id: str | None = None) -> dict[str, Freshness]:
    """Every ``expect`` job's freshness at ``now`` (or only ``job_id``'s)."""
    return freshness_of(store, now, promises(store, job_id))


def freshness_of(store: Store, now: float, declared: list[Promise]) -> dict[str, Freshness]:
    """The freshness of these promises at ``now`` (one history query, none if empty)."""
    if not declared:
        return {}
    ids = [p.job_id for p in declared]
    last = last_successes(store, ids if len(ids) <= IN_LIST_LIMIT else None)
    return {p.job_id: evaluate(now, last.get(p.job_id), p.declared_at, p.window) for p in declared}


def announcements(store: Store, job_ids: list[str]) -> dict[str, float]:
    """When each job's latest lapse was announced (its latest ``overdue`` history row)."""
    runs = store.runs
    query = (
        select(runs.c.job_id, func.max(runs.c.started_at).label("at"))
        .where(runs.c.outcome == OVERDUE, runs.c.job_id.in_(job_ids))
        .group_by(runs.c.job_id)
    )
    with store.engine.connect() as conn:
        return {row.job_id: float(row.at) for row in conn.execute(query)}


def record_announcements(store: Store, rows: list[dict[str, Any]]) -> None:
    if rows:
        with store.write() as conn:
            conn.execute(store.runs.insert(), rows)


@dataclass(frozen=True)
class Reading:
    current: dict[str, Freshness]
    announced: dict[str, float]  # of the overdue jobs only


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


Notify = Callable[[str, Freshness, float], None]


class OverdueWatch:
    """The daemon's freshness check. A lapse is known by the moment its window counts
    from, so a new success followed by a new lapse is announced again, and a lapse is
    announced once however many checks see it."""

    def __init__(
        self,
        store: Store,
        notify: Notify,
        clock: Callable[[], float] = time.time,
        interval: float = CHECK_SECONDS,
    ) -> None:
        self.store = store
        self.notify = notify
        self.clock = clock
        self.interval = interval
        self.current: dict[str, Freshness] = {}
        self.announced: dict[str, float] = {}  # job id -> when its last lapse was announced
        self.unrecorded: list[dict[str, Any]] = []  # history rows of announcements

    def read(self) -> Reading:
        """The store's answer now (blocking: the daemon calls it in a thread)."""
        current = freshness(self.store, self.clock())
        overdue = [job_id for job_id, state in current.items() if state.overdue]
        return Reading(current, announcements(self.store, overdue) if overdue else {})

    def update(self, reading: Reading) -> list[str]:
        """Take a new reading; announce each lapse not announced yet (an announcement made
        after the lapse began covers it). Returns the ids announced now."""
        self.current = reading.current
        now = self.clock()
        fresh = []
        for job_id, state in sorted(reading.current.items()):
            if not state.overdue:
                continue
            announced = max(self.announced.get(job_id, 0.0), reading.announced.get(job_id, 0.0))
            if announced >= state.due_by:
                continue
            self.announced[job_id] = now
            fresh.append(job_id)
            self.unrecorded.append(self._row(job_id, state, now))
            last = _iso(state.last_success) if state.last_success is not None else "never"
            log.warning(
                "job %s is overdue: no success within %gs (last success: %s, due by %s)",
                job_id,
                state.window,
                last,
                _iso(state.due_by),
                extra={"event": "overdue", "job_id": job_id, "last_success": state.last_success},
            )
            self.notify(job_id, state, now)
        return fresh

    def _row(self, job_id: str, state: Freshness, now: float) -> dict[str, Any]:
        from scheduler.runner import new_run_id  # the daemon's: `scheduler jobs` needs none

        last = "never" if state.last_success is None else _iso(state.last_success)
        return RunRecord(
            new_run_id(),
            job_id,
            None,
            now,
            attempt=0,
            outcome=OVERDUE,
            finished_at=now,
            error=f"overdue: no success within {state.window:g}s (last success: {last})",
        ).row()

    def record(self) -> None:
        """Write the announcements to history (blocking); kept for the next try on failure."""
        rows, self.unrecorded = self.unrecorded, []
        try:
            record_announcements(self.store, rows)
        except Exception:
            self.unrecorded = rows + self.unrecorded
            raise

    async def run(self, stop: asyncio.Event) -> None:
        """Check until ``stop`` is set; a store that does not answer is retried next time."""
        while not stop.is_set():
            try:
                self.update(await asyncio.to_thread(self.read))
                await asyncio.to_thread(self.record)
            except Exception as exc:  # the store may be restarting: keep the last reading
                log.warning("freshness check failed (%s): retrying in %gs", exc, self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    def samples(self) -> list[tuple[str, float | None, bool]]:
        """(job, last success, overdue) for the gauges."""
        return [(j, s.last_success, s.overdue) for j, s in sorted(self.current.items())]
