"""Triggers, first fire times and descriptions for many jobs at once.

Thousands of jobs share a handful of schedules, so a cold apply of 10,000 jobs computes
each distinct schedule's model, trigger, first fire time (for one ``now``) and description
once, not once per job: that was a third of the apply. A schedule with jitter still gets a
fresh random first fire time per job. Callers: ``apply`` (adds and reschedules) and
``render`` (the schedule column of a plan).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from scheduler.declared import DeclaredJob
from scheduler.spec import Schedule
from scheduler.triggers import build_trigger, describe_schedule

ScheduleKey = tuple[tuple[str, Any], ...]


def schedule_key(job: DeclaredJob) -> ScheduleKey | None:
    """The job's normalized schedule as a dict key; None when it holds something
    unhashable (then nothing is shared)."""
    key = job.schedule_id
    if key is None:
        key = tuple(job.canonical["schedule"].items())
        try:
            hash(key)
        except TypeError:
            key = ()  # a schedule dict is never empty: () says "unhashable"
        object.__setattr__(job, "schedule_id", key)
    return key or None


@lru_cache(maxsize=4096)
def _schedule(key: ScheduleKey) -> Schedule:
    return Schedule.model_validate(dict(key))


def schedule_of(job: DeclaredJob) -> Schedule:
    """``job.schedule``, validated once per distinct schedule."""
    if job.parsed is not None:
        return job.parsed.schedule
    key = schedule_key(job)
    return job.schedule if key is None else _schedule(key)


@lru_cache(maxsize=4096)
def _description(key: ScheduleKey) -> str:
    return describe_schedule(_schedule(key))


def description(job: DeclaredJob) -> str:
    """``describe_schedule(job.schedule)``, computed once per distinct schedule."""
    key = schedule_key(job)
    return describe_schedule(job.schedule) if key is None else _description(key)


class Arming:
    """Triggers and first fire times at one ``now``, shared by jobs with equal schedules.

    The shared trigger objects are never changed: each job's state pickles its own copy."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._armed: dict[ScheduleKey, tuple[BaseTrigger, datetime | None, bool]] = {}

    def trigger(self, job: DeclaredJob) -> BaseTrigger:
        return self._arm(job)[0]

    def first_fire(self, job: DeclaredJob) -> tuple[BaseTrigger, datetime | None]:
        """The job's trigger and its next fire time after ``now``."""
        trigger, first, jittered = self._arm(job)
        if jittered:  # random per job: never shared
            first = trigger.get_next_fire_time(None, self.now)
        return trigger, first

    def _arm(self, job: DeclaredJob) -> tuple[BaseTrigger, datetime | None, bool]:
        key = schedule_key(job)
        armed = self._armed.get(key) if key is not None else None
        if armed is None:
            schedule = schedule_of(job)
            trigger = build_trigger(schedule, self.now)
            jittered = schedule.jitter is not None
            first = None if jittered else trigger.get_next_fire_time(None, self.now)
            armed = (trigger, first, jittered)
            if key is not None:
                self._armed[key] = armed
        return armed
