"""Freshness, as pure functions: how long a schedule may leave between runs, and whether
a job that promised ``expect: {succeeds_within: ...}`` is overdue at a given moment.

``spec`` uses ``cron_period`` to refuse a window its schedule cannot keep; ``overdue``
(the daemon's watch) and ``service.list_jobs`` call ``evaluate`` with the clock and the
history they read. Reads no file, no database, no clock.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from scheduler.cron import CronExpression

# Day rules repeat every 28 years, except around a century that is not a leap year: these
# 30 years hold the longest gap any rule can have (Feb 29 from 2096 to 2104).
_FIRST_DAY = date(2095, 1, 1)
_DAYS = (date(2125, 1, 1) - _FIRST_DAY).days


def _fires_on(expr: CronExpression, day: date) -> bool:
    if day.month not in expr.months:
        return False
    in_days = day.day in expr.days
    in_weekdays = (day.weekday() + 1) % 7 in expr.weekdays  # cron counts from Sunday
    return (in_days or in_weekdays) if expr.day_or else (in_days and in_weekdays)


def _every_day(expr: CronExpression) -> bool:
    all_days, all_weekdays = len(expr.days) == 31, len(expr.weekdays) == 7
    return (all_days or all_weekdays) if expr.day_or else (all_days and all_weekdays)


@lru_cache(maxsize=1024)
def cron_period(expr: CronExpression) -> timedelta:
    """The longest wait between two consecutive fire times, in wall-clock time (a DST
    change can stretch one gap by an hour: windows should leave that slack anyway)."""
    times = sorted(h * 60 + m for h in expr.hours for m in expr.minutes)  # minutes of a day
    within_a_day = max((b - a for a, b in itertools.pairwise(times)), default=0)
    first, last = times[0], times[-1]
    longest = max(within_a_day, 1440 - last + first)  # the night from one day to the next
    if len(expr.months) == 12 and _every_day(expr):
        return timedelta(minutes=longest)
    previous: int | None = None  # index of the last day that fires
    for index in range(_DAYS):
        if _fires_on(expr, _FIRST_DAY + timedelta(days=index)):
            if previous is not None:
                longest = max(longest, (index - previous) * 1440 - last + first)
            previous = index
    return timedelta(minutes=longest)


@dataclass(frozen=True)
class Freshness:
    """One job's freshness at ``now``: ``since`` is the moment its window counts from
    (the last success, or when the promise was declared if it never succeeded)."""

    since: float
    last_success: float | None
    window: float
    overdue: bool

    @property
    def due_by(self) -> float:
        return self.since + self.window


def evaluate(
    now: float, last_success: float | None, declared_at: float, window: float
) -> Freshness:
    """Overdue when no success happened within ``window`` seconds: counted from the last
    success, or from ``declared_at`` for a job that has not succeeded yet."""
    since = last_success if last_success is not None else declared_at
    return Freshness(since, last_success, window, now - since > window)
