"""Runs whose daemon died (``kill -9``, OOM, power): their processes may still be running,
and a ``concurrency: forbid`` job would otherwise get a second instance beside them. At
start-up, before anything fires, the daemon ends each such run's process tree (found from
the record ``RunFiles`` kept while it ran, checked against the pid's start time so a reused
pid is never touched) and records the run ``interrupted`` saying so.
Caller: the daemon, once it holds the writer lock.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from scheduler.history import HISTORY_FIELDS, RunRecord
from scheduler.processes import RunFiles, alive, end_tree, stat
from scheduler.store import Store

log = logging.getLogger(__name__)


def run_files_dir(db_url: str, lock: Path) -> Path:
    """Next to a SQLite file (``<db file>.runs/``), else beside the daemon's lock in its
    runtime directory: wherever the next daemon for the same store will look."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(str(url.database)).resolve().with_name(Path(str(url.database)).name + ".runs")
    return lock.with_suffix(".runs")


async def end_leftovers(store: Store, files: RunFiles, grace: float) -> list[RunRecord]:
    """End what the previous daemon's runs left running; record those runs ``interrupted``
    and return them (the daemon notifies them, like every run a crash cut short)."""
    # Another daemon's runs, while it lives (a replica on this machine), are its own.
    records = [r for r in files.read() if not alive(r.get("daemon"))]
    recorded = []
    for record in records:
        run_id = record["run_id"]
        pid, start = record.get("pid"), record.get("start")
        proc = stat(pid) if isinstance(pid, int) else None
        main_alive = proc is not None and proc.start == start and proc.state != "Z"
        # The process group only counts while its leader is still the run's process.
        mark = str(record.get("mark"))
        since = start if isinstance(start, int) else 0
        ended = await end_tree(mark, pid if main_alive else None, grace=grace, since=since)
        if main_alive or ended.pids:
            error = (
                f"the scheduler stopped while this run was in progress; its process(es) "
                f"{', '.join(map(str, ended.pids))} were still running and were ended when "
                "the scheduler restarted"
            )
        else:
            error = "the scheduler stopped while this run was in progress (its process was gone)"
        row = _interrupt(store, record, error)
        if row is not None:
            recorded.append(row)
        files.remove(run_id)
        log.warning("job %s run %s: %s", record.get("job_id"), run_id, error)
    return recorded


def _interrupt(store: Store, record: dict[str, Any], error: str) -> RunRecord | None:
    """Mark the run ``interrupted`` (or write it, if the dead daemon never did); None when
    it had already finished."""
    runs = store.runs
    now = time.time()
    with store.write() as conn:
        updated = conn.execute(
            runs.update()
            .where(runs.c.run_id == record["run_id"], runs.c.outcome == "running")
            .values(outcome="interrupted", finished_at=now, error=error)
        )
        row = conn.execute(runs.select().where(runs.c.run_id == record["run_id"])).first()
        if row is not None:
            if not updated.rowcount:
                return None
            return RunRecord(**{name: getattr(row, name) for name in HISTORY_FIELDS})
        # The daemon died before its history writer wrote the start.
        written = RunRecord(
            record["run_id"],
            str(record.get("job_id")),
            record.get("scheduled_time"),
            float(record.get("started_at") or now),
            attempt=int(record.get("attempt") or 1),
            outcome="interrupted",
            finished_at=now,
            error=error,
        )
        conn.execute(runs.insert(), [written.row()])
        return written
