"""Apply a ``Plan`` to the store: the only writer of job definitions.

Everything happens in one transaction, in batches: the pickled APScheduler jobs, our spec
rows and the file cache commit together or not at all, so a crash at any point leaves the
store before or after the apply. Unchanged jobs are not written. Only a schedule change (or
resuming a paused job) computes a new next run time; ``replace_existing`` is never used,
because re-adding resets interval timers. Callers: the reconciler, under the writer lock.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select

from scheduler.declared import DeclaredJob
from scheduler.errors import JobNotFound, SchedulerError
from scheduler.plan import Plan, Stored, Update
from scheduler.rows import Prepared, Rows, job_state, state_row
from scheduler.spec import canonical_text
from scheduler.store import CachedFile, Store


class ForeignJob(SchedulerError):
    """The store holds an APScheduler job with this id that this tool did not create."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"the store already holds a job '{job_id}' that this tool did not create: "
            "rename the job in its file, or remove the other job from the store"
        )


@dataclass(frozen=True)
class FileCacheUpdate:
    put: Mapping[str, CachedFile]
    drop: frozenset[str]


@dataclass
class _Batch:
    aps_insert: list[dict[str, Any]]
    aps_update: list[dict[str, Any]]
    ours_insert: list[dict[str, Any]]
    ours_update: list[dict[str, Any]]


def apply_plan(
    store: Store,
    plan: Plan[DeclaredJob],
    files: FileCacheUpdate,
    now: datetime,
    version: str,
    extra: Callable[[Connection], None] | None = None,
) -> None:
    """Make the store match the plan, in one transaction; ``extra`` writes in it too (the
    templates and their instances, ``reconciler``)."""
    with store.write() as conn:
        _apply(store, conn, plan, now)
        _write_files(store, conn, files, version)
        if extra is not None:
            extra(conn)


def apply_instances(
    store: Store,
    updates: Sequence[Update[DeclaredJob]],
    removed: Sequence[Stored],
    now: datetime,
    params: Mapping[str, Mapping[str, Any]],
    conn: Connection | None = None,
) -> None:
    """Instances re-rendered or modified (``updates``, their new ``params`` by id) and
    removed, with any one-off run of theirs still to come. Never adds: ``instances.create``
    does. In ``conn``'s transaction, else in one of its own."""
    if conn is None:
        with store.write() as own:
            apply_instances(store, updates, removed, now, params, own)
        return
    _apply(store, conn, Plan(update=list(updates), remove=list(removed)), now)
    ours, aps = store.jobs, store.aps_jobs
    if params:
        conn.execute(
            ours.update().where(ours.c.id == bindparam("b_id")),
            [
                {"b_id": job_id, "params": json.dumps(dict(values), sort_keys=True)}
                for job_id, values in params.items()
            ],
        )
    for gone in removed:
        conn.execute(aps.delete().where(aps.c.id.startswith(gone.id + "@once.", autoescape=True)))


def _apply(store: Store, conn: Connection, plan: Plan[DeclaredJob], now: datetime) -> None:
    stamp = time.time()
    batch = _Batch([], [], [], [])
    rows = Rows(now)  # jobs with equal schedules share one trigger, first fire time, pickle
    existing = _aps_states(store, conn, [u.job.id for u in plan.update] + [a.id for a in plan.add])
    for job in plan.add:
        if job.id in existing:
            raise ForeignJob(job.id)
        ready = job.prepared
        if not isinstance(ready, Prepared) or ready.now != now:
            ready = rows.prepared(job)
        batch.aps_insert.append(
            {"b_id": job.id, "next_run_time": ready.next_run_time, "job_state": ready.job_state}
        )
        batch.ours_insert.append(_ours(job, False, stamp, ready.summary))
    for update in plan.update:
        state = _updated_state(
            update.job, update.stored, existing.get(update.job.id), update.reschedules, rows
        )
        if state is not None:
            target = batch.aps_update if update.job.id in existing else batch.aps_insert
            target.append(state_row(state))
        shown = rows.summary_text(update.job)
        batch.ours_update.append(_ours(update.job, update.stored.operator_paused, stamp, shown))
    _write(store, conn, batch, plan, stamp)


def _updated_state(
    job: DeclaredJob, stored: Stored, old: dict[str, Any] | None, reschedules: bool, rows: Rows
) -> dict[str, Any] | None:
    now, arming = rows.now, rows.arming
    paused = job.canonical["paused"] or stored.operator_paused
    was_paused = bool(stored.canonical.get("paused")) or stored.operator_paused
    if reschedules or old is None:
        if old is None and not reschedules:
            return None  # a finished one-shot (APScheduler dropped it): do not re-arm it
        trigger, first = arming.first_fire(job)
        nrt = None if paused else first
    else:
        trigger = old["trigger"]
        nrt = old["next_run_time"]
        if paused != was_paused:
            nrt = None if paused else trigger.get_next_fire_time(None, now)
    state = job_state(job.id, job.canonical, trigger, nrt)
    if old is not None and all(state[k] == old.get(k) for k in _APS_OPTIONS):
        return None  # only our spec row changed (a description, a command): nothing to write
    return state


# What APScheduler's row holds besides the trigger object itself.
_APS_OPTIONS = ("misfire_grace_time", "coalesce", "max_instances", "next_run_time", "trigger")


def _ours(job: DeclaredJob, operator_paused: bool, stamp: float, shown: str) -> dict[str, Any]:
    return {
        "b_id": job.id,
        "spec": job.text or canonical_text(job.canonical),
        "fingerprint": job.fingerprint,
        "source": str(job.source),
        "operator_paused": operator_paused,
        "updated_at": stamp,
        "summary": shown,
    }


def _aps_states(store: Store, conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {}
    table = store.aps_jobs
    if len(ids) > 2000:  # many (a cold start): which of them exist at all, from the index
        present = set(conn.scalars(select(table.c.id)))
        ids = [i for i in ids if i in present]
    for start in range(0, len(ids), 500):  # stay under bound-parameter limits
        chunk = ids[start : start + 500]
        for row in conn.execute(select(table.c.id, table.c.job_state).where(table.c.id.in_(chunk))):
            states[row.id] = pickle.loads(row.job_state)
    return states


def _write(
    store: Store, conn: Connection, batch: _Batch, plan: Plan[DeclaredJob], stamp: float
) -> None:
    aps, ours = store.aps_jobs, store.jobs
    insert_many(conn, aps, batch.aps_insert)
    if batch.aps_update:
        conn.execute(aps.update().where(aps.c.id == bindparam("b_id")), batch.aps_update)
    insert_many(conn, ours, batch.ours_insert)
    if batch.ours_update:
        conn.execute(ours.update().where(ours.c.id == bindparam("b_id")), batch.ours_update)
    if plan.moved:
        conn.execute(
            ours.update().where(ours.c.id == bindparam("b_id")),
            [{"b_id": j.id, "source": str(j.source), "updated_at": stamp} for j in plan.moved],
        )
    removed = [s.id for s in plan.remove]
    for start in range(0, len(removed), 500):
        chunk = removed[start : start + 500]
        conn.execute(aps.delete().where(aps.c.id.in_(chunk)))
        conn.execute(ours.delete().where(ours.c.id.in_(chunk)))


def insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (the id as ``b_id``, other columns by name; every row with the same
    keys, plain values the driver takes as they are) with one executemany of the statement
    compiled once. SQLAlchemy's own executemany builds every row's parameters again
    through the compiled statement: a quarter of a cold apply of 10,000 jobs."""
    if not rows:
        return
    given = {"id" if key == "b_id" else key for key in rows[0]}
    missing = [c for c in table.columns if c.default is not None and c.key not in given]
    if any(not c.default.is_scalar for c in missing):  # type: ignore[union-attr]
        conn.execute(table.insert().values(id=bindparam("b_id")), rows)  # SQLAlchemy calls it
        return
    if missing:  # a column's Python-side default, as SQLAlchemy would give it
        defaults = {c.key: c.default.arg for c in missing}  # type: ignore[union-attr]
        rows = [{**defaults, **row} for row in rows]
    values: dict[str, Any] = {("id" if key == "b_id" else key): bindparam(key) for key in rows[0]}
    compiled = table.insert().values(values).compile(dialect=conn.dialect)
    names = compiled.positiontup
    params: list[Any] = rows
    if compiled.positional and names is not None:
        params = (
            list(map(itemgetter(*names), rows))
            if len(names) > 1
            else [(row[names[0]],) for row in rows]
        )
    conn.exec_driver_sql(compiled.string, params)


def _write_files(store: Store, conn: Connection, files: FileCacheUpdate, version: str) -> None:
    table = store.files
    stale = sorted(set(files.put) | files.drop)
    for start in range(0, len(stale), 500):
        conn.execute(table.delete().where(table.c.path.in_(stale[start : start + 500])))
    rows = [
        {"path": path, "digest": f.digest, "version": version, "jobs": json.dumps(f.jobs)}
        for path, f in files.put.items()
    ]
    insert_many(conn, table, rows)


def set_operator_pause(store: Store, job_id: str, paused: bool, now: datetime) -> bool:
    """Pause or resume one job as an operator override, kept until resumed (reconciles
    and restarts keep it). Resuming computes a fresh next run time. Returns whether
    anything changed; raises ``JobNotFound`` for an unknown id."""
    ours, aps = store.jobs, store.aps_jobs
    with store.write() as conn:
        row = conn.execute(
            select(ours.c.spec, ours.c.operator_paused).where(ours.c.id == job_id)
        ).first()
        if row is None:
            raise JobNotFound(job_id)
        if bool(row.operator_paused) == paused:
            return False
        conn.execute(ours.update().where(ours.c.id == job_id).values(operator_paused=paused))
        declared_paused = bool(json.loads(row.spec).get("paused"))
        stored = conn.execute(select(aps.c.job_state).where(aps.c.id == job_id)).first()
        if stored is not None and not declared_paused:
            state = pickle.loads(stored.job_state)
            nrt = None if paused else state["trigger"].get_next_fire_time(None, now)
            state["next_run_time"] = nrt
            conn.execute(aps.update().where(aps.c.id == bindparam("b_id")), [state_row(state)])
    return True
