"""One job or one run, in full: ``scheduler get JOB`` (the spec, the next fire times, the
last runs) and ``scheduler logs RUN_ID`` (a run's whole kept output), from the store or,
with ``--url``, from the daemon's API. Callers: ``cli``, ``api`` (``GET /jobs/{id}``,
``GET /runs/{id}``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import select

from scheduler.client import call
from scheduler.errors import JobNotFound, SchedulerError
from scheduler.history import HISTORY_FIELDS, list_runs
from scheduler.job_entries import fire_times
from scheduler.service import list_jobs
from scheduler.settings import Settings
from scheduler.store import Store

MIN_PREFIX = 4  # a run id may be shortened, as git shortens commits


class RunNotFound(SchedulerError):
    """No run, or more than one, has the id (prefix) an operator gave."""


def job_detail(store: Store, job_id: str, fires: int = 5) -> dict[str, Any]:
    """``scheduler jobs -o json``'s entry for one job, plus its spec and next fire times
    (none while it is paused or its schedule has ended)."""
    found = list_jobs(store, job_id)
    if not found:
        raise JobNotFound(job_id)
    stored = store.stored_jobs(None, job_id)[job_id]
    return {
        **found[0],
        "spec": stored.canonical,
        "next_fire_times": _upcoming(store, job_id, fires),
    }


def _upcoming(store: Store, job_id: str, count: int) -> list[str]:
    """The stored trigger walked on from the stored next run time: exactly what the daemon
    will fire (interval anchors included), without jitter."""
    job = store.jobstore.lookup_job(job_id)
    if job is None:
        return []
    return fire_times(job.trigger, job.next_run_time, count)


def job_view(settings: Settings, job_id: str, runs: int, fires: int) -> dict[str, Any]:
    """``scheduler get``: the job's detail with its ``runs`` newest runs."""
    if settings.api_url:
        path = f"/jobs/{quote(job_id, safe='')}"
        detail: dict[str, Any] = call(settings.api_url, "GET", path, params={"fires": fires})
        detail["runs"] = (
            call(settings.api_url, "GET", f"{path}/runs", params={"limit": runs}) if runs else []
        )
        return detail
    store = Store(settings.db)
    try:
        return {**job_detail(store, job_id, fires), "runs": list_runs(store, job_id, runs)}
    finally:
        store.close()


def find_run(store: Store, run_id: str) -> dict[str, Any]:
    """The run (one try) with this id, or the one whose id starts with it, as
    ``scheduler history -o json`` prints it."""
    runs = store.runs
    if len(run_id) < MIN_PREFIX:
        raise RunNotFound(
            f"run id {run_id!r} is too short: give at least {MIN_PREFIX} characters "
            "(`scheduler history` shows run ids)"
        )
    escaped = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(runs.c.run_id)
        .where(runs.c.run_id.like(f"{escaped}%", escape="\\"))
        .order_by(runs.c.run_id)
        .limit(3)
    )
    with store.engine.connect() as conn:
        matches = [row.run_id for row in conn.execute(query)]
    if run_id in matches:
        matches = [run_id]
    if not matches:
        raise RunNotFound(f"no run {run_id!r}: `scheduler history` shows run ids")
    if len(matches) > 1:
        raise RunNotFound(
            f"run id {run_id!r} is ambiguous ({', '.join(matches[:2])}, ...): give more of it"
        )
    with store.engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == matches[0])).mappings().one()
    return _as_listed(dict(row))


def _as_listed(row: dict[str, Any]) -> dict[str, Any]:
    item = {name: row[name] for name in HISTORY_FIELDS}
    for name in ("scheduled_time", "started_at", "finished_at"):
        if item[name] is not None:
            item[name] = datetime.fromtimestamp(item[name], UTC).isoformat()
    return item


def run_view(settings: Settings, run_id: str) -> dict[str, Any]:
    """``scheduler logs``: one run with its whole kept output."""
    if settings.api_url:
        return dict(call(settings.api_url, "GET", f"/runs/{quote(run_id, safe='')}"))
    store = Store(settings.db)
    try:
        return find_run(store, run_id)
    finally:
        store.close()
