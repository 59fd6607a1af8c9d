"""APScheduler triggers built from validated schedules.

Cron text never reaches ``CronTrigger.from_crontab`` (Monday=0 weekdays, ANDed day fields,
DST double runs): ``StandardCronTrigger`` asks our own ``cron`` module for fire times and
pickles as plain data, so the store never depends on anything but this module.
Callers: the reconciler (when it adds or reschedules a job) and ``scheduler preview``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.cron import describe, next_fire_time, parse_cron
from scheduler.durations import format_duration
from scheduler.spec import Schedule

_EPSILON = timedelta(microseconds=1)


def zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else ZoneInfo(name)


class StandardCronTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires on a standard (Vixie) cron expression in a time zone, DST-safe."""

    __slots__ = ("end", "expression", "jitter", "start", "timezone")

    def __init__(
        self,
        expression: str,
        timezone: str = "UTC",
        start: datetime | None = None,
        end: datetime | None = None,
        jitter: float | None = None,
    ) -> None:
        parse_cron(expression)  # fail here, not at the first fire time
        self.expression = expression
        self.timezone = timezone
        self.start = start
        self.end = end
        self.jitter = jitter

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is not None:
            after = previous_fire_time
        else:
            after = now - _EPSILON  # a fire time equal to now is still due
            if self.start is not None and self.start - _EPSILON > after:
                after = self.start - _EPSILON
        fire = next_fire_time(parse_cron(self.expression), after, zone(self.timezone))
        if fire is None or (self.end is not None and fire > self.end):
            return None
        result: datetime | None = self._apply_jitter(fire, self.jitter, now)
        return result

    def __getstate__(self) -> dict[str, Any]:
        return {
            "version": 1,
            "expression": self.expression,
            "timezone": self.timezone,
            "start": self.start,
            "end": self.end,
            "jitter": self.jitter,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("version", 1) > 1:
            raise ValueError(f"cron trigger state version {state['version']} is newer than this")
        for name in ("expression", "timezone", "start", "end", "jitter"):
            setattr(self, name, state[name])

    def __str__(self) -> str:
        return f"cron[{self.expression}, {self.timezone}]"

    def __repr__(self) -> str:
        return f"<StandardCronTrigger ({self.expression!r}, timezone={self.timezone!r})>"


class SteadyIntervalTrigger(IntervalTrigger):  # type: ignore[misc]
    """An interval whose jitter delays each run without moving the schedule.

    APScheduler hands a trigger the previous run's fire time *with* its jitter, and
    ``IntervalTrigger`` adds the interval to that, so each delay pushed every later run back
    (``interval: 10s`` with ``jitter: 8s`` ran 14 s apart on average). Counting from the
    previous run's place on the schedule keeps runs one interval apart on average.
    """

    __slots__ = ()

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is not None and self.jitter:
            # The slot the previous run was jittered from; exact while jitter < interval.
            slots = (previous_fire_time - self.start_date) // self.interval
            previous_fire_time = self.start_date + slots * self.interval
        result: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        return result


def build_trigger(schedule: Schedule, now: datetime | None = None) -> BaseTrigger:
    """The APScheduler trigger of a schedule. An interval with no ``start`` counts from
    ``now`` (whole seconds), so its runs fall on tidy times."""
    jitter = schedule.jitter.total_seconds() if schedule.jitter else None
    if schedule.cron is not None:
        return StandardCronTrigger(
            schedule.cron, schedule.timezone, schedule.start, schedule.end, jitter
        )
    if schedule.interval is not None:
        start = schedule.start
        if start is None and now is not None:
            start = now.replace(microsecond=0) + schedule.interval
        return SteadyIntervalTrigger(
            seconds=int(schedule.interval.total_seconds()),
            start_date=start,
            end_date=schedule.end,
            timezone=zone(schedule.timezone),
            jitter=jitter,
        )
    return DateTrigger(run_date=schedule.at, timezone=zone(schedule.timezone))


def fire_times(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``, without jitter, in the
    schedule's zone. An interval schedule with no ``start`` counts from ``after``."""
    trigger = build_trigger(schedule.model_copy(update={"jitter": None}), now=after)
    times: list[datetime] = []
    previous: datetime | None = None
    now = after + _EPSILON
    tz = zone(schedule.timezone)
    while len(times) < count:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        if fire > after:
            times.append(fire.astimezone(tz))
        previous = fire
    return times


def describe_schedule(schedule: Schedule) -> str:
    """The schedule in words, for ``scheduler jobs`` and the status page."""
    if schedule.cron is not None:
        text = describe(parse_cron(schedule.cron))
    elif schedule.interval is not None:
        text = f"Every {format_duration(schedule.interval)}"
    else:
        assert schedule.at is not None
        text = f"Once at {schedule.at.isoformat()}"
    if schedule.timezone != "UTC" and schedule.at is None:
        text += f" ({schedule.timezone})"
    return text
