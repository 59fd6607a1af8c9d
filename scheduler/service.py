"""What each command does, reachable from Python without the command line: it picks
between acting on the store directly and asking a running daemon, so there is only ever
one writer. Callers: ``cli`` (and tests)."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import select

from scheduler.client import call, call_page
from scheduler.control import RuntimePaths, StoreBusy, WriterLock, ask, runtime_paths
from scheduler.errors import InvalidJobFiles, JobNotFound, SchedulerError, SpecProblem
from scheduler.history import last_runs, runs_page
from scheduler.job_entries import Row, entry
from scheduler.overdue import Promise, freshness_of
from scheduler.settings import Settings
from scheduler.store import Store
from scheduler.storefile import store_exists

LOCK_WAIT_SECONDS = 30.0
WORKERS = min(4, os.cpu_count() or 1)  # the command line parses many files in parallel


def plan_for(
    settings: Settings, *, allow_empty: bool = False, allow_orphan_delete: bool = False
) -> dict[str, Any]:
    """What ``reconcile`` would do, changing nothing (reads only, so no lock is needed).
    With ``--url``, the local files are planned against the daemon's store."""
    if settings.api_url:
        from scheduler.remote_plan import plan_remote

        return plan_remote(settings, allow_empty=allow_empty)
    # No store yet: plan against an empty one in memory (planning creates no file).
    store = Store(settings.db if store_exists(settings.db) else "sqlite://")
    try:
        return _reconcile_here(
            store,
            settings.jobs_dir,
            allow_empty=allow_empty,
            allow_orphan_delete=allow_orphan_delete,
            dry_run=True,
        )
    finally:
        store.close()


def reconcile_now(
    settings: Settings, *, allow_empty: bool = False, allow_orphan_delete: bool = False
) -> dict[str, Any]:
    """Apply the files to the store, or have the running daemon do it and report back."""
    from scheduler import handoff  # not imported by `jobs`, which needs no leader

    if settings.api_url:
        query = {"allow_orphan_delete": "true"} if allow_orphan_delete else {}
        return dict(call(settings.api_url, "POST", "/reconcile", params=query)["details"])
    paths = runtime_paths(settings.db)
    lock = WriterLock(paths.lock)
    asking = (settings, paths, allow_empty, allow_orphan_delete)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while not lock.acquire():
        if (delegated := _ask_local_daemon(*asking)) is not None:
            return delegated
        if time.monotonic() > deadline:  # another `reconcile` that is not a daemon
            raise StoreBusy(
                f"the store is locked by process {lock.holder()} ({paths.lock}) and no daemon "
                "answers: wait for it to finish, or stop it"
            )
        time.sleep(0.2)
    try:
        store = Store(settings.db)
        try:
            if handoff.live_leader(store) is not None:
                # Replicas hold no host lock: a daemon here (leader or standby) still acts.
                if (
                    delegated := _ask_local_daemon(
                        settings, paths, allow_empty, allow_orphan_delete
                    )
                ) is not None:
                    return delegated
                _no_remote_leader(store)
            return _reconcile_here(
                store,
                settings.jobs_dir,
                allow_empty=allow_empty,
                allow_orphan_delete=allow_orphan_delete,
            )
        finally:
            store.close()
    finally:
        lock.release()


def _reconcile_here(
    store: Store,
    jobs_dir: Path,
    *,
    allow_empty: bool,
    allow_orphan_delete: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Reconcile (or plan) in this process. Imported here, not at the top: `jobs`,
    `history` and the operator verbs need neither the job-file models nor the write path."""
    from scheduler.plan import Plan
    from scheduler.render import plan_details
    from scheduler.unchanged import unchanged_jobs

    with store.engine.connect() as conn:
        same = unchanged_jobs(conn, jobs_dir)
    if same is not None:  # a no-op, told apart before the models are imported
        return plan_details(Plan(unchanged=same), applied=None if dry_run else False)
    from scheduler.reconciler import reconcile

    result = reconcile(
        store,
        jobs_dir,
        dry_run=dry_run,
        allow_empty=allow_empty,
        allow_orphan_delete=allow_orphan_delete,
        workers=WORKERS,
    )
    applied = None if dry_run else result.applied
    return plan_details(result.plan, applied, result.instance_lines)


def _ask_local_daemon(
    settings: Settings, paths: RuntimePaths, allow_empty: bool, allow_orphan_delete: bool = False
) -> dict[str, Any] | None:
    """Have the daemon on this host's socket reconcile; None when none answers."""
    ping = ask(paths.socket, {"op": "ping"})
    if ping is None:
        return None
    _same_jobs_dir(settings, unwrap(ping))
    request = {"op": "reconcile", "allow_empty": allow_empty}
    if allow_orphan_delete:
        request["allow_orphan_delete"] = True
    return unwrap(ask(paths.socket, request) or {})


def _no_remote_leader(store: Store) -> None:
    """A daemon elsewhere leads this store and reconciles its own files: say where."""
    from scheduler import handoff  # not imported by `jobs`, which needs no leader

    leader = handoff.live_leader(store)
    if leader is not None:
        where = f"`scheduler --url {leader.address} reconcile`" if leader.address else "its API"
        raise StoreBusy(
            f"{leader.holder} leads this store and reconciles its own jobs dir: reconcile "
            f"through it with {where}, or run `scheduler reconcile` on that host"
        )


def _same_jobs_dir(settings: Settings, daemon: dict[str, Any]) -> None:
    """The daemon reconciles the directory it watches: refuse to pretend it applied ours."""
    theirs = daemon.get("jobs_dir")
    if theirs and Path(theirs) != settings.jobs_dir.resolve():
        raise StoreBusy(
            f"a daemon (pid {daemon.get('pid')}) owns this store and reconciles {theirs}, not "
            f"{settings.jobs_dir}: run `scheduler --jobs-dir {theirs} reconcile`, or stop that "
            "daemon first"
        )


def unwrap(reply: dict[str, Any]) -> dict[str, Any]:
    """A daemon's reply as a result, or the error it reported raised here."""
    if reply.get("ok"):
        result: dict[str, Any] = reply["result"]
        return result
    if reply.get("problems"):
        raise InvalidJobFiles(SpecProblem(**p) for p in reply["problems"])
    error = SchedulerError(reply.get("error", "the daemon reported an unknown error"))
    error.exit_code = int(reply.get("exit_code", 1))
    raise error


def error_reply(exc: Exception) -> dict[str, Any]:
    """The daemon's side of ``unwrap``."""
    if isinstance(exc, InvalidJobFiles):
        return {
            "ok": False,
            "error": str(exc),
            "exit_code": exc.exit_code,
            "kind": "InvalidJobFiles",
            "problems": [p.as_dict() for p in exc.problems],
        }
    code = exc.exit_code if isinstance(exc, SchedulerError) else 1
    reply = {
        "ok": False,
        "error": str(exc) or repr(exc),
        "exit_code": code,
        "kind": type(exc).__name__,
    }
    if isinstance(getattr(exc, "source", None), str):  # a file's job (instances.DeclaredInFile)
        reply["source"] = exc.source  # type: ignore[attr-defined]
    if isinstance(exc, SchedulerError) and isinstance(getattr(exc, "problems", None), list):
        reply["fields"] = [  # instances.InvalidInstance: (field, message) pairs
            {"field": where, "message": message}
            for where, message in exc.problems  # type: ignore[attr-defined]
        ]
    return reply


def list_jobs(
    store: Store, job_id: str | None = None, template: str | None = None
) -> list[dict[str, Any]]:
    """One entry per stored job (or only ``job_id``'s, or only instances of ``template``),
    as ``scheduler jobs -o json`` prints it. ``origin`` is ``file`` (``source``: PATH:LINE)
    or ``template`` (then ``template`` and ``params`` too)."""
    ours, aps = store.jobs, store.aps_jobs
    query = (
        select(
            ours.c.id,
            ours.c.summary,
            ours.c.source,
            ours.c.operator_paused,
            aps.c.next_run_time,
            ours.c.template,
            ours.c.params,
            ours.c.updated_at,
        )
        .select_from(ours.outerjoin(aps, aps.c.id == ours.c.id))
        .order_by(ours.c.id)
    )
    if job_id is not None:
        query = query.where(ours.c.id == job_id)
    if template is not None:
        query = query.where(ours.c.template == template)
    rows: list[Row] = []
    promised: list[Promise] = []
    with store.engine.connect() as conn:
        # Unpacked as tuples: reading 10,000 rows' columns by name cost more than the query.
        for job, summary, source, paused, next_run, made_from, params, updated in conn.execute(
            query
        ).all():  # one fetch, not one per row
            info = json.loads(summary)
            row = Row(job, info, source, bool(paused), next_run, made_from, params)
            rows.append(row)
            if row.info.get("expect"):
                promised.append(Promise(job, row.info["expect"], updated))
    last = last_runs(store, job_id)
    now = time.time()
    fresh = freshness_of(store, now, promised)
    return [entry(row, last.get(row.id), fresh.get(row.id), now) for row in rows]


def operator_action(settings: Settings, op: str, job_id: str) -> dict[str, Any]:
    """``trigger`` / ``pause`` / ``resume``: through the running daemon when there is one,
    else on the store directly (a trigger then runs the job in this process)."""
    from scheduler import handoff  # not imported by `jobs`, which needs no leader

    if settings.api_url:
        reply = call(settings.api_url, "POST", f"/jobs/{quote(job_id, safe='')}/{op}")
        return {**reply["result"], "via": "api"}
    paths = runtime_paths(settings.db)
    reply = ask(paths.socket, {"op": op, "job_id": job_id})
    if reply is not None:
        return {**unwrap(reply), "via": "daemon"}
    store = Store(settings.db, create=False)
    try:
        # A daemon this process cannot reach by socket (another host, another runtime
        # dir) still leads: it acts, so nothing is written behind its back.
        leader = handoff.live_leader(store)
        if leader is not None:
            reply = handoff.ask_leader(store, {"op": op, "job_id": job_id})
            return {**unwrap(reply), "via": f"leader {leader.holder}"}
        if op == "trigger":  # runs belong to a daemon, never to a command line
            if job_id not in store.stored_jobs(job_id=job_id):
                raise JobNotFound(job_id)
            raise StoreBusy(
                f"no scheduler daemon runs for this store, so nothing would run {job_id}: "
                "start `scheduler run` (or pass --url to reach one), then trigger again"
            )
        lock = WriterLock(paths.lock)
        if not lock.acquire(blocking=True):  # pragma: no cover - blocking always succeeds
            raise StoreBusy("could not lock the store")
        try:
            from scheduler.apply import set_operator_pause

            changed = set_operator_pause(store, job_id, op == "pause", datetime.now(UTC))
        finally:
            lock.release()
        handoff.bump(store)  # a daemon starting meanwhile still sees it
        return {"id": job_id, "paused": op == "pause", "changed": changed, "via": "store"}
    finally:
        store.close()


def explain_remove(settings: Settings, job_id: str) -> SchedulerError:
    """Jobs are removed by deleting them from their file: say which file and line."""
    store = Store(settings.db, create=False)
    try:
        stored = store.stored_jobs()
    finally:
        store.close()
    if job_id not in stored:
        return JobNotFound(job_id)
    if stored[job_id].source.startswith("template "):
        return SchedulerError(
            f"job '{job_id}' was created from {stored[job_id].source}: "
            f"`scheduler delete {job_id}` deletes it"
        )
    return SchedulerError(
        f"job '{job_id}' is declared in {stored[job_id].source}: delete it from that file "
        "(and commit); the next reconcile removes it from the store. To stop it for now, "
        f"`scheduler pause {job_id}`"
    )


def jobs_listing(settings: Settings, template: str | None = None) -> list[dict[str, Any]]:
    """``scheduler jobs``: from the daemon's API with ``--url``, else from the store."""
    if settings.api_url:
        query = {"template": template} if template else {}
        return list(call(settings.api_url, "GET", "/jobs", params=query)["jobs"])
    store = Store(settings.db, create=False)
    try:
        return list_jobs(store, None, template)
    finally:
        store.close()


def runs_listing(
    settings: Settings, job_id: str | None, limit: int, before: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """``scheduler history``: a page of runs and the cursor of the next (None on the last),
    from the daemon's API with ``--url``, else from the store."""
    if settings.api_url:
        path = f"/jobs/{quote(job_id, safe='')}/runs" if job_id else "/runs"
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        page, following = call_page(settings.api_url, path, params)
        return list(page), following
    store = Store(settings.db, create=False)
    try:
        return runs_page(store, job_id, limit, before)
    finally:
        store.close()
