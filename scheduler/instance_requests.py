"""The daemon's side of ``instance_ops.OPS``: carry out a create, modify, remove or one-off run
request on the store under the daemon's apply guard, then tell its runner and wake its
scheduler. A run for now starts at once through the runner (its concurrency policy
applies); one for later is written to the store as a date job, so it survives restarts and
fail-over. Callers: ``daemon.Daemon.handle`` (leader only: a standby hands requests on).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from scheduler import instance_ops
from scheduler.errors import JobNotFound, SchedulerError
from scheduler.runner import Runner
from scheduler.service import error_reply
from scheduler.store import Store

log = logging.getLogger("scheduler.daemon")


async def serve(
    store: Store,
    runner: Runner,
    wakeup: Callable[[datetime | None], None],
    guard: Callable[[], AbstractContextManager[Any]],
    request: dict[str, Any],
) -> dict[str, Any]:
    """One request's reply, as ``Daemon.handle`` answers (errors included). ``wakeup(when)``
    is told when the store's new or changed job is next due (None: nothing new is due), so
    the scheduler passes over the store by then and no sooner than it must."""
    now = datetime.now(UTC)

    def apply() -> instance_ops.Outcome:
        with guard():
            done = instance_ops.carry_out(store, request, now)
            if done.run is not None and done.run.at > now:
                instance_ops.store_one_off(store, done.run)
            return done

    try:
        done = await asyncio.to_thread(apply)
    except SchedulerError as exc:
        return error_reply(exc)
    runner.set_specs(done.changed, done.removed)
    result, run = dict(done.result), done.run
    if run is not None and run.at <= now:
        override = None if run.canonical is None else runner.spec_of(run.canonical)
        if override is None and runner.spec(run.job_id) is None:
            return error_reply(JobNotFound(run.job_id))
        reason = runner.dispatch(run.job_id, now, spec=override)
        result.update(started=reason is None, reason=reason)
    wakeup(_due(done, now))
    log.info("%s %s by an operator", request.get("op"), result.get("id"))
    return {"ok": True, "result": result}


def _due(done: instance_ops.Outcome, now: datetime) -> datetime | None:
    """When what the request wrote to the store is next due: a job's next run, or a
    one-off run for later (one for now has started already)."""
    if done.run is not None:
        return done.run.at if done.run.at > now else None
    when = done.result.get("next_run_time") if done.changed else None  # the job's reply
    return datetime.fromisoformat(when) if when else None
