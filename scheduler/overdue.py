"""Which jobs with ``expect:`` have stopped succeeding, read from the store: the last
success comes from run history and the start of a never-kept promise from the job's row,
so the answer survives restarts. ``OverdueWatch`` is the daemon's side: it checks every
``CHECK_SECONDS``, logs a WARNING and fires ``on_overdue`` once per lapse, and feeds the
per-job gauges. Callers: ``daemon``, ``service.list_jobs``, ``metrics``.
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

from sqlalchemy import func, select

from scheduler.freshness import Freshness, evaluate
from scheduler.store import Store

log = logging.getLogger("scheduler.overdue")

CHECK_SECONDS = 30.0  # windows are at least a minute long


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
    declared = promises(store, job_id)
    if not declared:
        return {}
    last = last_successes(store, None if job_id is None else [job_id])
    return {p.job_id: evaluate(now, last.get(p.job_id), p.declared_at, p.window) for p in declared}


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
        self.announced: dict[str, float] = {}  # job id -> ``since`` of the lapse announced

    def read(self) -> dict[str, Freshness]:
        """The store's answer now (blocking: the daemon calls it in a thread)."""
        return freshness(self.store, self.clock())

    def update(self, current: dict[str, Freshness]) -> list[str]:
        """Take a new reading; announce each lapse not announced yet. Returns their ids."""
        self.current = current
        now = self.clock()
        fresh = []
        for job_id, state in sorted(current.items()):
            if not state.overdue:
                self.announced.pop(job_id, None)
                continue
            if self.announced.get(job_id) == state.since:
                continue
            self.announced[job_id] = state.since
            fresh.append(job_id)
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
        for gone in set(self.announced) - set(current):
            del self.announced[gone]
        return fresh

    async def run(self, stop: asyncio.Event) -> None:
        """Check until ``stop`` is set; a store that does not answer is retried next time."""
        while not stop.is_set():
            try:
                self.update(await asyncio.to_thread(self.read))
            except Exception as exc:  # the store may be restarting: keep the last reading
                log.warning("freshness check failed (%s): retrying in %gs", exc, self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    def samples(self) -> list[tuple[str, float | None, bool]]:
        """(job, last success, overdue) for the gauges."""
        return [(j, s.last_success, s.overdue) for j, s in sorted(self.current.items())]
