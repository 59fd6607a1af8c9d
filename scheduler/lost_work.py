"""Runs marked ``interrupted`` because their daemon died (``kill -9``, a deposed leader)
may have handed work to another system that still does it: a Celery task runs on in its
worker, and a ``concurrency: forbid`` job would soon have a second instance beside it. The
leader that marks such runs asks each one's handler type to stop that work
(``HandlerType.stop_lost``: Celery revokes the task with terminate=True), adds the answer
to the run's error, and only then tells the jobs' failure notifiers.
Caller: the daemon, as it starts to lead (in the background: a broker that does not answer
must not hold up the runs that are due).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import bindparam

from scheduler.history import RunRecord, storable
from scheduler.runner import Runner, cap_error

log = logging.getLogger(__name__)

STOP_TIMEOUT = 30.0  # seconds for all the handlers' answers


def end_lost_work(runner: Runner, records: list[RunRecord]) -> None:
    """Stop the lost runs' outside work, record it, notify (as a task of the runner, so a
    shutdown waits for it like for a notifier)."""
    if records:
        runner.spawn(_stop_then_notify(runner, records))


async def _stop_then_notify(runner: Runner, records: list[RunRecord]) -> None:
    # A failure stops one run's note, never the others' or the notifications.
    notes = await asyncio.gather(*(_stop(runner, r) for r in records), return_exceptions=True)
    noted = []
    for record, note in zip(records, notes, strict=True):
        if isinstance(note, BaseException):
            why = f"{type(note).__name__}: {note}"
            log.error(
                "job %s run %s: its work elsewhere not stopped (%s)",
                record.job_id,
                record.run_id,
                why,
            )
        elif note:
            record.error = cap_error(f"{record.error}; {note}" if record.error else note)
            noted.append(record)
            log.warning("job %s run %s: %s", record.job_id, record.run_id, note)
    if noted:
        try:
            await asyncio.to_thread(_write_notes, runner, noted)
        except Exception as exc:  # the store is away: the log keeps what was done
            log.error("could not record what was done with lost runs' tasks: %s", exc)
    runner.notify_lost(records)


async def _stop(runner: Runner, record: RunRecord) -> str | None:
    spec = runner.spec(record.job_id)
    if spec is None:
        return None  # no longer declared: nothing says where its work went
    handler = runner.registry.get(spec.run.type)
    if handler is None or handler.stop_lost is None:
        return None
    # The task id the run recorded, else its run id: a handler names its task after the
    # run (Celery does), and a crash may come before the id was written.
    task_id = record.task_id or record.run_id
    try:
        return await asyncio.wait_for(handler.stop_lost(spec.run, task_id), STOP_TIMEOUT)
    except Exception as exc:
        return f"its task {task_id} could not be stopped ({type(exc).__name__}: {exc})"


def _write_notes(runner: Runner, records: list[RunRecord]) -> None:
    """Only on rows still ``interrupted``: a deposed leader that lived on may have
    recorded how its run ended meanwhile."""
    runs = runner.store.runs
    with runner.store.write() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.run_id == bindparam("b_run_id"), runs.c.outcome == "interrupted")
            .values(error=bindparam("b_error")),
            [{"b_run_id": r.run_id, "b_error": storable(r.error or "")} for r in records],
        )
