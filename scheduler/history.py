"""Run history: one row per try, written when the try starts and when it ends, so a crash
leaves a visible ``running`` row that the next start-up marks ``interrupted``.

Writes go through ``HistoryWriter``: a queue flushed in batches, one transaction each, off
the event loop, retried while the database is locked; a run record is never dropped.
Callers: the runner (writes), ``scheduler history``/``jobs`` and the cleanup handler.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import DBAPIError

from scheduler.store import Store

log = logging.getLogger(__name__)

HISTORY_FIELDS = (
    "run_id",
    "job_id",
    "scheduled_time",
    "started_at",
    "finished_at",
    "outcome",
    "exit_code",
    "attempt",
    "output_tail",
    "error",
    "task_id",
    "worker",
)


@dataclass
class RunRecord:
    run_id: str
    job_id: str
    scheduled_time: float | None
    started_at: float
    attempt: int = 1
    outcome: str = "running"
    finished_at: float | None = None
    exit_code: int | None = None
    output_tail: str | None = None
    error: str | None = None
    task_id: str | None = None  # the id of the work in another system (a Celery task)
    worker: str | None = None  # the host that ran it there

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in HISTORY_FIELDS}


@dataclass
class _Pending:
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)


class HistoryWriter:
    """Batches history writes; ``flush`` retries until the database takes them."""

    def __init__(self, store: Store, *, interval: float = 0.02, retry: float = 0.5) -> None:
        self.store = store
        self.interval = interval
        self.retry = retry
        self.pending = _Pending()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.closing = False
        # One flush at a time: a second one waits for the batch in flight, so "flushed"
        # means written, and a finish is never written before its start.
        self.flushing = asyncio.Lock()

    def started(self, record: RunRecord) -> None:
        self.pending.inserts.append(record.row())
        self.wake.set()

    def finished(self, record: RunRecord) -> None:
        row = record.row()
        row["b_run_id"] = row.pop("run_id")
        self.pending.updates.append(row)
        self.wake.set()

    def record(self, record: RunRecord) -> None:
        """A run that starts and ends at once (skipped, missed)."""
        self.started(record)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while not self.closing:
            await self.wake.wait()
            self.wake.clear()
            await asyncio.sleep(self.interval)  # gather a burst into one transaction
            await self.flush()

    async def flush(self) -> None:
        async with self.flushing:
            await self._flush()

    async def _flush(self) -> None:
        while self.pending.inserts or self.pending.updates:
            batch, self.pending = self.pending, _Pending()
            try:
                await asyncio.to_thread(self._write, batch)
            except DBAPIError as exc:
                log.warning("run history not written yet (%s); retrying", exc.orig)
                self.pending = _Pending(
                    batch.inserts + self.pending.inserts, batch.updates + self.pending.updates
                )
                await asyncio.sleep(self.retry)

    def _write(self, batch: _Pending) -> None:
        runs = self.store.runs
        with self.store.write() as conn:
            if batch.inserts:
                conn.execute(runs.insert(), batch.inserts)
            if batch.updates:
                conn.execute(
                    runs.update().where(runs.c.run_id == bindparam("b_run_id")), batch.updates
                )

    async def close(self) -> None:
        self.closing = True
        self.wake.set()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        await self.flush()


def mark_interrupted(store: Store, now: float | None = None) -> int:
    """Runs left ``running`` by a crash: they will never finish, say so."""
    runs = store.runs
    with store.write() as conn:
        result = conn.execute(
            runs.update()
            .where(runs.c.outcome == "running")
            .values(
                outcome="interrupted",
                finished_at=now or time.time(),
                error="the scheduler stopped while this run was in progress",
            )
        )
    return int(result.rowcount or 0)


def prune(store: Store, older_than: float) -> int:
    runs = store.runs
    with store.write() as conn:
        result = conn.execute(
            runs.delete().where(runs.c.started_at < older_than, runs.c.outcome != "running")
        )
    return int(result.rowcount or 0)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def list_runs(store: Store, job_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """Newest first, as ``scheduler history --output json`` prints them."""
    runs = store.runs
    query = select(runs).order_by(runs.c.started_at.desc(), runs.c.attempt.desc()).limit(limit)
    if job_id is not None:
        query = query.where(runs.c.job_id == job_id)
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    result = []
    for row in rows:
        item = {name: row[name] for name in HISTORY_FIELDS}
        for name in ("scheduled_time", "started_at", "finished_at"):
            item[name] = _iso(item[name])
        result.append(item)
    return result


def last_runs(store: Store, job_id: str | None = None) -> dict[str, tuple[str, float]]:
    """Each job's latest try (or only ``job_id``'s): (outcome, started_at)."""
    runs = store.runs
    latest_query = select(runs.c.job_id, func.max(runs.c.started_at).label("started"))
    if job_id is not None:
        latest_query = latest_query.where(runs.c.job_id == job_id)
    latest = latest_query.group_by(runs.c.job_id).subquery()
    query = select(runs.c.job_id, runs.c.outcome, runs.c.started_at).join(
        latest, (runs.c.job_id == latest.c.job_id) & (runs.c.started_at == latest.c.started)
    )
    with store.engine.connect() as conn:
        return {row.job_id: (row.outcome, row.started_at) for row in conn.execute(query)}
