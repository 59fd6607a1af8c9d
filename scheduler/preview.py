"""``scheduler preview``: the next fire times of a cron expression or a declared job."""

from __future__ import annotations

from datetime import datetime

from scheduler.errors import JobNotFound, SchedulerError
from scheduler.loader import load_paths
from scheduler.settings import Settings
from scheduler.spec import Schedule
from scheduler.triggers import fire_times, zone


class BadSchedule(SchedulerError):
    """A schedule given on the command line is invalid."""


def preview_times(
    settings: Settings,
    after: datetime,
    count: int,
    *,
    cron: str | None = None,
    tz: str | None = None,
    job_id: str | None = None,
) -> list[datetime]:
    if job_id is not None:
        state = load_paths([settings.jobs_dir])
        if job_id not in state.jobs:
            raise JobNotFound(job_id, f"no job '{job_id}' in {settings.jobs_dir}")
        schedule = state.jobs[job_id].spec.schedule
    else:
        from pydantic import ValidationError

        try:
            schedule = Schedule(cron=cron, timezone=tz or "UTC")
        except ValidationError as exc:
            messages = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise BadSchedule(messages) from None
    if after.tzinfo is None:  # wall time in the schedule's zone, as in job files
        after = after.replace(tzinfo=zone(schedule.timezone))
    return fire_times(schedule, after, count)
